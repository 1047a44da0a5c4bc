#!/usr/bin/env node
// Writes every ```cpp block of README.md to OUTDIR/readme_snippet_N.cpp, so that CI builds
// and runs them (test/cpp/subdirectory) and the README's C++ cannot drift from the engine.
//   node scripts/readme-snippets.js OUTDIR
'use strict';
const fs = require('fs');
const path = require('path');

const out = process.argv[2];
if (!out) {
  console.error('usage: readme-snippets.js OUTDIR');
  process.exit(2);
}
const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/^```cpp\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
if (blocks.length === 0) {
  console.error('readme-snippets: README.md has no ```cpp block');
  process.exit(1);
}
fs.mkdirSync(out, { recursive: true });
blocks.forEach((code, k) => fs.writeFileSync(path.join(out, `readme_snippet_${k + 1}.cpp`), code));
console.log(`readme-snippets: ${blocks.length} C++ snippet(s) written to ${out}`);
