import {
  arange,
  backends,
  cat,
  crossEntropy,
  DType,
  full,
  Generator,
  getNumThreads,
  mseLoss,
  ones,
  rand,
  randint,
  randn,
  setNumThreads,
  stack,
  Tensor,
  tensor as tensorOf,
  TorchError,
  where,
  zeros,
} from '../lib';

type TensorData = Parameters<typeof tensorOf>[0];
type TensorOptions = Parameters<typeof tensorOf>[1];
const allBooleans = (d: unknown): boolean => (Array.isArray(d) ? d.every(allBooleans) : typeof d === 'boolean');
// The tests below compute with float data written as integer literals; tensor() makes
// those int64 (as torch.tensor does), so they ask for float32 unless they give a dtype.
// The creation tests call tensorOf() itself.
const tensor = (data: TensorData, options?: TensorOptions) =>
  tensorOf(data, options?.dtype !== undefined || ArrayBuffer.isView(data) || allBooleans(data) ? options : { ...options, dtype: 'float32' });
import * as v8 from 'v8';
import * as vm from 'vm';

import { f32, f64, i64, lcg, u8 } from './helpers/util';

/** A gc() hook even when node runs without --expose-gc (jest does not expose it). */
function forceGc(): (() => void) | null {
  const g = (global as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
}

const close = (actual: ArrayLike<number>, expected: ArrayLike<number>, digits = 5): void => {
  expect(actual.length).toBe(expected.length);
  for (let k = 0; k < expected.length; k++) expect(actual[k]).toBeCloseTo(expected[k], digits);
};
const arr = (t: Tensor): number[] => Array.from(t.toTypedArray() as ArrayLike<number>);

/** Runs fn, expects it to throw an instance of cls, returns the error. */
function thrown(fn: () => unknown, cls: new (...args: never[]) => Error): Error {
  let caught: unknown = undefined;
  let threw = false;
  try {
    fn();
  } catch (e) {
    threw = true;
    caught = e;
  }
  expect(threw).toBe(true);
  expect(isA(caught, cls)).toBe(true);
  return caught as Error;
}

/**
 * instanceof that also accepts TypeError/RangeError/TypedArrays made by the addon: jest
 * runs tests in a vm context, while N-API creates built-in objects in Node's main
 * context, so their constructors are a different realm's (same name, real Error).
 */
function isA(value: unknown, cls: new (...args: never[]) => unknown): boolean {
  if (value instanceof cls) return true;
  if (typeof value !== 'object' || value === null) return false;
  if (cls === TorchError) return false; // handed to the addon, always this realm's
  const tag = Object.prototype.toString.call(value);
  const ctor = (value as { constructor?: { name?: string } }).constructor;
  const isErrorClass = cls === (Error as unknown) || cls.prototype instanceof Error;
  if (isErrorClass) return tag === '[object Error]' && ctor?.name === cls.name;
  return tag === `[object ${cls.name}]`;
}

// ---------------------------------------------------------------------------------
describe('creation', () => {
  test('from each TypedArray kind infers the dtype', () => {
    const cases: Array<[ArrayBufferView, DType, number[]]> = [
      [new Float32Array([1.5, -2, 3]), 'float32', [1.5, -2, 3]],
      [new Float64Array([1.25, -2, 1e-300]), 'float64', [1.25, -2, 1e-300]],
      [new Int32Array([1, -2, 2147483647]), 'int32', [1, -2, 2147483647]],
      [new Uint8Array([0, 7, 255]), 'uint8', [0, 7, 255]],
      [new Uint8ClampedArray([0, 7, 255]), 'uint8', [0, 7, 255]],
      [new Int8Array([-128, 0, 127]), 'int32', [-128, 0, 127]],
      [new Int16Array([-32768, 1, 32767]), 'int32', [-32768, 1, 32767]],
    ];
    for (const [data, dtype, values] of cases) {
      const t = tensor(data);
      expect(t.dtype).toBe(dtype);
      expect(t.shape).toEqual([3]);
      expect(t.device).toBe('cpu');
      expect(t.rank).toBe(1);
      expect(t.numel).toBe(3);
      expect(arr(t)).toEqual(values);
    }
    const big = tensor(new BigInt64Array([1n, -2n, 9007199254740993n]));
    expect(big.dtype).toBe('int64');
    expect(Array.from(i64(big))).toEqual([1n, -2n, 9007199254740993n]);
  });

  test('a Float32Array converted to every dtype', () => {
    const data = new Float32Array([0.5, -2, 1024, 0]);
    const expected: Record<DType, number[]> = {
      float32: [0.5, -2, 1024, 0],
      float64: [0.5, -2, 1024, 0],
      float16: [0.5, -2, 1024, 0],
      bfloat16: [0.5, -2, 1024, 0],
      int64: [0, -2, 1024, 0],
      int32: [0, -2, 1024, 0],
      uint8: [0, 254, 0, 0], // -2 wraps; 1024 wraps to 0 (C conversion of out-of-range is LibTorch's; only checked for the in-range values below)
      bool: [1, 1, 1, 0],
    };
    for (const dtype of Object.keys(expected) as DType[]) {
      const t = tensor(data, { dtype, shape: [2, 2] });
      expect(t.dtype).toBe(dtype);
      expect(t.shape).toEqual([2, 2]);
      const out = t.toTypedArray();
      if (dtype === 'int64') expect(Array.from(out as BigInt64Array)).toEqual([0n, -2n, 1024n, 0n]);
      else if (dtype === 'uint8') expect([out[0], out[3]]).toEqual([0, 0]);
      else expect(Array.from(out as ArrayLike<number>)).toEqual(expected[dtype]);
      // the TypedArray kind returned for each dtype
      const kind = {
        float32: Float32Array,
        float64: Float64Array,
        float16: Float32Array,
        bfloat16: Float32Array,
        int64: BigInt64Array,
        int32: Int32Array,
        uint8: Uint8Array,
        bool: Uint8Array,
      }[dtype];
      expect(isA(out, kind)).toBe(true);
    }
  });

  test('nested arrays in every dtype round trip through toArray', () => {
    const data = [
      [0.5, -2],
      [1024, 3],
    ];
    for (const dtype of ['float32', 'float64', 'float16', 'bfloat16'] as DType[]) {
      const t = tensor(data, { dtype });
      expect(t.dtype).toBe(dtype);
      expect(t.shape).toEqual([2, 2]);
      expect(t.toArray()).toEqual(data);
    }
    const ints = [
      [7, -2],
      [1024, 2 ** 31 - 1],
    ];
    for (const dtype of ['int64', 'int32'] as DType[]) {
      const t = tensor(ints, { dtype });
      expect(t.dtype).toBe(dtype);
      expect(t.toArray()).toEqual(ints);
    }
    expect(i64(tensor([2 ** 53 - 1], { dtype: 'int64' }))[0]).toBe(2n ** 53n - 1n);
    expect(tensor([[1, 2], [3, 250]], { dtype: 'uint8' }).toArray()).toEqual([[1, 2], [3, 250]]);
    expect(tensor([[1, 0], [0, 2]], { dtype: 'bool' }).toArray()).toEqual([[true, false], [false, true]]);
  });

  test('float16/bfloat16 keep exactly representable values', () => {
    const values = [0.5, -2, 1024, 0.25, -0.125, 3, 65504];
    const h = tensor(values, { dtype: 'float16' });
    expect(Array.from(f32(h))).toEqual(values);
    const b = tensor(values.slice(0, 6), { dtype: 'bfloat16' });
    expect(Array.from(f32(b))).toEqual(values.slice(0, 6));
    // rounding to the nearest representable value
    expect(f32(tensor([1 + 2 ** -12], { dtype: 'float16' }))[0]).toBe(1);
    expect(f32(tensor([1 + 2 ** -9], { dtype: 'bfloat16' }))[0]).toBe(1);
  });

  test('as torch.tensor: booleans infer bool, integers int64, any fraction float32', () => {
    const ints = tensorOf([[1, 2], [3, -4]]);
    expect(ints.dtype).toBe('int64');
    expect(ints.toArray()).toEqual([[1, 2], [3, -4]]);
    expect(tensorOf(7).dtype).toBe('int64');
    expect(tensorOf([1, 2.5]).dtype).toBe('float32');
    expect(tensorOf([1, 2], { dtype: 'float64' }).dtype).toBe('float64');
    expect(tensorOf([true, 2]).dtype).toBe('int64'); // torch.tensor([True, 2]) is int64
    expect(tensorOf([true, 2.5]).dtype).toBe('float32');
    const b = tensor([true, false, true]);
    expect(b.dtype).toBe('bool');
    expect(Array.from(u8(b))).toEqual([1, 0, 1]);
    expect(b.toArray()).toEqual([true, false, true]);
    const nested = tensor([[true], [false]]);
    expect(nested.dtype).toBe('bool');
    expect(nested.shape).toEqual([2, 1]);
    const mixed = tensor([true, 2]); // float32 asked for
    expect(mixed.dtype).toBe('float32');
    expect(arr(mixed)).toEqual([1, 2]);
    expect(tensor(true).dtype).toBe('bool');
    expect(tensor(true).toArray()).toBe(true);
  });

  test('scalars are 0-d', () => {
    const s = tensor(3.5);
    expect(s.shape).toEqual([]);
    expect(s.rank).toBe(0);
    expect(s.numel).toBe(1);
    expect(s.item()).toBe(3.5);
    expect(s.toArray()).toBe(3.5);
    expect(tensor(7, { dtype: 'int64' }).toArray()).toBe(7);
    expect(tensor(2.5, { dtype: 'float64' }).item()).toBe(2.5);
  });

  test('empty arrays', () => {
    const e = tensor([]);
    expect(e.shape).toEqual([0]);
    expect(e.numel).toBe(0);
    expect(e.toArray()).toEqual([]);
    const e2 = tensor(new Float32Array(0), { shape: [2, 0] });
    expect(e2.shape).toEqual([2, 0]);
    expect(e2.toTypedArray().length).toBe(0);
  });

  test('3-d nested arrays', () => {
    const data = [
      [[1, 2, 3], [4, 5, 6]],
      [[7, 8, 9], [10, 11, 12]],
    ];
    const t = tensor(data);
    expect(t.shape).toEqual([2, 2, 3]);
    expect(arr(t)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(t.toArray()).toEqual(data);
  });

  test('int64 toArray rejects unsafe integers with RangeError', () => {
    const t = tensor(new BigInt64Array([2n ** 60n]));
    const e = thrown(() => t.toArray(), RangeError);
    expect(e.message).toMatch(/toArray/);
    expect(i64(t)[0]).toBe(2n ** 60n);
  });

  test('ragged arrays are a TypeError naming the position', () => {
    const e = thrown(() => tensor([[1, 2], [3]] as never), TypeError);
    expect(e.message).toMatch(/ragged/);
    expect(e.message).toMatch(/data\[1\]/);
    const e2 = thrown(() => tensor([[1, 2], 3] as never), TypeError);
    expect(e2.message).toMatch(/data\[1\]/);
    const e3 = thrown(() => tensor([1, 'x'] as never), TypeError);
    expect(e3.message).toMatch(/data\[1\]/);
  });

  test('full/zeros/ones/arange', () => {
    expect(arr(zeros([2, 2]))).toEqual([0, 0, 0, 0]);
    expect(zeros([2, 2]).dtype).toBe('float32');
    expect(arr(ones([3], { dtype: 'int32' }))).toEqual([1, 1, 1]);
    expect(ones([3], { dtype: 'int32' }).dtype).toBe('int32');
    expect(arr(full([2], 2.5, { dtype: 'float64' }))).toEqual([2.5, 2.5]);
    expect(zeros([]).shape).toEqual([]);
    expect(arr(arange(0, 5))).toEqual([0, 1, 2, 3, 4]);
    expect(arr(arange(1, 2, 0.25))).toEqual([1, 1.25, 1.5, 1.75]);
    expect(arr(arange(5, 0, -2, { dtype: 'int64' }).to('int32'))).toEqual([5, 3, 1]);
  });

  test('to() converts dtype; clone is independent', () => {
    const t = tensor([1.5, 2.5]);
    const d = t.to('float64');
    expect(d.dtype).toBe('float64');
    expect(arr(d)).toEqual([1.5, 2.5]);
    expect(t.to({ dtype: 'int32' }).dtype).toBe('int32');
    expect(t.to('cpu').device).toBe('cpu');
    const c = t.clone();
    c.fill_(0);
    expect(arr(t)).toEqual([1.5, 2.5]);
    expect(arr(c)).toEqual([0, 0]);
  });
});

// ---------------------------------------------------------------------------------
describe('zero-copy sharing', () => {
  test('a matching Float32Array shares memory both ways', () => {
    const a = new Float32Array([1, 2, 3, 4]);
    const t = tensor(a, { shape: [2, 2] });
    a[0] = 42;
    expect(f32(t)[0]).toBe(42);
    t.add_(1);
    expect(Array.from(a)).toEqual([43, 3, 4, 5]);
    t.mul_(2);
    expect(Array.from(a)).toEqual([86, 6, 8, 10]);
    t.zero_();
    expect(Array.from(a)).toEqual([0, 0, 0, 0]);
  });

  test('every matching kind shares (float64, int32, int64, uint8)', () => {
    const d = new Float64Array([1, 2]);
    tensor(d).fill_(9);
    expect(Array.from(d)).toEqual([9, 9]);
    const i = new Int32Array([1, 2]);
    tensor(i).copy_(tensor([6, 7]));
    expect(Array.from(i)).toEqual([6, 7]);
    const l = new BigInt64Array([1n, 2n]);
    tensor(l).mul_(tensor(new BigInt64Array([3n])));
    expect(Array.from(l)).toEqual([3n, 6n]);
    tensor(l).fill_(-4);
    expect(Array.from(l)).toEqual([-4n, -4n]);
    const u = new Uint8Array([1, 2]);
    tensor(u).fill_(200);
    expect(Array.from(u)).toEqual([200, 200]);
  });

  test('a subarray view shares at its byte offset', () => {
    const base = new Float32Array([0, 1, 2, 3, 4, 5]);
    const t = tensor(base.subarray(2, 4));
    expect(arr(t)).toEqual([2, 3]);
    t.fill_(-1);
    expect(Array.from(base)).toEqual([0, 1, -1, -1, 4, 5]);
  });

  test('a mismatched dtype copies', () => {
    const a = new Float32Array([1, 2, 3]);
    const t = tensor(a, { dtype: 'float64' });
    a[0] = 100;
    expect(arr(t)).toEqual([1, 2, 3]);
    t.fill_(7);
    expect(Array.from(a)).toEqual([100, 2, 3]);
    // Uint8Array to bool copies too
    const u = new Uint8Array([0, 2]);
    const b = tensor(u, { dtype: 'bool' });
    u[0] = 1;
    expect(Array.from(u8(b))).toEqual([0, 1]);
  });

  test('a TypedArray over a SharedArrayBuffer is copied, not shared', () => {
    const a = new Float32Array(new SharedArrayBuffer(12));
    a.set([1, 2, 3]);
    const t = tensor(a);
    expect(arr(t)).toEqual([1, 2, 3]);
    a[0] = 9;
    expect(arr(t)).toEqual([1, 2, 3]);
    expect(arr(tensor(a, { dtype: 'float64' }))).toEqual([9, 2, 3]);
  });

  test('a TypedArray over a resizable ArrayBuffer is copied, not shared', () => {
    const ab = new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(12, { maxByteLength: 1024 });
    const a = new Float32Array(ab);
    a.set([1, 2, 3]);
    const t = tensor(a);
    a[0] = 9;
    expect(arr(t)).toEqual([1, 2, 3]);
  });

  test('toTypedArray returns a copy', () => {
    const t = tensor([1, 2, 3]);
    const out = f32(t);
    out[0] = 99;
    expect(arr(t)).toEqual([1, 2, 3]);
  });

  test('the tensor keeps the array alive after the variable goes out of scope', () => {
    const make = (k: number): Tensor => {
      const data = new Float32Array(1024);
      for (let j = 0; j < data.length; j++) data[j] = k * 10000 + j;
      return tensor(data);
    };
    const kept: Tensor[] = [];
    for (let k = 0; k < 300; k++) {
      kept.push(make(k));
      // churn garbage so the young generation is collected
      for (let j = 0; j < 20; j++) new Float32Array(4096).fill(-1);
    }
    const gc = forceGc();
    if (gc) {
      gc();
      gc();
    }
    for (let k = 0; k < kept.length; k++) {
      const v = f32(kept[k]);
      expect(v[0]).toBe(k * 10000);
      expect(v[1023]).toBe(k * 10000 + 1023);
    }
    // views and results derived from a shared tensor keep it alive too
    const view = (() => tensor(new Float32Array([5, 6, 7, 8])).reshape([2, 2]).narrow(0, 1, 1))();
    for (let j = 0; j < 50; j++) new Float32Array(1 << 16);
    if (gc) gc();
    expect(arr(view)).toEqual([7, 8]);
  });

  test('the array is held while the tensor lives and released after dispose', async () => {
    const gc = forceGc();
    if (!gc) return; // cannot observe collection without a gc hook
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    let t: Tensor | null = null;
    const ref = (() => {
      const data = new Float32Array([1, 2, 3]);
      t = tensor(data);
      return new WeakRef(data);
    })();
    for (let k = 0; k < 3; k++) {
      await tick();
      gc();
    }
    expect(ref.deref()).toBeDefined();
    expect(arr(t)).toEqual([1, 2, 3]);
    t.dispose();
    t = null;
    for (let k = 0; k < 5 && ref.deref() !== undefined; k++) {
      await tick();
      gc();
    }
    expect(ref.deref()).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------
describe('ops', () => {
  const a = () => tensor([[1, 2, 3], [4, 5, 6]]);
  const b = () => tensor([[6, 5, 4], [3, 2, 1]]);

  test('arithmetic with tensors and numbers', () => {
    expect(arr(a().add(b()))).toEqual([7, 7, 7, 7, 7, 7]);
    expect(arr(a().sub(b()))).toEqual([-5, -3, -1, 1, 3, 5]);
    expect(arr(a().mul(b()))).toEqual([6, 10, 12, 12, 10, 6]);
    close(arr(a().div(b())), [1 / 6, 2 / 5, 3 / 4, 4 / 3, 5 / 2, 6]);
    expect(arr(a().add(1))).toEqual([2, 3, 4, 5, 6, 7]);
    expect(arr(a().sub(1))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(arr(a().mul(-2))).toEqual([-2, -4, -6, -8, -10, -12]);
    expect(arr(a().div(2))).toEqual([0.5, 1, 1.5, 2, 2.5, 3]);
    // broadcasting
    expect(arr(a().add(tensor([10, 20, 30])))).toEqual([11, 22, 33, 14, 25, 36]);
    // integer true division gives float
    const q = tensor([1, 3], { dtype: 'int64' }).div(2);
    expect(q.dtype).toBe('float32');
    expect(arr(q)).toEqual([0.5, 1.5]);
    expect(arr(tensor([-3, 3]).remainder(2))).toEqual([1, 1]);
    expect(arr(a().maximum(3.5))).toEqual([3.5, 3.5, 3.5, 4, 5, 6]);
    expect(arr(a().minimum(b()))).toEqual([1, 2, 3, 3, 2, 1]);
  });

  test('pow, exp, log, sqrt and friends', () => {
    expect(arr(a().pow(2))).toEqual([1, 4, 9, 16, 25, 36]);
    expect(arr(tensor([2, 3]).pow(tensor([3, 2])))).toEqual([8, 9]);
    close(arr(tensor([0, 1, -1]).exp()), [1, Math.E, 1 / Math.E]);
    close(arr(tensor([1, Math.E, 0.5]).log()), [0, 1, Math.log(0.5)]);
    const l0 = arr(tensor([0, -1]).log());
    expect(l0[0]).toBe(-Infinity);
    expect(l0[1]).toBeNaN();
    expect(arr(tensor([4, 9, 0.25]).sqrt())).toEqual([2, 3, 0.5]);
    expect(arr(tensor([-1.5, 2]).neg())).toEqual([1.5, -2]);
    expect(arr(tensor([-1.5, 2]).abs())).toEqual([1.5, 2]);
    expect(arr(tensor([3]).square())).toEqual([9]);
    expect(arr(tensor([4]).reciprocal())).toEqual([0.25]);
  });

  test('relu, sigmoid, tanh', () => {
    expect(arr(tensor([-2, 0, 3]).relu())).toEqual([0, 0, 3]);
    const x = [-2, 0, 1.5];
    close(arr(tensor(x).sigmoid()), x.map((v) => 1 / (1 + Math.exp(-v))));
    close(arr(tensor(x).tanh()), x.map(Math.tanh));
  });

  test('comparisons give bool tensors', () => {
    const x = tensor([1, 2, 3]);
    const y = tensor([3, 2, 1]);
    const check = (t: Tensor, v: number[]) => {
      expect(t.dtype).toBe('bool');
      expect(Array.from(u8(t))).toEqual(v);
    };
    check(x.eq(y), [0, 1, 0]);
    check(x.ne(y), [1, 0, 1]);
    check(x.lt(y), [1, 0, 0]);
    check(x.le(y), [1, 1, 0]);
    check(x.gt(y), [0, 0, 1]);
    check(x.ge(y), [0, 1, 1]);
    check(x.eq(2), [0, 1, 0]);
    check(x.gt(1.5), [0, 1, 1]);
  });

  test('matmul 2x3 @ 3x2', () => {
    const m = a().matmul(tensor([[1, 2], [3, 4], [5, 6]]));
    expect(m.shape).toEqual([2, 2]);
    // [1 2 3]·[1 3 5] = 22, ·[2 4 6] = 28; [4 5 6]·[1 3 5] = 49, ·[2 4 6] = 64
    expect(m.toArray()).toEqual([[22, 28], [49, 64]]);
    // matrix @ vector
    expect(arr(a().matmul(tensor([1, 0, -1])))).toEqual([-2, -2]);
  });

  test('sum and mean with dim and keepdim', () => {
    expect(a().sum().item()).toBe(21);
    expect(a().sum().shape).toEqual([]);
    expect(arr(a().sum({ dim: 0 }))).toEqual([5, 7, 9]);
    expect(arr(a().sum({ dim: 1 }))).toEqual([6, 15]);
    expect(a().sum({ dim: 1, keepdim: true }).shape).toEqual([2, 1]);
    expect(a().sum({ dim: [0, 1] }).item()).toBe(21);
    expect(arr(a().sum({ dim: -1 }))).toEqual([6, 15]);
    expect(a().mean().item()).toBe(3.5);
    expect(arr(a().mean({ dim: 0 }))).toEqual([2.5, 3.5, 4.5]);
    const mk = a().mean({ dim: 1, keepdim: true });
    expect(mk.shape).toEqual([2, 1]);
    expect(arr(mk)).toEqual([2, 5]);
  });

  test('max/min full and with dim', () => {
    const x = tensor([[1, 9, 3], [7, 2, 8]]);
    expect(x.max().item()).toBe(9);
    expect(x.min().item()).toBe(1);
    const { values: v, indices: i } = x.max(1);
    expect(arr(v)).toEqual([9, 8]);
    expect(i.dtype).toBe('int64');
    expect(Array.from(i64(i))).toEqual([1n, 2n]);
    const { values: mv, indices: mi } = x.min(0, true);
    expect(mv.shape).toEqual([1, 3]);
    expect(arr(mv)).toEqual([1, 2, 3]);
    expect(Array.from(i64(mi))).toEqual([0n, 1n, 0n]);
  });

  test('argmax/argmin', () => {
    const x = tensor([[1, 9, 3], [7, 2, 8]]);
    expect(Number(i64(x.argmax())[0])).toBe(1);
    expect(Number(i64(x.argmin())[0])).toBe(0);
    expect(Array.from(i64(x.argmax(1)))).toEqual([1n, 2n]);
    expect(Array.from(i64(x.argmin(0)))).toEqual([0n, 1n, 0n]);
    expect(x.argmax(1, true).shape).toEqual([2, 1]);
  });

  test('norm p=2 and p=1', () => {
    const x = tensor([[3, -4], [0, 12]]);
    expect(x.norm()).toBeDefined();
    expect(x.norm().item()).toBeCloseTo(13, 5);
    expect(x.norm(1).item()).toBe(19);
    close(arr(x.norm(2, { dim: 1 })), [5, 12]);
    expect(arr(x.norm(1, { dim: 0 }))).toEqual([3, 16]);
    expect(x.norm(2, { dim: 1, keepdim: true }).shape).toEqual([2, 1]);
  });

  test('reshape/view (with -1), permute/transpose', () => {
    const x = arange(0, 6);
    expect(x.reshape([2, 3]).toArray()).toEqual([[0, 1, 2], [3, 4, 5]]);
    expect(x.reshape([-1, 2]).shape).toEqual([3, 2]);
    expect(x.view([3, -1]).shape).toEqual([3, 2]);
    expect(x.view([2, 3]).toArray()).toEqual([[0, 1, 2], [3, 4, 5]]);
    const m = x.reshape([2, 3]);
    expect(m.transpose(0, 1).toArray()).toEqual([[0, 3], [1, 4], [2, 5]]);
    expect(m.permute([1, 0]).toArray()).toEqual([[0, 3], [1, 4], [2, 5]]);
    const c = arange(0, 24).reshape([2, 3, 4]).permute([2, 0, 1]);
    expect(c.shape).toEqual([4, 2, 3]);
    // element [k, i, j] = i*12 + j*4 + k
    expect(arr(c.contiguous()).slice(0, 6)).toEqual([0, 4, 8, 12, 16, 20]);
    // a view shares memory
    const base = zeros([4]);
    base.view([2, 2]).fill_(3);
    expect(arr(base)).toEqual([3, 3, 3, 3]);
  });

  test('squeeze/unsqueeze/flatten/narrow', () => {
    const x = zeros([1, 3, 1]);
    expect(x.squeeze().shape).toEqual([3]);
    expect(x.squeeze(0).shape).toEqual([3, 1]);
    expect(x.squeeze(2).shape).toEqual([1, 3]);
    expect(tensor([1, 2]).unsqueeze(0).shape).toEqual([1, 2]);
    expect(tensor([1, 2]).unsqueeze(-1).shape).toEqual([2, 1]);
    expect(zeros([2, 3, 4]).flatten().shape).toEqual([24]);
    expect(zeros([2, 3, 4]).flatten(1).shape).toEqual([2, 12]);
    expect(zeros([2, 3, 4]).flatten(0, 1).shape).toEqual([6, 4]);
    const n = arange(0, 10).narrow(0, 3, 4);
    expect(arr(n)).toEqual([3, 4, 5, 6]);
    const m = a().narrow(1, 1, 2);
    expect(m.toArray()).toEqual([[2, 3], [5, 6]]);
  });

  test('indexSelect', () => {
    const x = a();
    expect(x.indexSelect(1, tensor([2, 0], { dtype: 'int64' })).toArray()).toEqual([[3, 1], [6, 4]]);
    expect(x.indexSelect(0, tensor(new Int32Array([1, 1]))).toArray()).toEqual([[4, 5, 6], [4, 5, 6]]);
  });

  test('cat/stack', () => {
    const x = tensor([[1, 2]]);
    const y = tensor([[3, 4]]);
    expect(cat([x, y]).toArray()).toEqual([[1, 2], [3, 4]]);
    expect(cat([x, y], 1).toArray()).toEqual([[1, 2, 3, 4]]);
    expect(cat([x, y], -1).shape).toEqual([1, 4]);
    expect(stack([x, y]).shape).toEqual([2, 1, 2]);
    expect(stack([tensor([1, 2]), tensor([3, 4])], 1).toArray()).toEqual([[1, 3], [2, 4]]);
  });

  test('where', () => {
    const c = tensor([true, false, true]);
    expect(arr(where(c, tensor([1, 2, 3]), tensor([-1, -2, -3])))).toEqual([1, -2, 3]);
  });

  test('clamp', () => {
    const x = tensor([-2, -0.5, 0.5, 2]);
    expect(arr(x.clamp(-1, 1))).toEqual([-1, -0.5, 0.5, 1]);
    expect(arr(x.clamp(0))).toEqual([0, 0, 0.5, 2]);
    expect(arr(x.clamp(undefined, 0))).toEqual([-2, -0.5, 0, 0]);
  });

  test('softmax/logSoftmax', () => {
    const x = [1, 2, 3];
    const z = x.reduce((s, v) => s + Math.exp(v), 0);
    const sm = x.map((v) => Math.exp(v) / z);
    close(arr(tensor(x).softmax(0)), sm);
    close(arr(tensor(x).logSoftmax(0)), sm.map(Math.log));
    const rows = tensor([[1, 2, 3], [0, 0, 0]]).softmax(1);
    close(arr(rows), [...sm, 1 / 3, 1 / 3, 1 / 3]);
    close(arr(rows.sum({ dim: -1 })), [1, 1]);
  });

  test('crossEntropy against a hand computation', () => {
    const logits = [
      [2, 1, 0.1],
      [0.5, 2.5, -1],
    ];
    const target = [0, 2];
    const nll = logits.map((row, n) => {
      const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      return lse - row[target[n]];
    });
    const expected = (nll[0] + nll[1]) / 2;
    const loss = crossEntropy(tensor(logits), tensor(target, { dtype: 'int64' }));
    expect(loss.shape).toEqual([]);
    expect(loss.item()).toBeCloseTo(expected, 5);
    // label smoothing eps: (1 - eps) * nll + eps * mean_c(-log p_c)
    const eps = 0.1;
    const smooth = logits.map((row, n) => {
      const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      const uniform = row.reduce((s, v) => s + (lse - v), 0) / row.length;
      return (1 - eps) * (lse - row[target[n]]) + eps * uniform;
    });
    const ls = crossEntropy(tensor(logits), tensor(target, { dtype: 'int64' }), { labelSmoothing: eps });
    expect(ls.item()).toBeCloseTo((smooth[0] + smooth[1]) / 2, 5);
  });

  test('mseLoss', () => {
    expect(mseLoss(tensor([1, 2, 3]), tensor([1, 4, 0])).item()).toBeCloseTo((0 + 4 + 9) / 3, 6);
  });

  test('integer tensors with integer numbers keep their dtype (as torch does with Python ints)', () => {
    const x = tensor([1, 2], { dtype: 'int64' });
    const y = x.add(1);
    expect(y.dtype).toBe('int64');
    expect(Array.from(i64(y))).toEqual([2n, 3n]);
    expect(x.mul(3).dtype).toBe('int64');
    expect(tensor([1, 2], { dtype: 'int32' }).sub(1).dtype).toBe('int32');
    // no precision lost above 2^24
    const big = tensor(new BigInt64Array([2n ** 40n + 1n]));
    expect(i64(big.add(0))[0]).toBe(2n ** 40n + 1n);
    // in place too: add_ with a tensor (default alpha 1) and with numbers
    const w = tensor([1, 2], { dtype: 'int64' });
    w.add_(tensor([10, 20], { dtype: 'int64' }));
    expect(Array.from(i64(w))).toEqual([11n, 22n]);
    const z = tensor([1, 2], { dtype: 'int32' });
    z.add_(5).mul_(2);
    expect(arr(z)).toEqual([12, 14]);
  });

  test('float64 keeps double precision', () => {
    const x = tensor([1, 1e-10], { dtype: 'float64' });
    expect(arr(x.add(1))).toEqual([2, 1 + 1e-10]);
  });
});

// ---------------------------------------------------------------------------------
describe('in-place ops', () => {
  test('add_/sub_/mul_/div_/copy_/fill_/zero_', () => {
    const x = tensor([1, 2, 3]);
    expect(x.add_(1)).toBe(x);
    expect(arr(x)).toEqual([2, 3, 4]);
    x.add_(tensor([1, 1, 1]), 2);
    expect(arr(x)).toEqual([4, 5, 6]);
    x.sub_(1);
    expect(arr(x)).toEqual([3, 4, 5]);
    x.sub_(tensor([1, 2, 3]), 0.5);
    expect(arr(x)).toEqual([2.5, 3, 3.5]);
    x.mul_(2);
    expect(arr(x)).toEqual([5, 6, 7]);
    x.mul_(tensor([2, 0, -1]));
    expect(arr(x)).toEqual([10, 0, -7]);
    x.div_(2);
    expect(arr(x)).toEqual([5, 0, -3.5]);
    x.div_(tensor([5, 1, -3.5]));
    expect(arr(x)).toEqual([1, 0, 1]);
    x.copy_(tensor([7, 8, 9], { dtype: 'int64' }));
    expect(x.dtype).toBe('float32');
    expect(arr(x)).toEqual([7, 8, 9]);
    x.copy_(tensor([1]));
    expect(arr(x)).toEqual([1, 1, 1]);
    x.fill_(-4.5);
    expect(arr(x)).toEqual([-4.5, -4.5, -4.5]);
    x.zero_();
    expect(arr(x)).toEqual([0, 0, 0]);
  });

  test('in-place ops on a leaf requiring grad are not recorded', () => {
    const w = tensor([1, 2]);
    w.requiresGrad = true;
    w.sub_(tensor([0.5, 0.5]), 2);
    expect(arr(w)).toEqual([0, 1]);
    w.mul_(3);
    w.add_(1);
    expect(arr(w)).toEqual([1, 4]);
    expect(w.requiresGrad).toBe(true);
    // still a leaf: gradients accumulate on it
    w.mul(w).sum().backward();
    expect(arr(w.grad!)).toEqual([2, 8]);
    // an optimizer step
    w.sub_(w.grad!, 0.5);
    expect(arr(w)).toEqual([0, 0]);
  });
});

// ---------------------------------------------------------------------------------
describe('autograd', () => {
  test('d/dx sum(x^2) = 2x', () => {
    const x = tensor([1, -2, 3]);
    expect(x.requiresGrad).toBe(false);
    expect(x.grad).toBeNull();
    x.requiresGrad = true;
    expect(x.requiresGrad).toBe(true);
    const y = x.pow(2).sum();
    expect(y.requiresGrad).toBe(true);
    y.backward();
    expect(arr(x.grad!)).toEqual([2, -4, 6]);
    // accumulates
    x.mul(x).sum().backward();
    expect(arr(x.grad!)).toEqual([4, -8, 12]);
    x.zeroGrad();
    expect(x.grad).toBeNull();
    x.mul(3).sum().backward();
    expect(arr(x.grad!)).toEqual([3, 3, 3]);
  });

  test('chain through matmul, mean, and a given output gradient', () => {
    const w = tensor([[1, 2], [3, 4]]);
    w.requiresGrad = true;
    const x = tensor([[1, 1]]);
    const out = x.matmul(w); // [1,2] shape
    out.backward(tensor([[1, 0]]));
    // d(out[0,0])/dw = x^T e0 -> [[1,0],[1,0]]
    expect(w.grad!.toArray()).toEqual([[1, 0], [1, 0]]);
    w.zeroGrad();
    const m = w.mul(w).mean();
    m.backward();
    close(arr(w.grad!), [0.5, 1, 1.5, 2]);
  });

  test('detach cuts the graph; crossEntropy has gradients softmax - onehot', () => {
    const x = tensor([1, 2]);
    x.requiresGrad = true;
    expect(x.mul(2).detach().requiresGrad).toBe(false);
    const logits = tensor([[1, 2, 3]]);
    logits.requiresGrad = true;
    crossEntropy(logits, tensor([1], { dtype: 'int64' })).backward();
    const z = Math.exp(1) + Math.exp(2) + Math.exp(3);
    close(arr(logits.grad!), [Math.exp(1) / z, Math.exp(2) / z - 1, Math.exp(3) / z]);
  });

  test('backward without grad is a TorchError; retainGraph allows a second pass', () => {
    const e = thrown(() => tensor([1]).sum().backward(), TorchError);
    expect(e.message).toMatch(/backward/);
    const x = tensor([2]);
    x.requiresGrad = true;
    const y = x.mul(x).sum();
    y.backward(undefined, { retainGraph: true });
    y.backward();
    expect(arr(x.grad!)).toEqual([8]);
    const e2 = thrown(() => (x.requiresGrad = 1 as never), TypeError);
    expect(e2.message).toMatch(/value/);
  });
});

// ---------------------------------------------------------------------------------
describe('Generator', () => {
  test('same seed gives the same numbers; different seeds differ', () => {
    const g1 = new Generator(123);
    const g2 = new Generator(123);
    const g3 = new Generator(124);
    const r1 = arr(rand([16], { generator: g1 }));
    const r2 = arr(rand([16], { generator: g2 }));
    const r3 = arr(rand([16], { generator: g3 }));
    expect(r1).toEqual(r2);
    expect(r1).not.toEqual(r3);
    expect(r1.every((v) => v >= 0 && v < 1)).toBe(true);
    expect(arr(randn([16], { generator: g1 }))).toEqual(arr(randn([16], { generator: g2 })));
    expect(arr(randn([16], { generator: g1 }))).not.toEqual(arr(randn([16], { generator: g3 })));
    const h1 = new Generator(5);
    const h2 = new Generator(5);
    const i1 = Array.from(i64(randint(-5, 5, [32], { generator: h1 })));
    const i2 = Array.from(i64(randint(-5, 5, [32], { generator: h2 })));
    expect(Array.from(i64(randint(-5, 5, [32], { generator: new Generator(6) })))).not.toEqual(i1);
    expect(i1).toEqual(i2);
    expect(i1.every((v) => v >= -5n && v < 5n)).toBe(true);
    // the stream advances
    expect(arr(rand([16], { generator: g1 }))).not.toEqual(r1);
  });

  test('dtypes of random tensors', () => {
    const g = new Generator(1);
    expect(rand([2], { generator: g, dtype: 'float64' }).dtype).toBe('float64');
    expect(randn([2], { generator: g, dtype: 'float16' }).dtype).toBe('float16');
    expect(randint(0, 3, [2], { generator: g, dtype: 'int32' }).dtype).toBe('int32');
    expect(randint(0, 3, [2]).dtype).toBe('int64');
    const e = thrown(() => rand([2], { dtype: 'int64' }), TypeError);
    expect(e.message).toMatch(/dtype/);
  });

  test('getState/setState replays the stream', () => {
    const g = new Generator(7);
    rand([3], { generator: g });
    const state = g.getState();
    expect(state.dtype).toBe('uint8');
    const a = arr(randn([10], { generator: g }));
    const b = Array.from(i64(randint(0, 1000, [10], { generator: g })));
    g.setState(state);
    expect(arr(randn([10], { generator: g }))).toEqual(a);
    expect(Array.from(i64(randint(0, 1000, [10], { generator: g })))).toEqual(b);
    // a state can be moved to another generator
    const other = new Generator(99);
    other.setState(state);
    expect(arr(randn([10], { generator: other }))).toEqual(a);
  });

  test('seed is a bigint', () => {
    expect(new Generator(42).seed).toBe(42n);
    expect(new Generator(2n ** 64n - 1n).seed).toBe(2n ** 64n - 1n);
    expect(typeof new Generator(0).seed).toBe('bigint');
  });

  test('bad seeds', () => {
    expect(thrown(() => new Generator(-1), RangeError).message).toMatch(/seed/);
    expect(thrown(() => new Generator(2n ** 64n), RangeError).message).toMatch(/seed/);
    expect(thrown(() => new Generator(1.5), RangeError).message).toMatch(/seed/);
    expect(thrown(() => new Generator('1' as never), TypeError).message).toMatch(/seed/);
    const e = thrown(() => new Generator(0).setState(tensor([1, 2, 3])), TorchError);
    expect(e.message).toMatch(/state/);
  });
});

// ---------------------------------------------------------------------------------
describe('dispose', () => {
  test('isDisposed, use after dispose, double dispose', () => {
    const t = tensor([1, 2, 3]);
    expect(t.isDisposed).toBe(false);
    t.dispose();
    expect(t.isDisposed).toBe(true);
    expect(() => t.dispose()).not.toThrow();
    expect(t.isDisposed).toBe(true);
    expect(t.toString()).toBe('Tensor(disposed)');
    const uses: Array<[() => unknown, RegExp]> = [
      [() => t.shape, /tensor/],
      [() => t.dtype, /tensor/],
      [() => t.toTypedArray(), /tensor/],
      [() => t.add(1), /self/],
      [() => t.sum(), /tensor/],
      [() => t.add_(1), /tensor/],
      [() => t.matmul(tensor([1, 2, 3])), /self/],
    ];
    for (const [fn, name] of uses) {
      const e = thrown(fn, TorchError);
      expect(e.message).toMatch(/disposed/);
      expect(e.message).toMatch(name);
    }
    const live = tensor([1, 2, 3]);
    const e = thrown(() => live.add(t), TorchError);
    expect(e.message).toMatch(/disposed/);
    expect(e.message).toMatch(/other/);
    const e2 = thrown(() => cat([live, t]), TorchError);
    expect(e2.message).toMatch(/tensors\[1\]/);
    expect(e2.message).toMatch(/disposed/);
    const e3 = thrown(() => crossEntropy(tensor([[1, 2]]), t), TorchError);
    expect(e3.message).toMatch(/target/);
  });

  test('disposing a shared tensor leaves the array usable', () => {
    const a = new Float32Array([1, 2]);
    const t = tensor(a);
    t.dispose();
    a[0] = 5;
    expect(Array.from(a)).toEqual([5, 2]);
  });

  test('a view survives disposal of its base', () => {
    const base = tensor([1, 2, 3, 4]);
    const v = base.reshape([2, 2]);
    base.dispose();
    expect(v.toArray()).toEqual([[1, 2], [3, 4]]);
  });
});

// ---------------------------------------------------------------------------------
describe('errors name the argument', () => {
  test('tensor()', () => {
    const e1 = thrown(() => tensor([1, 2], { dtype: 'float8' as never }), TypeError);
    expect(e1.message).toMatch(/dtype/);
    expect(e1.message).toMatch(/float8/);
    const e2 = thrown(() => tensor(new Float32Array(6), { shape: [4, 2] }), RangeError);
    expect(e2.message).toMatch(/shape/);
    const e3 = thrown(() => tensor([1], { sahpe: [1] } as never), TypeError);
    expect(e3.message).toMatch(/sahpe/);
    const e4 = thrown(() => tensor('abc' as never), TypeError);
    expect(e4.message).toMatch(/data/);
    const e5 = thrown(() => tensor(new Float32Array(2), { device: 'tpu' as never }), TypeError);
    expect(e5.message).toMatch(/device/);
    const e6 = thrown(() => tensor(new Float32Array(2), { shape: [2.5] }), TypeError);
    expect(e6.message).toMatch(/shape\[0\]/);
    const e7 = thrown(() => tensor(new Uint16Array(2)), TypeError);
    expect(e7.message).toMatch(/data/);
    const e8 = thrown(() => tensor([1.5], { dtype: 'int64' }), TypeError);
    expect(e8.message).toMatch(/data/);
    const e9 = thrown(() => tensorOf([1], null as never), TypeError);
    expect(e9.message).toMatch(/options/);
    const e10 = thrown(() => tensor([1], { shape: [1] }), TypeError);
    expect(e10.message).toMatch(/shape/);
  });

  test('creation functions', () => {
    const e1 = thrown(() => zeros([-1]), RangeError);
    expect(e1.message).toMatch(/shape\[0\]/);
    expect(thrown(() => zeros('3' as never), TypeError).message).toMatch(/shape/);
    expect(thrown(() => ones([2], { dtype: 'float' as never }), TypeError).message).toMatch(/dtype/);
    expect(thrown(() => full([2], 'x' as never), TypeError).message).toMatch(/value/);
    expect(thrown(() => full([2], 1, { colour: 1 } as never), TypeError).message).toMatch(/colour/);
    expect(thrown(() => arange(0, 1, 0), RangeError).message).toMatch(/step/);
    expect(thrown(() => arange(0, Infinity), RangeError).message).toMatch(/end/);
    expect(thrown(() => randint(5, 5, [2]), RangeError).message).toMatch(/high/);
    expect(thrown(() => randint(0.5, 5, [2]), RangeError).message).toMatch(/low/);
    expect(thrown(() => rand([2], { generator: {} as never }), TypeError).message).toMatch(/generator/);
    // absurd sizes are refused, not attempted
    const huge = thrown(() => zeros([1e12, 1e12]), RangeError);
    expect(huge.message).toMatch(/shape/);
    const e = thrown(() => zeros([1e12]), TorchError);
    expect(e.message).toMatch(/allocate/);
  });

  test('op arguments', () => {
    const x = tensor([[1, 2, 3], [4, 5, 6]]);
    const e1 = thrown(() => x.matmul(tensor([[1, 2, 3]])), TorchError);
    expect(e1.message).toMatch(/shapes cannot be multiplied/);
    expect(e1.message).not.toMatch(/Exception raised from/);
    expect(e1.message).not.toMatch(/frame #/);
    expect(thrown(() => x.add('1' as never), TypeError).message).toMatch(/other/);
    expect(thrown(() => x.matmul([1] as never), TypeError).message).toMatch(/other/);
    expect(thrown(() => x.sum({ dim: 0.5 }), RangeError).message).toMatch(/dim/);
    expect(thrown(() => x.sum({ dims: 0 } as never), TypeError).message).toMatch(/dims/);
    const e2 = thrown(() => x.sum({ dim: 5 }), TorchError);
    expect(e2.message).toMatch(/[Dd]imension out of range/);
    expect(thrown(() => x.reshape([4, -1]), TorchError).message).toMatch(/invalid/);
    expect(thrown(() => x.reshape([-1, -1]), RangeError).message).toMatch(/-1/);
    expect(thrown(() => x.narrow(0, 0, -1), RangeError).message).toMatch(/length/);
    expect(thrown(() => x.transpose(0, 'a' as never), TypeError).message).toMatch(/dim1/);
    expect(thrown(() => x.indexSelect(0, [0] as never), TypeError).message).toMatch(/index/);
    expect(thrown(() => x.indexSelect(0, tensor([0.5])), TorchError).message).toMatch(/[Ii]ndex/);
    expect(thrown(() => cat([]), TypeError).message).toMatch(/tensors/);
    expect(thrown(() => cat([x, 1 as never]), TypeError).message).toMatch(/tensors\[1\]/);
    expect(thrown(() => stack([x, tensor([1])]), TorchError).message).toMatch(/stack/);
    expect(thrown(() => where(x as never, x, 1 as never), TypeError).message).toMatch(/\bb\b/);
    expect(thrown(() => x.fill_('a' as never), TypeError).message).toMatch(/value/);
    expect(thrown(() => x.add_(1, NaN), TypeError).message).toMatch(/alpha/);
    expect(thrown(() => x.add_(1, Infinity), RangeError).message).toMatch(/alpha/);
    expect(thrown(() => x.to('float8' as never), TypeError).message).toMatch(/device/);
    expect(thrown(() => x.to({ dtype: 'float8' } as never), TypeError).message).toMatch(/dtype/);
    expect(thrown(() => crossEntropy(x, tensor([0, 1], { dtype: 'int64' }), { labelSmoothing: 2 }), RangeError).message).toMatch(
      /labelSmoothing/,
    );
    expect(thrown(() => crossEntropy(x, tensor([0, 7], { dtype: 'int64' })), TorchError).message).toMatch(/out of bounds|Target/);
    expect(thrown(() => mseLoss(x, 3 as never), TypeError).message).toMatch(/target/);
    expect(thrown(() => tensor([1, 2]).item(), TorchError).message).toMatch(/item/);
    expect(thrown(() => x.backward(undefined, { retain: true } as never), TypeError).message).toMatch(/retain/);
  });

  test('TorchError is an Error with the name TorchError', () => {
    const e = thrown(() => tensor([1, 2]).matmul(tensor([1, 2, 3])), TorchError);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('TorchError');
    expect(e.message).not.toMatch(/Exception raised from/);
  });
});

// ---------------------------------------------------------------------------------
describe('backends', () => {
  test('reports the build', () => {
    const b = backends();
    expect(b.cpu).toBe(true);
    expect(typeof b.cuda).toBe('boolean');
    expect(b.libtorch).toMatch(/^\d+\.\d+/);
    expect(b.threads).toBeGreaterThanOrEqual(1);
    expect(b.interopThreads).toBeGreaterThanOrEqual(1);
    expect(typeof b.parallel).toBe('string');
  });

  test('setNumThreads/getNumThreads', () => {
    const old = getNumThreads();
    expect(old).toBeGreaterThanOrEqual(1);
    try {
      setNumThreads(2);
      expect(getNumThreads()).toBe(2);
      expect(backends().threads).toBe(2);
      // results do not depend on the thread count
      const x = arange(0, 1000).reshape([10, 100]);
      const s2 = arr(x.sum({ dim: 1 }));
      setNumThreads(1);
      expect(getNumThreads()).toBe(1);
      expect(arr(x.sum({ dim: 1 }))).toEqual(s2);
      expect(thrown(() => setNumThreads(0), RangeError).message).toMatch(/threads/);
      expect(thrown(() => setNumThreads(1.5), RangeError).message).toMatch(/threads/);
      expect(thrown(() => setNumThreads('2' as never), TypeError).message).toMatch(/threads/);
    } finally {
      setNumThreads(old);
    }
    expect(getNumThreads()).toBe(old);
  });
});

// ---------------------------------------------------------------------------------
describe('a small end-to-end fit', () => {
  test('gradient descent on least squares converges', () => {
    const next = lcg(3);
    const X = tensor(Array.from({ length: 32 }, () => [next(), next()]));
    const wTrue = tensor([[2], [-3]]);
    const y = X.matmul(wTrue);
    const w = zeros([2, 1]);
    w.requiresGrad = true;
    for (let step = 0; step < 300; step++) {
      w.zeroGrad();
      mseLoss(X.matmul(w), y).backward();
      w.sub_(w.grad!, 0.5);
    }
    close(arr(w), [2, -3], 2);
    expect(f64(w.to('float64')).length).toBe(2);
  });
});
