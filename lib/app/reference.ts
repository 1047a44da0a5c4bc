// The files made from the schemas: dropattack.schema.json (the run configuration's JSON
// Schema, for editors) and docs/config.md (every option with its type, default and
// meaning). `npm run schema` writes them (scripts/schema.js); test/schema.test.ts fails
// when the checked-in copies are stale.
import { RUN_SCHEMA } from './run';
import { METHOD_INFO } from '../core/options';
import { expectedOf, SchemaJson, toJsonSchema } from '../core/schema';

/** The published JSON Schema of a run configuration, as the text of dropattack.schema.json. */
export function publishedSchemaText(): string {
  const schema = { $schema: 'http://json-schema.org/draft-07/schema#', ...toJsonSchema(RUN_SCHEMA) };
  return JSON.stringify(schema, null, 2) + '\n';
}

const code = (v: unknown) => `\`${typeof v === 'string' ? v : JSON.stringify(v)}\``;
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function typeOf(s: SchemaJson): string {
  if (Array.isArray(s.enum)) return s.enum.map(code).join(' ');
  if (Array.isArray(s.anyOf) && !s.errorMessage) return (s.anyOf as SchemaJson[]).map(typeOf).join(' or ');
  if (s.type === 'array' && Array.isArray(s.items)) return `[${(s.items as SchemaJson[]).map(typeOf).join(', ')}]`;
  if (s.type === 'array') return `array of ${typeOf(s.items as SchemaJson)}${s.minItems ? `, at least ${String(s.minItems)}` : ''}${s.maxItems !== undefined ? `, at most ${String(s.maxItems)}` : ''}`;
  if (s.type === 'object') return 'object';
  return expectedOf(s);
}

/** The default of `key` in `parent`: its own, or those of parent's if/then branches. */
function defaultOf(parent: SchemaJson, key: string, s: SchemaJson): string {
  if (s.type === 'object' && s.properties) return '';
  if (s.default !== undefined) return code(s.default);
  const branches: string[] = [];
  for (const rule of (parent.allOf ?? []) as SchemaJson[]) {
    const cond = Object.entries(((rule.if as SchemaJson)?.properties ?? {}) as Record<string, SchemaJson>)[0];
    const then = (((rule.then as SchemaJson)?.properties ?? {}) as Record<string, SchemaJson>)[key];
    const other = (((rule.else as SchemaJson)?.properties ?? {}) as Record<string, SchemaJson>)[key];
    if (cond && then?.default !== undefined) branches.push(`${code(then.default)} for ${cond[0]} ${code(cond[1].const)}`);
    if (cond && other?.default !== undefined) branches.push(`${code(other.default)} otherwise`);
  }
  return branches.join(', ');
}

function rows(schema: SchemaJson, prefix: string, out: string[]): void {
  const props = (schema.properties ?? {}) as Record<string, SchemaJson>;
  const required = new Set((schema.required ?? []) as string[]);
  for (const [key, s] of Object.entries(props)) {
    if (key === '$schema') continue;
    const field = `${prefix}${key}`;
    const def = defaultOf(schema, key, s);
    const need = required.has(key) ? 'required' : def;
    out.push(`| \`${field}\` | ${cell(typeOf(s))} | ${cell(need)} | ${cell(s.description ?? '')} |`);
    if (s.type === 'object' && s.properties) rows(s, `${field}.`, out);
    if (s.type === 'array' && (s.items as SchemaJson | undefined)?.properties) rows(s.items as SchemaJson, `${field}[].`, out);
  }
}

/** docs/config.md: every option of a run configuration (and of `new Trainer()`), from the schema. */
export function optionReference(): string {
  const schema = toJsonSchema(RUN_SCHEMA);
  const table: string[] = ['| field | type | default | meaning |', '|---|---|---|---|'];
  rows(schema, '', table);
  const methods = ['| method | groups | largest `k` | needs `alpha` | needs `epsilon` |', '|---|---|---|---|---|'];
  for (const m of METHOD_INFO) methods.push(`| \`${m.name}\` | ${m.groups} | ${m.maxK} | ${m.needsAlpha ? 'yes' : 'no'} | ${m.needsEpsilon ? 'yes' : 'no'} |`);
  return [
    '<!-- Generated from the schema (lib/app/run.ts, lib/core/options.ts) by `npm run schema`; do not edit. -->',
    '# Run configuration options',
    '',
    'A run configuration (`dropattack train --config run.json`, docs/cli.md) is a JSON object',
    'checked against one schema, from which come the TypeScript types, the checks, the',
    'defaults below and [`dropattack.schema.json`](../dropattack.schema.json). Put',
    '`"$schema": "<path to>/dropattack.schema.json"` at the top of a configuration and editors',
    'that read JSON Schema (VS Code, JetBrains) complete and check it; the key is ignored when',
    'the run reads the file.',
    '',
    'The `optimizer`, `loss` and `attack` sections are the options of `new Trainer(module,',
    '{optimizer, attack, loss, autocast})` in the API, with the same defaults; the engine',
    '(native/engine/engine.h) has the same defaults too, and a test checks that they agree.',
    'An empty field is required only where the meaning says so.',
    '',
    table.join('\n'),
    '',
    '## What each attack method needs',
    '',
    'From the engine (`attackMethods()`); the schema checks these rules too (docs/methods.md',
    'defines the methods).',
    '',
    methods.join('\n'),
    '',
  ].join('\n');
}
