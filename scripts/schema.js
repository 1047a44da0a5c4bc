#!/usr/bin/env node
// Writes the files made from the option schemas: dropattack.schema.json and
// docs/config.md (lib/app/reference.ts). Run by `npm run schema` after the TypeScript
// build; test/schema.test.ts fails when the checked-in copies differ.
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const { publishedSchemaText, optionReference } = require(path.join(root, 'dist', 'lib', 'app', 'reference.js'));
for (const [file, text] of [
  ['dropattack.schema.json', publishedSchemaText()],
  [path.join('docs', 'config.md'), optionReference()],
]) {
  const target = path.join(root, file);
  const old = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : null;
  if (old === text) {
    console.log(`${file}: up to date`);
  } else {
    fs.writeFileSync(target, text);
    console.log(`${file}: written`);
  }
}
