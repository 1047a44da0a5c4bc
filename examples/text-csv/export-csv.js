// Writes the SpamAssassin corpus as a CSV file (text,label), as a stand-in for your own
// data: quoted fields with commas, quotes and newlines, like a real export.
//   node examples/text-csv/export-csv.js OUT.csv [MAX_MESSAGES]
const fs = require('fs');
const path = require('path');
const { loadSpamAssassin } = require(path.join(__dirname, '..', '..', 'dist', 'lib', 'data'));

const [out, max] = process.argv.slice(2);
if (!out) {
  console.error('usage: export-csv.js OUT.csv [MAX_MESSAGES]');
  process.exit(2);
}
const ds = loadSpamAssassin({ seed: 1, ...(max ? { maxMessages: Number(max) } : {}) });
const quote = (s) => `"${s.replace(/"/g, '""')}"`;
const lines = ['text,label', ...ds.texts.map((t, i) => `${quote(t)},${ds.labelNames[ds.labels[i]]}`)];
fs.writeFileSync(out, lines.join('\r\n') + '\r\n');
console.log(`wrote ${ds.texts.length} messages to ${out}`);
