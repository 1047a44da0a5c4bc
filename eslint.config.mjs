// ESLint over the TypeScript of lib/, test/, bench/ and examples/ (npm run lint; CI runs
// it after the type check): typescript-eslint's type-checked recommended rules, which
// read the types tsc infers (floating promises, awaits of non-promises, unsafe `any`,
// needless assertions), on top of ESLint's recommended rules.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['dist/', 'build/', 'node_modules/', 'docs/api/', 'prebuilds/', '**/*.js', '**/*.mjs', '**/*.cjs'],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      // `({ p: _p, ...rest }) => rest` drops a field on purpose; a leading underscore
      // marks a binding that is unused on purpose.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // rejecting() passes on whatever the argument checks threw, unchanged (they throw
      // TypeError, RangeError or TorchError); wrapping a non-Error would change the value.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
    },
  },
  {
    // The tests read JSON (CLI output, files written by runs, HTTP responses, JSONL
    // logs) and check it with expect(): the values are untyped by nature and a wrong
    // shape fails the assertion itself. Typing every read would restate each assertion,
    // so the no-unsafe-* family (which flags any use of an `any`) is off here only.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
