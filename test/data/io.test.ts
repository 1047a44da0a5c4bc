import * as zlib from 'zlib';

import { isGzip, readLines, readMaybeGzip, stripBom } from '../../lib/data/io';
import { scratchDir } from '../helpers/util';
import { readIdx } from '../../lib/data';

const scratch = scratchDir('dropattack-io-');
const write = scratch.write;

async function lines(file: string): Promise<string[]> {
  const out: string[] = [];
  for await (const { line, text } of readLines('test', file)) out.push(`${line}:${text}`);
  return out;
}

describe('shared input rules', () => {
  test('gzip is the magic number 1f 8b, nothing else', () => {
    expect(isGzip(Uint8Array.from([0x1f, 0x8b, 8]))).toBe(true);
    expect(isGzip(Uint8Array.from([0x1f, 0x8b]))).toBe(true);
    expect(isGzip(Uint8Array.from([0x1f]))).toBe(false);
    expect(isGzip(Uint8Array.from([0x8b, 0x1f]))).toBe(false);
    expect(isGzip(new Uint8Array(0))).toBe(false);
  });

  test('one byte-order mark, only at the start', () => {
    expect(stripBom('\ufeffabc')).toBe('abc');
    expect(stripBom('\ufeff\ufeffabc')).toBe('\ufeffabc');
    expect(stripBom('a\ufeff')).toBe('a\ufeff');
    expect(stripBom('')).toBe('');
  });

  test('lines end at LF, CRLF and a lone CR; no empty last line; numbered from 1', async () => {
    expect(await lines(write('ends.txt', 'a\nb\r\nc\rd\n\ne'))).toEqual(['1:a', '2:b', '3:c', '4:d', '5:', '6:e']);
    expect(await lines(write('trail.txt', 'a\r\n'))).toEqual(['1:a']);
    expect(await lines(write('empty.txt', ''))).toEqual([]);
  });

  test('a CRLF split across read chunks is one line end', async () => {
    const head = 'x'.repeat((1 << 16) - 1); // the CR is the last byte of the first 64 KiB chunk
    expect((await lines(write('split.txt', `${head}\r\nnext\n`))).map((l) => l.slice(0, 8))).toEqual([`1:${'x'.repeat(6)}`, '2:next']);
  });

  test('gzip data by magic bytes under any name; text named .gz is text; the BOM goes either way', async () => {
    expect(await lines(write('a.txt', zlib.gzipSync('\ufeffone\ntwo\n')))).toEqual(['1:one', '2:two']);
    expect(await lines(write('b.gz', '\ufeffplain\n'))).toEqual(['1:plain']);
    expect((await readMaybeGzip('test', write('c.bin', zlib.gzipSync(Buffer.from([0, 1, 2]))))).equals(Buffer.from([0, 1, 2]))).toBe(true);
    expect((await readMaybeGzip('test', write('d.gz', Buffer.from([0, 1, 2])))).equals(Buffer.from([0, 1, 2]))).toBe(true);
  });

  test('read errors name the function and the file; corrupt gzip data is one', async () => {
    const missing = scratch.path('none.txt');
    await expect(lines(missing)).rejects.toThrow(`test: cannot read ${missing}: no such file`);
    await expect(lines(scratch.dir)).rejects.toThrow(`test: cannot read ${scratch.dir}: is a directory`);
    const corrupt = write('corrupt.txt', Buffer.concat([zlib.gzipSync('a\n'.repeat(100000)).subarray(0, 200)]));
    await expect(lines(corrupt)).rejects.toThrow(`test: cannot read ${corrupt}: unexpected end of file`);
    await expect(readIdx(write('corrupt.idx', Buffer.from([0x1f, 0x8b, 1, 2])))).rejects.toThrow(/corrupt gzip data/);
  });

  test('a consumer that stops early closes the file', async () => {
    const f = write('many.txt', 'l\n'.repeat(100000));
    for await (const l of readLines('test', f)) {
      expect(l.line).toBe(1);
      break;
    }
  });
});
