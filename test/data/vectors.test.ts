import * as zlib from 'zlib';

import { DataFormatError, loadWordVectors, Vocabulary } from '../../lib/data';
import { scratchDir } from '../helpers/util';

const scratch = scratchDir('dropattack-vec-');
const write = scratch.write;

// ids: <pad>=0 <unk>=1 the=2 cat=3 new york=4 zebra=5
const vocab = Vocabulary.fromJSON({ format: 'dropattack-vocabulary', version: 1, pad: '<pad>', unk: '<unk>', tokens: ['<pad>', '<unk>', 'the', 'cat', 'new york', 'zebra'] });

function rows(data: Float32Array, dim: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < data.length / dim; r++) out.push(Array.from(data.subarray(r * dim, (r + 1) * dim)));
  return out;
}

describe('loadWordVectors', () => {
  const glove = ['the 0.1 0.2 -0.3', 'dog 9 9 9', 'cat 1e-1 2 3', 'new york 4 5 6', 'the 7 7 7', 'cat. 8 8 8'].join('\n') + '\n';

  test('GloVe: found rows from the file, first occurrence wins, words with spaces, pad row zero', async () => {
    const f = write('glove.txt', glove);
    const r = await loadWordVectors(f, vocab, { seed: 1 });
    expect(r.dim).toBe(3);
    expect(r.vectors.shape).toEqual([6, 3]);
    expect(r.vectors.dtype).toBe('float32');
    expect(r.found).toBe(3);
    expect(r.missing).toBe(2); // <unk>, zebra
    expect(Array.from(r.foundMask)).toEqual([0, 0, 1, 1, 1, 0]);
    const m = rows(r.vectors.toTypedArray() as Float32Array, 3);
    expect(m[0]).toEqual([0, 0, 0]);
    expect(m[2].map((x) => +x.toFixed(6))).toEqual([0.1, 0.2, -0.3]);
    expect(m[3].map((x) => +x.toFixed(6))).toEqual([0.1, 2, 3]);
    expect(m[4]).toEqual([4, 5, 6]);
    // Missing rows: small random values, reproducible from the seed.
    for (const k of [1, 5]) {
      expect(m[k].some((x) => x !== 0)).toBe(true);
      expect(m[k].every((x) => Math.abs(x) < 0.6)).toBe(true);
    }
    const again = await loadWordVectors(f, vocab, { seed: 1 });
    expect(Array.from(again.vectors.toTypedArray() as Float32Array)).toEqual(Array.from(r.vectors.toTypedArray() as Float32Array));
    const other = await loadWordVectors(f, vocab, { seed: 2 });
    expect(rows(other.vectors.toTypedArray() as Float32Array, 3)[5]).not.toEqual(m[5]);
  });

  test('the random rows have standard deviation close to scale', async () => {
    const big = Vocabulary.build([Array.from({ length: 3000 }, (_, k) => `w${k}`)]);
    const f = write('one.txt', 'w0 1 1 1 1 1 1 1 1\n');
    const r = await loadWordVectors(f, big, { scale: 0.1 });
    expect(r.found).toBe(1);
    expect(r.missing).toBe(big.size - 2);
    const d = r.vectors.toTypedArray() as Float32Array;
    let s = 0;
    let s2 = 0;
    const n = (big.size - 2) * 8;
    for (let k = 8; k < d.length; k++) {
      if (k >= big.indexOf('w0') * 8 && k < big.indexOf('w0') * 8 + 8) continue;
      s += d[k];
      s2 += d[k] * d[k];
    }
    const mean = s / n;
    const std = Math.sqrt(s2 / n - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(0.005);
    expect(std).toBeGreaterThan(0.095);
    expect(std).toBeLessThan(0.105);
  });

  test('word2vec text format (count dim header), gzip-compressed, lowercase matching', async () => {
    const f = write('w2v.txt.gz', zlib.gzipSync('3 2\nThe 0.5 -0.5 \nZEBRA 1 2 \nCat 3 4\n'));
    const r = await loadWordVectors(f, vocab, { lowercase: true });
    expect(r.dim).toBe(2);
    expect(r.found).toBe(3);
    const m = rows(r.vectors.toTypedArray() as Float32Array, 2);
    expect(m[2]).toEqual([0.5, -0.5]);
    expect(m[3]).toEqual([3, 4]);
    expect(m[5]).toEqual([1, 2]);
    const exact = await loadWordVectors(f, vocab);
    expect(exact.found).toBe(0);
  });

  test('ragged lines, bad numbers and header mismatches are errors naming file and line', async () => {
    const ragged = write('ragged.txt', 'the 1 2 3\ncat 1 2\n');
    const e = await loadWordVectors(ragged, vocab).catch((x: Error) => x);
    expect(e).toBeInstanceOf(DataFormatError);
    expect((e as Error).message).toBe(`${ragged}:2: expected 3 values after the word, got 2`);
    const long = write('long.txt', 'the 1 2 3\ncat 1 2 3 4\n');
    await expect(loadWordVectors(long, vocab)).rejects.toThrow(`${long}:2: expected 3 values after the word, got 4`);
    const nan = write('nan.txt', 'the 1 2 3\ncat 1 x 3\n');
    await expect(loadWordVectors(nan, vocab)).rejects.toThrow(`${nan}:2: value 2 of 'cat' is not a number: "x"`);
    const header = write('header.txt', '5 3\nthe 1 2 3\n');
    await expect(loadWordVectors(header, vocab)).rejects.toThrow(`${header}: the word2vec header announces 5 vectors, but the file holds 1`);
    await expect(loadWordVectors(header, vocab, { dim: 4 })).rejects.toThrow(`${header}:1: the word2vec header gives dimension 3, but dim 4 was asked for`);
    const f = write('dim.txt', glove);
    await expect(loadWordVectors(f, vocab, { dim: 2 })).rejects.toThrow(`${f}:1: expected 2 values after the word, got 3`);
    const empty = write('empty.txt', '\n\n');
    await expect(loadWordVectors(empty, vocab)).rejects.toThrow(`${empty}: no word vectors in the file`);
    const missing = scratch.path('missing.txt');
    await expect(loadWordVectors(missing, vocab)).rejects.toThrow(`loadWordVectors: cannot read ${missing}: no such file`);
    await expect(loadWordVectors(f, {} as Vocabulary)).rejects.toThrow('loadWordVectors: vocab must be a Vocabulary');
  });
});
