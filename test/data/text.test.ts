import * as fs from 'fs';
import * as v8 from 'v8';
import * as vm from 'vm';
import * as zlib from 'zlib';

import { CsvRecord, DataFormatError, readCsvRecords, readTextDataset, streamTextRecords, TextRecord } from '../../lib/data';
import { parseCsvStream } from '../../lib/data/csv';
import { Readable } from 'stream';
import { lcg, scratchDir } from '../helpers/util';

const scratch = scratchDir('dropattack-text-');
const write = scratch.write;

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the promise to reject');
}

/** The records of CSV text fed to the parser whole or in chunks of the given sizes (cycled). */
async function parseAll(text: string, chunkSizes: number[] | null, options = {}): Promise<CsvRecord[]> {
  const chunks: string[] = [];
  if (chunkSizes === null) chunks.push(text);
  else {
    let at = 0;
    let k = 0;
    while (at < text.length) {
      const n = chunkSizes[k++ % chunkSizes.length];
      chunks.push(text.slice(at, at + n));
      at += n;
    }
  }
  const out: CsvRecord[] = [];
  for await (const r of parseCsvStream(Readable.from(chunks), '<text>', options)) out.push(r);
  return out;
}

describe('CSV records (csv-parse)', () => {
  test('quoted fields, "" escapes, embedded delimiters and line breaks, CRLF', async () => {
    const text = 'a,b,c\r\n"x, y","say ""hi""","two\r\nlines"\r\n,,\r\nlast,"",end';
    const recs = await parseAll(text, null);
    expect(recs.map((r) => r.fields)).toEqual([
      ['a', 'b', 'c'],
      ['x, y', 'say "hi"', 'two\r\nlines'],
      ['', '', ''],
      ['last', '', 'end'],
    ]);
    // csv-parse's own info.lines would say 4 for the second record (it counts a CRLF inside quotes twice).
    expect(recs.map((r) => r.line)).toEqual([1, 2, 4, 5]);
    expect(recs.every((r) => r.error === null)).toBe(true);
  });

  test('blank lines are skipped; lone CR, LF and CRLF end records, mixed in one file', async () => {
    const recs = await parseAll('h1,h2\n\n\r\nx,1\ry,2\n\nz,3', null);
    expect(recs.map((r) => r.fields)).toEqual([['h1', 'h2'], ['x', '1'], ['y', '2'], ['z', '3']]);
    expect(recs.map((r) => r.line)).toEqual([1, 4, 5, 7]);
  });

  test('a byte-order mark is dropped once, by the file reader (raw and gzip data alike)', async () => {
    for (const [name, data] of [
      ['bom.csv', Buffer.from('\ufeffh1,h2\nx,1\n')],
      ['bom.csv.gz', zlib.gzipSync('\ufeffh1,h2\nx,1\n')],
    ] as const) {
      const recs: CsvRecord[] = [];
      for await (const r of readCsvRecords('test', write(name, data))) recs.push(r);
      expect(recs.map((r) => r.fields)).toEqual([['h1', 'h2'], ['x', '1']]);
    }
    // Only a leading mark: one later in the file is text.
    const recs: CsvRecord[] = [];
    for await (const r of readCsvRecords('test', write('bom2.csv', '\ufeff\ufeffh\n'))) recs.push(r);
    expect(recs[0].fields).toEqual(['\ufeffh']);
  });

  test('a trailing delimiter gives an empty last field', async () => {
    expect((await parseAll('a,\nb,\r\nc,', null)).map((r) => r.fields)).toEqual([['a', ''], ['b', ''], ['c', '']]);
  });

  test('quotes outside RFC 4180 follow csv-parse relax_quotes; an unterminated quote is flagged at its record', async () => {
    const recs = await parseAll('5 "inch" screen,d\n"ab"c,d\nok,1\n"x""y",z\n"open,2\nmore', null);
    // A quote inside an unquoted field is an ordinary character.
    expect(recs[0]).toEqual({ fields: ['5 "inch" screen', 'd'], line: 1, error: null });
    // Text after a closing quote: csv-parse keeps the field as written, quotes included.
    expect(recs[1]).toEqual({ fields: ['"ab"c', 'd'], line: 2, error: null });
    expect(recs[2]).toEqual({ fields: ['ok', '1'], line: 3, error: null });
    expect(recs[3]).toEqual({ fields: ['x"y', 'z'], line: 4, error: null });
    expect(recs[4]).toEqual({ fields: [], line: 5, error: 'unterminated quoted field at the end of the file' });
    expect(recs).toHaveLength(5);
  });

  test('the same records whatever the chunking (random CSV, 300 records)', async () => {
    const r = lcg(7);
    const alphabet = ['a', 'b', ' ', ',', '"', '\n', '\r\n', 'é', '\t', 'z'];
    const rows: string[][] = [];
    for (let i = 0; i < 300; i++) {
      const row: string[] = [];
      const nf = 1 + Math.floor((r() + 1) * 2.5);
      for (let f = 0; f < nf; f++) {
        let s = '';
        const len = Math.floor((r() + 1) * 4);
        for (let k = 0; k < len; k++) s += alphabet[Math.floor((r() + 1) * 5) % alphabet.length];
        row.push(s);
      }
      if (row.length === 1 && row[0] === '') row[0] = 'x';
      rows.push(row);
    }
    const quote = (s: string): string => (/[",\r\n]/.test(s) || s === '' ? `"${s.replace(/"/g, '""')}"` : s);
    const text = rows.map((row) => row.map(quote).join(',')).join(rows.length % 2 ? '\n' : '\r\n') + '\r\n';
    const whole = await parseAll(text, null);
    expect(whole.map((x) => x.fields)).toEqual(rows);
    // Each record starts on the line after the previous one's last line.
    let line = 1;
    whole.forEach((rec, k) => {
      expect(rec.line).toBe(line);
      line += 1 + rows[k].reduce((n, f) => n + (f.match(/\r\n|\r|\n/g)?.length ?? 0), 0);
    });
    for (const sizes of [[1], [2, 3], [7, 1, 64], [4096]]) {
      expect(await parseAll(text, sizes)).toEqual(whole);
    }
  });

  test('quoting: false takes quotes literally (TSV)', async () => {
    expect((await parseAll('"a"\t"b\n', null, { delimiter: '\t', quoting: false }))[0].fields).toEqual(['"a"', '"b']);
  });

  test('a runaway quoted field stops at maxFieldLength, naming the line its record starts on', async () => {
    const e = await rejection(parseAll('a,b\nc,"open\n' + 'x'.repeat(200), [5], { maxFieldLength: 100 }));
    expect(e).toBeInstanceOf(DataFormatError);
    expect(e.message).toBe('<text>:2: a record grew past 100 bytes; is a closing quote missing?');
    // A file: the records before it come first, and reading stops there (not at the end of the file).
    const f = write('runaway.csv', 'text,label\na,b\n"open,c\n' + 'x'.repeat(1 << 20));
    const seen: string[] = [];
    const e2 = await rejection(
      (async () => {
        for await (const r of readCsvRecords('test', f, { maxFieldLength: 1000 })) seen.push(r.fields.join('|'));
      })(),
    );
    expect(seen).toEqual(['text|label', 'a|b']);
    expect(e2.message).toBe(`${f}:3: a record grew past 1000 bytes; is a closing quote missing?`);
  });

  test('a bad delimiter is a TypeError', () => {
    expect(() => readCsvRecords('test', 'x.csv', { delimiter: ';;' })).toThrow(TypeError);
    expect(() => readCsvRecords('test', 'x.csv', { delimiter: '"' })).toThrow(/delimiter/);
  });
});

describe('readTextDataset: CSV', () => {
  test('header, quoted multi-line text, CRLF, labels sorted', async () => {
    const f = write(
      'basic.csv',
      'id,text,label\r\n1,"hello, world",pos\r\n2,"multi\nline ""quoted"" text",neg\r\n3,plain,pos\r\n4,"x",neutral',
    );
    const ds = await readTextDataset(f, { textColumn: 'text', labelColumn: 'label' });
    expect(ds.texts).toEqual(['hello, world', 'multi\nline "quoted" text', 'plain', 'x']);
    expect(ds.labelNames).toEqual(['neg', 'neutral', 'pos']);
    expect(Array.from(ds.labels)).toEqual([2, 0, 2, 1]);
    expect(ds.labels).toBeInstanceOf(Int32Array);
    expect(ds.skipped).toEqual([]);
  });

  const messy = [
    'text,label', // 1
    'a,pos', // 2
    'b,pos,extra', // 3: too many fields
    '"c', // 4: a record over two lines
    'd",neg', // 5
    'e,', // 6: empty label
    'f,neg', // 7
    '"g"x,pos', // 8: text after the closing quote: kept as written (csv-parse relax_quotes)
    'h', // 9: too few fields
    'i,  pos  ', // 10: label trimmed
  ].join('\n');

  test("onBadRow 'skip' lists the malformed rows with their line numbers", async () => {
    const f = write('messy.csv', messy);
    const ds = await readTextDataset(f, { textColumn: 'text', labelColumn: 'label', onBadRow: 'skip' });
    expect(ds.texts).toEqual(['a', 'c\nd', 'f', '"g"x', 'i']);
    expect(ds.labelNames).toEqual(['neg', 'pos']);
    expect(Array.from(ds.labels)).toEqual([1, 0, 0, 1, 1]);
    expect(ds.skipped.map((s) => s.line)).toEqual([3, 6, 9]);
    expect(ds.skipped[0].reason).toBe('expected 2 fields, got 3');
    expect(ds.skipped[1].reason).toBe('empty label');
    expect(ds.skipped[2].reason).toBe('expected 2 fields, got 1');
  });

  test("onBadRow 'fail' (the default) throws file:line: reason at the first bad row", async () => {
    const f = write('messy-fail.csv', messy);
    const e = await rejection(readTextDataset(f, { textColumn: 'text', labelColumn: 'label' }));
    expect(e).toBeInstanceOf(DataFormatError);
    expect(e.message).toBe(`${f}:3: expected 2 fields, got 3`);
    expect((e as DataFormatError).line).toBe(3);
    expect((e as DataFormatError).file).toBe(f);
  });

  test('an unterminated quote at the end of the file', async () => {
    const f = write('unterminated.csv', 'text,label\na,pos\n"b,neg\nc,pos\n');
    const e = await rejection(readTextDataset(f, { textColumn: 'text', labelColumn: 'label' }));
    expect(e.message).toMatch(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: unterminated quoted field`));
    const ds = await readTextDataset(f, { textColumn: 'text', labelColumn: 'label', onBadRow: 'skip' });
    expect(ds.texts).toEqual(['a']);
    expect(ds.skipped).toHaveLength(1);
    expect(ds.skipped[0].line).toBe(3);
    // In the header, or in the first record of a file without one.
    const h = write('unterminated-header.csv', '"text,label\na,b\n');
    await expect(readTextDataset(h, { textColumn: 'text', labelColumn: 'label' })).rejects.toThrow(
      `${h}:1: malformed header: unterminated quoted field at the end of the file`,
    );
    await expect(readTextDataset(h, { textColumn: 0, labelColumn: 1, header: false })).rejects.toThrow(
      `${h}:1: unterminated quoted field at the end of the file`,
    );
  });

  test('no header: 0-based column indices; field count from the first record', async () => {
    const f = write('nohead.csv', 'pos,"first text"\nneg,second\nneg,third,x\n');
    const ds = await readTextDataset(f, { textColumn: 1, labelColumn: 0, header: false, onBadRow: 'skip' });
    expect(ds.texts).toEqual(['first text', 'second']);
    expect(ds.skipped).toEqual([{ line: 3, reason: 'expected 2 fields, got 3' }]);
    await expect(readTextDataset(f, { textColumn: 'text', labelColumn: 0, header: false })).rejects.toThrow(
      /textColumn 'text' is a name, but header is false/,
    );
    await expect(readTextDataset(f, { textColumn: 5, labelColumn: 0, header: false })).rejects.toThrow(`${f}:1:`);
  });

  test('a column missing from the header names the columns', async () => {
    const f = write('cols.csv', 'body,label\nx,1\n');
    await expect(readTextDataset(f, { textColumn: 'text', labelColumn: 'label' })).rejects.toThrow(
      `${f}:1: no column 'text' (textColumn) in the header; the columns are 'body', 'label'`,
    );
  });

  test('numeric labels sort numerically; a fixed label set maps by position and rejects others', async () => {
    const f = write('num.csv', 'text,label\na,10\nb,2\nc,1\nd,2\n');
    const ds = await readTextDataset(f, { textColumn: 'text', labelColumn: 'label' });
    expect(ds.labelNames).toEqual(['1', '2', '10']);
    expect(Array.from(ds.labels)).toEqual([2, 1, 0, 1]);
    const fixed = await readTextDataset(f, { textColumn: 'text', labelColumn: 'label', labels: ['2', '1', '10', '7'] });
    expect(fixed.labelNames).toEqual(['2', '1', '10', '7']);
    expect(Array.from(fixed.labels)).toEqual([2, 0, 1, 0]);
    const e = await rejection(readTextDataset(f, { textColumn: 'text', labelColumn: 'label', labels: ['1', '2'] }));
    expect(e.message).toBe(`${f}:2: unknown label '10' (the labels are '1', '2')`);
  });

  test('empty datasets and missing files are errors naming the file', async () => {
    const headerOnly = write('empty.csv', 'text,label\n');
    await expect(readTextDataset(headerOnly, { textColumn: 'text', labelColumn: 'label' })).rejects.toThrow(
      `${headerOnly}: empty dataset: no records`,
    );
    const allBad = write('allbad.csv', 'text,label\na,\nb,\n');
    await expect(readTextDataset(allBad, { textColumn: 'text', labelColumn: 'label', onBadRow: 'skip' })).rejects.toThrow(
      `${allBad}: empty dataset: all 2 rows were malformed (first: line 2: empty label)`,
    );
    const nothing = write('nothing.csv', '');
    await expect(readTextDataset(nothing, { textColumn: 0, labelColumn: 1 })).rejects.toThrow(/empty dataset/);
    const missing = scratch.path('nope.csv');
    await expect(readTextDataset(missing, { textColumn: 0, labelColumn: 1 })).rejects.toThrow(
      `readTextDataset: cannot read ${missing}: no such file`,
    );
  });

  test('argument errors', async () => {
    const f = write('args.csv', 'text,label\na,b\n');
    await expect(readTextDataset(f, { textColumn: 'text', labelColumn: 'label', onBadRow: 'ignore' as 'skip' })).rejects.toThrow(TypeError);
    await expect(readTextDataset(f, { textColumn: 'text', labelColumn: 'label', colour: 1 } as never)).rejects.toThrow(/unknown option 'colour'/);
    await expect(readTextDataset(f, { textColumn: -1, labelColumn: 'label' })).rejects.toThrow(RangeError);
    await expect(readTextDataset(scratch.path('data.txt'), { textColumn: 0, labelColumn: 1 })).rejects.toThrow(
      /cannot tell the format of .*data\.txt/,
    );
  });

  test('gzip-compressed CSV (.csv.gz)', async () => {
    const f = write('z.csv.gz', zlib.gzipSync('text,label\n"a, b",x\nc,y\n'));
    const ds = await readTextDataset(f, { textColumn: 'text', labelColumn: 'label' });
    expect(ds.texts).toEqual(['a, b', 'c']);
    // Gzip is told by the magic bytes 1f 8b, not the name: corrupt gzip data is a read error naming the file.
    const bad = write('bad.csv.gz', zlib.gzipSync('text,label\na,b\n').subarray(0, 12));
    await expect(readTextDataset(bad, { textColumn: 'text', labelColumn: 'label' })).rejects.toThrow(`cannot read ${bad}`);
  });

  test('gzip by magic bytes, whatever the extension', async () => {
    // Plain text named .gz is read as text; gzip data named .csv is decompressed.
    const plain = write('plain.csv.gz', 'text,label\na,x\n');
    expect((await readTextDataset(plain, { textColumn: 'text', labelColumn: 'label' })).texts).toEqual(['a']);
    const packed = write('packed.csv', zlib.gzipSync('text,label\n"b\nc",y\nd,\n'));
    const e = await rejection(readTextDataset(packed, { textColumn: 'text', labelColumn: 'label' }));
    expect(e.message).toBe(`${packed}:4: empty label`);
    const lines: string[] = [];
    const jsonl = write('packed.jsonl', zlib.gzipSync('{"t":"q","y":1}\n'));
    for await (const r of streamTextRecords(jsonl, { textColumn: 't', labelColumn: 'y' })) lines.push(`${r.line}:${r.text}`);
    expect(lines).toEqual(['1:q']);
    // A file shorter than the magic number is text.
    expect((await readTextDataset(write('one.tsv', 'x'), { textColumn: 0, labelColumn: 0, header: false })).texts).toEqual(['x']);
  });
});

describe('readTextDataset: TSV and JSONL', () => {
  test('TSV takes quotes literally by default; quoting: true parses them', async () => {
    const f = write('data.tsv', 'sentence\tlabel\n"great" movie, really\t1\nbad\t0\n');
    const ds = await readTextDataset(f, { textColumn: 'sentence', labelColumn: 'label' });
    expect(ds.texts).toEqual(['"great" movie, really', 'bad']);
    expect(ds.labelNames).toEqual(['0', '1']);
    expect(Array.from(ds.labels)).toEqual([1, 0]);
    const q = write('q.tsv', 'text\tlabel\n"a\tb"\tx\n');
    expect((await readTextDataset(q, { textColumn: 'text', labelColumn: 'label', quoting: true })).texts).toEqual(['a\tb']);
  });

  test('JSONL: good lines, blank lines, bad JSON, missing fields, wrong types', async () => {
    const f = write(
      'data.jsonl',
      [
        '{"text": "first", "label": "pos"}', // 1
        '', // 2
        '{"text": "second", "label": 1}', // 3 numeric label
        '{"text": "third", "label": "neg"', // 4 bad JSON
        '{"label": "neg"}', // 5 missing text
        '{"text": 5, "label": "neg"}', // 6 text not a string
        '{"text": "fourth"}', // 7 missing label
        '"just a string"', // 8 not an object
        '{"text": "fifth", "label": " "}', // 9 empty label
        '{"text": "sixth", "label": "neg", "extra": [1]}\r', // 10 CRLF line end
      ].join('\n'),
    );
    const ds = await readTextDataset(f, { textColumn: 'text', labelColumn: 'label', onBadRow: 'skip' });
    expect(ds.texts).toEqual(['first', 'second', 'sixth']);
    expect(ds.labelNames).toEqual(['1', 'neg', 'pos']);
    expect(Array.from(ds.labels)).toEqual([2, 0, 1]);
    expect(ds.skipped.map((s) => s.line)).toEqual([4, 5, 6, 7, 8, 9]);
    expect(ds.skipped[0].reason).toMatch(/^invalid JSON: /);
    expect(ds.skipped[1].reason).toBe("missing field 'text' (textColumn)");
    expect(ds.skipped[2].reason).toBe("field 'text' (textColumn) must be a string, got number 5");
    expect(ds.skipped[3].reason).toBe("missing field 'label' (labelColumn)");
    expect(ds.skipped[4].reason).toBe('expected a JSON object, got string');
    expect(ds.skipped[5].reason).toBe('empty label');
    await expect(readTextDataset(f, { textColumn: 'text', labelColumn: 'label' })).rejects.toThrow(`${f}:4: invalid JSON`);
  });

  test('streamTextRecords yields records with line numbers, reports skips, honours limit', async () => {
    const f = write('s.jsonl', '{"t":"a","y":"p"}\nnot json\n{"t":"b","y":"q"}\n{"t":"c","y":"p"}\n');
    const skipped: number[] = [];
    const got: TextRecord[] = [];
    for await (const r of streamTextRecords(f, { textColumn: 't', labelColumn: 'y', onBadRow: 'skip', onSkip: (s) => skipped.push(s.line) })) {
      got.push(r);
    }
    expect(got).toEqual([
      { text: 'a', label: 'p', labelId: -1, line: 1 },
      { text: 'b', label: 'q', labelId: -1, line: 3 },
      { text: 'c', label: 'p', labelId: -1, line: 4 },
    ]);
    expect(skipped).toEqual([2]);
    const limited: string[] = [];
    for await (const r of streamTextRecords(f, { textColumn: 't', labelColumn: 'y', onBadRow: 'skip', limit: 2, labels: ['q', 'p'] })) {
      limited.push(`${r.text}:${r.labelId}`);
    }
    expect(limited).toEqual(['a:1', 'b:0']);
  });
});

/** A gc() hook even when node runs without --expose-gc. */
function forceGc(): () => void {
  const g = (global as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

describe('streaming a large file', () => {
  test('an ~8 MB CSV streams in bounded memory with every record intact', async () => {
    const f = scratch.path('large.csv');
    const fd = fs.openSync(f, 'w');
    fs.writeSync(fd, 'id,text,label\r\n');
    const N = 60000;
    let part = '';
    for (let i = 0; i < N; i++) {
      // ~140 bytes a row: quotes, an escaped quote, a comma and a line break inside the field.
      part += `${i},"row ${i} says ""hi"", then\nwraps onto a second line with filler ${'x'.repeat(70 + (i % 13))}",c${i % 3}\r\n`;
      if (part.length > 1 << 20) {
        fs.writeSync(fd, part);
        part = '';
      }
    }
    fs.writeSync(fd, part);
    fs.closeSync(fd);
    const size = fs.statSync(f).size;
    expect(size).toBeGreaterThan(7e6);

    const gc = forceGc();
    gc();
    const base = process.memoryUsage().heapUsed;
    let peak = 0;
    let count = 0;
    let lastLine = 0;
    let ok = true;
    for await (const r of streamTextRecords(f, { textColumn: 'text', labelColumn: 'label' })) {
      const i = count++;
      if (r.label !== `c${i % 3}` || !r.text.startsWith(`row ${i} says "hi", then\nwraps`) || r.line !== 2 + 2 * i) ok = false;
      lastLine = r.line;
      if (i % 15000 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed - base);
      }
    }
    expect(ok).toBe(true);
    expect(count).toBe(N);
    expect(lastLine).toBe(2 * N);
    // Live heap while streaming stays far below the file size (not O(file)).
    expect(peak).toBeLessThan(size / 3);

    const ds = await readTextDataset(f, { textColumn: 'text', labelColumn: 'label' });
    expect(ds.texts).toHaveLength(N);
    expect(ds.labelNames).toEqual(['c0', 'c1', 'c2']);
    expect(ds.labels[N - 1]).toBe((N - 1) % 3);
  });
});
