import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';

import { DataFormatError, ImageBatches, loadImageDataset, readCifar10Batch, readIdx } from '../../lib/data';
import { arange, Tensor, tensor } from '../../lib/core/tensor';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-img-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(name: string, content: Buffer): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, content);
  return f;
}

/** An IDX file: magic 00 00 type ndims, big-endian uint32 dims, then the data bytes. */
function idx(type: number, dims: number[], data: Buffer): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, k) => head.writeUInt32BE(d, 4 + 4 * k));
  return Buffer.concat([head, data]);
}

const f32 = (t: Tensor): number[] => Array.from(t.toTypedArray() as Float32Array);
const i64 = (t: Tensor): number[] => Array.from(t.toTypedArray() as BigInt64Array, Number);

describe('readIdx', () => {
  const pixels = Buffer.from(Array.from({ length: 24 }, (_, k) => (k * 11) % 256));
  test('raw and gzip-compressed files decode to the same dims and data', async () => {
    const raw = write('a-idx3-ubyte', idx(0x08, [4, 3, 2], pixels));
    const gz = write('a-idx3-ubyte.gz', zlib.gzipSync(idx(0x08, [4, 3, 2], pixels)));
    for (const f of [raw, gz]) {
      const r = await readIdx(f);
      expect(r.dims).toEqual([4, 3, 2]);
      expect(r.type).toBe('uint8');
      expect(r.data).toBeInstanceOf(Uint8Array);
      expect(Array.from(r.data)).toEqual(Array.from(pixels));
    }
  });

  test('big-endian int32 and float32 elements', async () => {
    const ints = Buffer.alloc(12);
    [1, -2, 70000].forEach((v, k) => ints.writeInt32BE(v, 4 * k));
    const r = await readIdx(write('i32', idx(0x0c, [3], ints)));
    expect(r.type).toBe('int32');
    expect(Array.from(r.data)).toEqual([1, -2, 70000]);
    const floats = Buffer.alloc(8);
    floats.writeFloatBE(1.5, 0);
    floats.writeFloatBE(-0.25, 4);
    const s = await readIdx(write('f32', idx(0x0d, [1, 2], floats)));
    expect(s.dims).toEqual([1, 2]);
    expect(Array.from(s.data)).toEqual([1.5, -0.25]);
  });

  test('bad magic, truncated data, trailing bytes, corrupt gzip, missing file', async () => {
    const bad = write('bad', Buffer.from([0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 5]));
    const e = await readIdx(bad).catch((x: Error) => x);
    expect(e).toBeInstanceOf(DataFormatError);
    expect((e as Error).message).toMatch(new RegExp(`^${bad}: not an IDX file: bad magic number 12 34 08 01`));
    const badType = write('badtype', Buffer.from([0, 0, 0x07, 0x01, 0, 0, 0, 0]));
    await expect(readIdx(badType)).rejects.toThrow(/bad magic number 00 00 07 01/);
    const short = write('short', idx(0x08, [4, 3, 2], pixels.subarray(0, 20)));
    await expect(readIdx(short)).rejects.toThrow(`${short}: truncated IDX data: dimensions [4, 3, 2] of uint8 need 24 bytes after the header, the file has 20`);
    const header = write('header', Buffer.from([0, 0, 8, 3, 0, 0]));
    await expect(readIdx(header)).rejects.toThrow(`${header}: truncated IDX header: 3 dimensions need 16 bytes, the file has 6`);
    const long = write('long', idx(0x08, [2], Buffer.from([1, 2, 3])));
    await expect(readIdx(long)).rejects.toThrow(/1 bytes past the \[2\] uint8 elements/);
    const gz = zlib.gzipSync(idx(0x08, [4, 3, 2], pixels));
    const corrupt = write('corrupt.gz', gz.subarray(0, gz.length - 10));
    await expect(readIdx(corrupt)).rejects.toThrow(`${corrupt}: corrupt gzip data`);
    await expect(readIdx(path.join(dir, 'none'))).rejects.toThrow(/^readIdx: cannot read .*none: no such file/);
  });
});

describe('loadImageDataset', () => {
  const N = 6;
  const px = Buffer.from(Array.from({ length: N * 28 * 28 }, (_, k) => (k * 7) % 256));
  const labels = Buffer.from([3, 1, 4, 1, 5, 9]);
  test('x [N, 1, 28, 28] in [0, 1] then normalized, y int64 [N]', async () => {
    const images = write('img-idx3-ubyte.gz', zlib.gzipSync(idx(0x08, [N, 28, 28], px)));
    const lab = write('lab-idx1-ubyte', idx(0x08, [N], labels));
    const ds = await loadImageDataset({ images, labels: lab });
    expect(ds.x.shape).toEqual([N, 1, 28, 28]);
    expect(ds.x.dtype).toBe('float32');
    expect(ds.y.dtype).toBe('int64');
    expect(i64(ds.y)).toEqual([3, 1, 4, 1, 5, 9]);
    const x = f32(ds.x);
    for (const k of [0, 1, 100, 4703]) expect(x[k]).toBeCloseTo(px[k] / 255, 6);
    const norm = await loadImageDataset({ images, labels: lab, normalize: { mean: 0.1307, std: 0.3081 }, limit: 2 });
    expect(norm.x.shape).toEqual([2, 1, 28, 28]);
    expect(i64(norm.y)).toEqual([3, 1]);
    expect(f32(norm.x)[37]).toBeCloseTo((px[37] / 255 - 0.1307) / 0.3081, 5);
  });
  test('mismatched counts and wrong shapes name the file', async () => {
    const images = write('img2', idx(0x08, [N, 28, 28], px));
    const lab5 = write('lab5', idx(0x08, [5], labels.subarray(0, 5)));
    await expect(loadImageDataset({ images, labels: lab5 })).rejects.toThrow(`${lab5}: 5 labels for 6 images in ${images}`);
    await expect(loadImageDataset({ images: lab5, labels: lab5 })).rejects.toThrow(`${lab5}: expected uint8 images [N, H, W], got uint8 [5]`);
    await expect(loadImageDataset({ images, labels: lab5, normalize: { mean: 0, std: 0 } })).rejects.toThrow(
      'loadImageDataset: normalize.std must be positive, got number 0',
    );
  });
});

