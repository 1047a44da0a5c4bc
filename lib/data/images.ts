// Image classification data: IDX files (MNIST, Fashion-MNIST, raw or gzip-compressed),
// CIFAR-10 binary batches, and seeded mini-batches cut from the whole-dataset tensor
// with narrow/indexSelect.

import * as fs from 'fs';
import { promisify } from 'util';
import * as zlib from 'zlib';
import * as is from '../core/is';
import { Device, Tensor, tensor } from '../core/tensor';
import { DataFormatError, readError } from './errors';
import { mixSeed, mulberry32, permutation, seedArg } from './random';

const gunzip = promisify(zlib.gunzip);

/** Reads a whole file, decompressing it when it starts with the gzip magic 1f 8b. */
export async function readMaybeGzip(where: string, file: string): Promise<Buffer> {
  if (typeof file !== 'string' || file === '') throw is.invalidType(where, 'path', 'a file path', file);
  let buf: Buffer;
  try {
    buf = await fs.promises.readFile(file);
  } catch (e) {
    throw readError(where, file, e);
  }
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = await gunzip(buf);
    } catch (e) {
      throw new DataFormatError(file, undefined, `corrupt gzip data: ${(e as Error).message}`);
    }
  }
  return buf;
}

/** IDX element types by their type code. */
const IDX_TYPES: Record<number, { name: string; size: number }> = {
  0x08: { name: 'uint8', size: 1 },
  0x09: { name: 'int8', size: 1 },
  0x0b: { name: 'int16', size: 2 },
  0x0c: { name: 'int32', size: 4 },
  0x0d: { name: 'float32', size: 4 },
  0x0e: { name: 'float64', size: 8 },
};