describe('readCifar10Batch', () => {
  test('records of 1 label byte + 3 planes of 32x32', async () => {
    const N = 3;
    const buf = Buffer.alloc(N * 3073);
    for (let i = 0; i < N; i++) {
      buf[i * 3073] = [6, 9, 0][i];
      for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) buf[i * 3073 + 1 + c * 1024 + p] = (i * 50 + c * 80 + p) % 256;
    }
    const f = write('data_batch_1.bin', buf);
    const ds = await readCifar10Batch(f);
    expect(ds.x.shape).toEqual([N, 3, 32, 32]);
    expect(i64(ds.y)).toEqual([6, 9, 0]);
    const x = f32(ds.x);
    // x[i, c, h, w] = pixel (i*50 + c*80 + h*32 + w) % 256 / 255
    for (const [i, c, h, w] of [[0, 0, 0, 0], [1, 2, 5, 7], [2, 1, 31, 31]]) {
      expect(x[((i * 3 + c) * 32 + h) * 32 + w]).toBeCloseTo(((i * 50 + c * 80 + h * 32 + w) % 256) / 255, 6);
    }
    const n = await readCifar10Batch(f, { normalize: { mean: [0.5, 0.4, 0.3], std: [0.25, 0.5, 1] } });
    const xn = f32(n.x);
    expect(xn[(1 * 3 + 2) * 1024 + 10]).toBeCloseTo(((50 + 160 + 10) / 255 - 0.3) / 1, 5);
    expect(xn[(0 * 3 + 0) * 1024 + 3]).toBeCloseTo((3 / 255 - 0.5) / 0.25, 5);
    const bad = write('bad.bin', buf.subarray(0, 3073 * 2 + 5));
    await expect(readCifar10Batch(bad)).rejects.toThrow(`${bad}: not a CIFAR-10 batch: 6151 bytes is not a whole number of 3073-byte records`);
    const labelBad = Buffer.from(buf);
    labelBad[3073] = 12;
    const lb = write('label.bin', labelBad);
    await expect(readCifar10Batch(lb)).rejects.toThrow(`${lb}: record 1 (byte offset 3073) has label 12; CIFAR-10 labels are 0-9`);
    await expect(readCifar10Batch(f, { normalize: { mean: [0.5], std: 1 } })).rejects.toThrow(/normalize\.mean must be a number or an array of 3 numbers/);
  });
});

describe('ImageBatches', () => {
  const N = 10;
  // x[i] is filled with i, y[i] = 100 + i: a batch shows which examples it holds.
  const x = arange(0, N).reshape([N, 1, 1, 1]).mul(tensor(new Float32Array(4).fill(1), { shape: [1, 1, 2, 2] }));
  const y = tensor(BigInt64Array.from({ length: N }, (_, i) => BigInt(100 + i)));

  test('in order: narrow batches, sizes, last short batch, dropLast', () => {
    const b = new ImageBatches({ x, y }, { batchSize: 4 });
    const got = [...b];
    expect(b.numBatches).toBe(3);
    expect(got.map((g) => g.x.shape)).toEqual([[4, 1, 2, 2], [4, 1, 2, 2], [2, 1, 2, 2]]);
    expect(i64(got[2].y)).toEqual([108, 109]);
    expect(f32(got[1].x)).toEqual([4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7]);
    expect(got[0].inputs).toEqual([got[0].x]);
    expect(got[0].target).toBe(got[0].y);
    const d = new ImageBatches({ x, y }, { batchSize: 4, dropLast: true });
    expect([...d].map((g) => g.y.shape[0])).toEqual([4, 4]);
  });

  test('seeded shuffle: rows match their indices, every example once, reproducible', () => {
    const b = new ImageBatches({ x, y }, { batchSize: 3, shuffle: true, seed: 7 });
    const seen: number[] = [];
    for (const g of b.epoch(1)) {
      const ids = Array.from(g.indices);
      expect(i64(g.y)).toEqual(ids.map((i) => 100 + i));
      expect(f32(g.x)).toEqual(ids.flatMap((i) => [i, i, i, i]));
      seen.push(...ids);
    }
    expect([...seen].sort((a, c) => a - c)).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(seen).not.toEqual(Array.from({ length: N }, (_, i) => i));
    const again = new ImageBatches({ x, y }, { batchSize: 3, shuffle: true, seed: 7 });
    expect(Array.from(again.order(1))).toEqual(seen);
    expect(Array.from(again.order(2))).not.toEqual(seen);
    // Iteration advances the epoch.
    const e1 = [...again].flatMap((g) => Array.from(g.indices));
    const e2 = [...again].flatMap((g) => Array.from(g.indices));
    expect(e1).toEqual(seen);
    expect(e2).toEqual(Array.from(b.order(2)));
  });

  test('argument errors', () => {
    expect(() => new ImageBatches({ x, y: y.narrow(0, 0, 5) })).toThrow('ImageBatches: dataset.y has 5 entries along dim 0 but dataset.x has 10');
    expect(() => new ImageBatches({ x, y }, { batchSize: 0 })).toThrow(RangeError);
    expect(() => new ImageBatches({ x } as never)).toThrow(/dataset must be an object/);
  });
});