/** Element types of IDX files. */
export type IdxType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** A decoded IDX file. */
export interface IdxFile {
  /** Size of each dimension. */
  dims: number[];
  /** Element type. */
  type: IdxType;
  /** The elements in row-major order (Uint8Array for uint8, the usual case; native byte order otherwise). */
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

/** Decodes an IDX file already in memory (uncompressed); `file` names it in errors. */
export function parseIdx(buf: Uint8Array, file = '<buffer>'): IdxFile {
  const fail = (reason: string): DataFormatError => new DataFormatError(file, undefined, reason);
  if (buf.length < 4) throw fail(`not an IDX file: ${buf.length} bytes, shorter than the 4-byte magic number`);
  const hex = Array.from(buf.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  const type = IDX_TYPES[buf[2]];
  if (buf[0] !== 0 || buf[1] !== 0 || type === undefined || buf[3] === 0) {
    throw fail(`not an IDX file: bad magic number ${hex} (expected 00 00, a type code 08/09/0b/0c/0d/0e and a dimension count)`);
  }
  const ndims = buf[3];
  const headerBytes = 4 + 4 * ndims;
  if (buf.length < headerBytes) throw fail(`truncated IDX header: ${ndims} dimensions need ${headerBytes} bytes, the file has ${buf.length}`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < ndims; d++) dims.push(dv.getUint32(4 + 4 * d, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const bytes = count * type.size;
  const have = buf.length - headerBytes;
  if (have < bytes) {
    throw fail(`truncated IDX data: dimensions [${dims.join(', ')}] of ${type.name} need ${bytes} bytes after the header, the file has ${have}`);
  }
  if (have > bytes) throw fail(`IDX data has ${have - bytes} bytes past the [${dims.join(', ')}] ${type.name} elements the header describes`);
  const at = headerBytes;
  let data: IdxFile['data'];
  switch (type.name) {
    case 'uint8':
      data = new Uint8Array(buf.buffer, buf.byteOffset + at, count);
      break;
    case 'int8':
      data = new Int8Array(buf.buffer, buf.byteOffset + at, count);
      break;
    case 'int16':
      data = new Int16Array(count);
      for (let k = 0; k < count; k++) data[k] = dv.getInt16(at + 2 * k, false);
      break;
    case 'int32':
      data = new Int32Array(count);
      for (let k = 0; k < count; k++) data[k] = dv.getInt32(at + 4 * k, false);
      break;
    case 'float32':
      data = new Float32Array(count);
      for (let k = 0; k < count; k++) data[k] = dv.getFloat32(at + 4 * k, false);
      break;
    default:
      data = new Float64Array(count);
      for (let k = 0; k < count; k++) data[k] = dv.getFloat64(at + 8 * k, false);
  }
  return { dims, type: type.name as IdxType, data };
}

/** Reads an IDX file (MNIST, Fashion-MNIST), raw or gzip-compressed (detected by its magic bytes). */
export async function readIdx(file: string): Promise<IdxFile> {
  return parseIdx(await readMaybeGzip('readIdx', file), file);
}

/** Per-channel (or global) normalization applied after scaling pixels to [0, 1]: (x - mean) / std. */
export interface Normalize {
  mean: number | number[];
  std: number | number[];
}

function normalizeArg(where: string, value: unknown, channels: number): { mean: Float64Array; std: Float64Array } | null {
  if (value === undefined) return null;
  const o = is.options<Normalize>(where, value, ['mean', 'std']);
  const per = (name: 'mean' | 'std'): Float64Array => {
    const v = o[name];
    const out = new Float64Array(channels);
    if (typeof v === 'number') out.fill(is.finite(where, `normalize.${name}`, v));
    else if (Array.isArray(v) && v.length === channels) v.forEach((x, c) => (out[c] = is.finite(where, `normalize.${name}[${c}]`, x)));
    else throw is.invalidType(where, `normalize.${name}`, `a number or an array of ${channels} numbers`, v);
    return out;
  };
  const mean = per('mean');
  const std = per('std');
  std.forEach((s, c) => {
    if (!(s > 0)) throw is.invalidRange(where, `normalize.std${channels > 1 ? `[${c}]` : ''}`, 'positive', s);
  });
  return { mean, std };
}

/** Converts uint8 pixels [N, C, H, W] (planes contiguous per channel) to float32 in [0, 1], normalized. */
function toFloatImages(pixels: Uint8Array, channels: number, plane: number, norm: { mean: Float64Array; std: Float64Array } | null): Float32Array {
  const out = new Float32Array(pixels.length);
  const per = channels * plane;
  for (let c = 0; c < channels; c++) {
    const a = norm ? 1 / (255 * norm.std[c]) : 1 / 255;
    const b = norm ? -norm.mean[c] / norm.std[c] : 0;
    for (let base = c * plane; base < pixels.length; base += per) {
      for (let k = base, end = base + plane; k < end; k++) out[k] = pixels[k] * a + b;
    }
  }
  return out;
}

/** An image dataset: x float32 [N, C, H, W], y int64 [N]. */
export interface ImageDataset {
  x: Tensor;
  y: Tensor;
}

/** Options of {@link loadImageDataset}. */
export interface ImageDatasetOptions {
  /** The IDX images file: uint8 [N, H, W]. */
  images: string;
  /** The IDX labels file: uint8 [N]. */
  labels: string;
  /** Normalization after scaling to [0, 1]. */
  normalize?: Normalize;
  /** Keep only the first `limit` images. */
  limit?: number;
}

/**
 * Loads an IDX image/label pair (MNIST layout): x float32 [N, 1, H, W] scaled to [0, 1]
 * and normalized, y int64 [N].
 */
export async function loadImageDataset(options: ImageDatasetOptions): Promise<ImageDataset> {
  const where = 'loadImageDataset';
  if (options === undefined) throw new TypeError(`${where}: options with images and labels are required`);
  const o = is.options<ImageDatasetOptions>(where, options, ['images', 'labels', 'normalize', 'limit']);
  if (typeof o.images !== 'string') throw is.invalidType(where, 'images', 'a file path', o.images);
  if (typeof o.labels !== 'string') throw is.invalidType(where, 'labels', 'a file path', o.labels);
  const norm = normalizeArg(where, o.normalize, 1);
  const limit = o.limit === undefined ? Infinity : is.integer(where, 'limit', o.limit, 1);
  const [images, labels] = await Promise.all([readIdx(o.images), readIdx(o.labels)]);
  if (images.type !== 'uint8' || images.dims.length !== 3) {
    throw new DataFormatError(o.images, undefined, `expected uint8 images [N, H, W], got ${images.type} [${images.dims.join(', ')}]`);
  }
  if (labels.type !== 'uint8' || labels.dims.length !== 1) {
    throw new DataFormatError(o.labels, undefined, `expected uint8 labels [N], got ${labels.type} [${labels.dims.join(', ')}]`);
  }
  const [N0, H, W] = images.dims;
  if (labels.dims[0] !== N0) {
    throw new DataFormatError(o.labels, undefined, `${labels.dims[0]} labels for ${N0} images in ${o.images}`);
  }
  const N = Math.min(N0, limit);
  const pixels = (images.data as Uint8Array).subarray(0, N * H * W);
  const x = toFloatImages(pixels, 1, H * W, norm);
  const y = new BigInt64Array(N);
  const l = labels.data as Uint8Array;
  for (let i = 0; i < N; i++) y[i] = BigInt(l[i]);
  return { x: tensor(x, { shape: [N, 1, H, W] }), y: tensor(y, { shape: [N] }) };
}

/** Options of {@link readCifar10Batch}. */
export interface CifarOptions {
  /** Normalization after scaling to [0, 1]: a number or 3 per-channel numbers for mean and std. */
  normalize?: Normalize;
}

/** CIFAR-10 class names by label. */
export const CIFAR10_CLASSES: readonly string[] = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/**
 * Reads a CIFAR-10 binary batch (data_batch_N.bin, test_batch.bin: records of 1 label
 * byte and 3072 pixel bytes, red, green and blue planes of 32×32): x float32
 * [N, 3, 32, 32] in [0, 1] (then normalized), y int64 [N].
 */
export async function readCifar10Batch(file: string, options?: CifarOptions): Promise<ImageDataset> {
  const where = 'readCifar10Batch';
  const o = is.options<CifarOptions>(where, options, ['normalize']);
  const norm = normalizeArg(where, o.normalize, 3);
  const buf = await readMaybeGzip(where, file);
  const REC = 3073;
  if (buf.length === 0) throw new DataFormatError(file, undefined, 'empty file');
  if (buf.length % REC !== 0) {
    throw new DataFormatError(file, undefined, `not a CIFAR-10 batch: ${buf.length} bytes is not a whole number of ${REC}-byte records (1 label + 3072 pixels)`);
  }
  const N = buf.length / REC;
  const pixels = new Uint8Array(N * 3072);
  const y = new BigInt64Array(N);
  for (let i = 0; i < N; i++) {
    const label = buf[i * REC];
    if (label > 9) throw new DataFormatError(file, undefined, `record ${i} (byte offset ${i * REC}) has label ${label}; CIFAR-10 labels are 0-9`);
    y[i] = BigInt(label);
    pixels.set(buf.subarray(i * REC + 1, (i + 1) * REC), i * 3072);
  }
  const x = toFloatImages(pixels, 3, 1024, norm);
  return { x: tensor(x, { shape: [N, 3, 32, 32] }), y: tensor(y, { shape: [N] }) };
}

/** Options of {@link ImageBatches}. */
export interface ImageBatchesOptions {
  /** Examples per batch. Default 64. */
  batchSize?: number;
  /** Shuffle each epoch (seeded). Default false. */
  shuffle?: boolean;
  /** Seed of the shuffles; epoch e uses a seed mixed from (seed, e). Default 0. */
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize. Default false. */
  dropLast?: boolean;
  /** Move each batch to this device (keep the dataset on the CPU, train on CUDA). */
  device?: Device;
}

/** One batch of {@link ImageBatches}; `inputs`/`target` make it a `fit()` batch. */
export interface ImageBatch {
  x: Tensor;
  y: Tensor;
  /** The examples' indices in the dataset. */
  indices: Int32Array;
  /** [x]. */
  inputs: Tensor[];
  /** y. */
  target: Tensor;
}

/**
 * Mini-batches of an in-memory dataset, cut with narrow (in order) or indexSelect (a
 * seeded permutation per epoch): no per-element JavaScript work per batch. Iterating the
 * object runs epochs 1, 2, ...; `epoch(e)` gives epoch e again, for `fit()`.
 */
export class ImageBatches implements Iterable<ImageBatch> {
  private readonly x: Tensor;
  private readonly y: Tensor;
  private readonly n: number;
  private readonly batchSize: number;
  private readonly shuffle: boolean;
  private readonly seed: number;
  private readonly dropLast: boolean;
  private readonly device: Device | null;
  private nextEpoch = 1;

  constructor(dataset: ImageDataset, options?: ImageBatchesOptions) {
    const where = 'ImageBatches';
    if (!is.isPlainObject(dataset) || !(dataset.x instanceof Tensor) || !(dataset.y instanceof Tensor)) {
      throw is.invalidType(where, 'dataset', 'an object { x: Tensor, y: Tensor }', dataset);
    }
    const xs = dataset.x.shape;
    const ys = dataset.y.shape;
    if (xs.length < 1 || xs[0] === 0) throw new RangeError(`${where}: dataset.x must have a non-empty first dimension, got shape [${xs.join(', ')}]`);
    if (ys[0] !== xs[0]) throw new RangeError(`${where}: dataset.y has ${ys[0]} entries along dim 0 but dataset.x has ${xs[0]}`);
    const o = is.options<ImageBatchesOptions>(where, options, ['batchSize', 'shuffle', 'seed', 'dropLast', 'device']);
    this.x = dataset.x;
    this.y = dataset.y;
    this.n = xs[0];
    this.batchSize = o.batchSize === undefined ? 64 : is.integer(where, 'batchSize', o.batchSize, 1);
    this.shuffle = o.shuffle === undefined ? false : is.boolean(where, 'shuffle', o.shuffle);
    this.seed = seedArg(where, o.seed);
    this.dropLast = o.dropLast === undefined ? false : is.boolean(where, 'dropLast', o.dropLast);
    this.device = o.device === undefined ? null : o.device;
    if (this.dropLast && this.n < this.batchSize) {
      throw new RangeError(`${where}: dropLast with batchSize ${this.batchSize} leaves no batch of ${this.n} examples`);
    }
  }

  /** Number of examples. */
  get size(): number {
    return this.n;
  }
  /** Number of batches per epoch. */
  get numBatches(): number {
    return this.dropLast ? Math.floor(this.n / this.batchSize) : Math.ceil(this.n / this.batchSize);
  }

  /** The example order of epoch `epoch`. */
  order(epoch = 1): Int32Array {
    is.integer('ImageBatches.order', 'epoch', epoch, 0);
    return permutation(this.n, this.shuffle ? mulberry32(mixSeed(this.seed, epoch)) : null);
  }

  /** The batches of epoch `epoch`. */
  *epoch(epoch = 1): IterableIterator<ImageBatch> {
    const order = this.order(epoch);
    const perm = this.shuffle ? tensor(order, { device: this.x.device }) : null;
    const B = this.batchSize;
    for (let s = 0; s < this.n; s += B) {
      const len = Math.min(B, this.n - s);
      if (len < B && this.dropLast) break;
      let x: Tensor;
      let y: Tensor;
      if (perm) {
        const idx = perm.narrow(0, s, len);
        x = this.x.indexSelect(0, idx);
        y = this.y.indexSelect(0, idx.device === this.y.device ? idx : idx.to(this.y.device));
      } else {
        x = this.x.narrow(0, s, len);
        y = this.y.narrow(0, s, len);
      }
      if (this.device) {
        x = x.to(this.device);
        y = y.to(this.device);
      }
      yield { x, y, indices: order.subarray(s, s + len), inputs: [x], target: y };
    }
  }

  /** Runs the next epoch (1, 2, 3, ... on successive loops). */
  [Symbol.iterator](): Iterator<ImageBatch> {
    return this.epoch(this.nextEpoch++);
  }
}
