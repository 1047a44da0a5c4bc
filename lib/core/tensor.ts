import * as is from './is';
import { native, NativeGenerator, NativeTensor, NativeTypedArray } from './native';

/** Element types a tensor can hold. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8' | 'bool';
/** Where a tensor lives: `'cpu'`, `'cuda'` (device 0) or `'cuda:N'`. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'uint8', 'bool'];
const FLOAT_DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16'];

/** Nested arrays of numbers or booleans, as accepted by {@link tensor}. */
export type NestedArray = number | boolean | NestedArray[];

/** What {@link Tensor.toTypedArray} returns for each dtype. */
export type TensorData = Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array;

function dtypeArg(where: string, value: unknown): DType {
  return is.oneOf(where, 'dtype', value, DTYPES);
}

/** Device names: `'cpu'`, `'cuda'` or `'cuda:N'`. */
export const DEVICE_PATTERN = /^(cpu|cuda(:\d{1,3})?)$/;

/** Checks a device name (`'cpu'`, `'cuda'`, `'cuda:N'`); the native side checks that it exists. */
export function deviceArg(where: string, value: unknown): Device {
  if (typeof value !== 'string' || !DEVICE_PATTERN.test(value)) {
    throw is.invalidType(where, 'device', "'cpu', 'cuda' or 'cuda:N'", value);
  }
  return value as Device;
}

/** A tensor or a plain number where an operation accepts either. */
export type TensorLike = Tensor | number;

function handleOf(where: string, name: string, value: unknown): NativeTensor {
  if (!(value instanceof Tensor)) throw is.invalidType(where, name, 'a Tensor', value);
  return value.handle;
}

function operand(where: string, value: unknown): NativeTensor | number {
  if (typeof value === 'number') return value;
  return handleOf(where, 'other', value);
}

function optionalDim(where: string, value: unknown): number | null {
  return value === undefined || value === null ? null : is.integer(where, 'dim', value);
}

function dimsArg(where: string, value: unknown): number[] | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'number') return [is.integer(where, 'dim', value)];
  if (!Array.isArray(value)) throw is.invalidType(where, 'dim', 'an integer or an array of integers', value);
  return value.map((d, k) => is.integer(where, `dim[${k}]`, d));
}

/** Options of reductions. */
export interface ReduceOptions {
  /** Dimension(s) to reduce; all when omitted. */
  dim?: number | number[];
  /** Keep reduced dimensions with size 1. */
  keepdim?: boolean;
}

/**
 * An n-dimensional array on a device, backed by a LibTorch tensor.
 *
 * Native memory is reported to V8 and freed when the tensor is garbage collected, or
 * at once by {@link Tensor.dispose}. Using a disposed tensor throws a `TorchError`.
 */
export class Tensor {
  /** @internal */
  readonly handle: NativeTensor;

  /** Wraps a native handle; not for direct use: create tensors with {@link tensor}, {@link zeros} and friends. */
  constructor(handle: NativeTensor) {
    this.handle = handle;
  }

  /** Size of each dimension. */
  get shape(): number[] {
    return native.shape(this.handle);
  }
  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }
  /** Number of elements. */
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  /** Element type. */
  get dtype(): DType {
    return native.dtype(this.handle) as DType;
  }
  /** Device the data lives on. */
  get device(): Device {
    return native.device(this.handle) as Device;
  }
  /** True after {@link dispose}. */
  get isDisposed(): boolean {
    return native.isDisposed(this.handle);
  }

  /** Releases the native memory now. Further use throws a `TorchError`. */
  dispose(): void {
    native.dispose(this.handle);
  }

  /**
   * Converts to another dtype and/or device. Returns this tensor's data unchanged when
   * nothing changes.
   */
  to(target: DType | Device | { dtype?: DType; device?: Device }): Tensor {
    const where = 'Tensor.to';
    let dtype: DType | null = null;
    let device: Device | null = null;
    if (typeof target === 'string') {
      if ((DTYPES as readonly string[]).includes(target)) dtype = target as DType;
      else device = deviceArg(where, target);
    } else {
      const o = is.options<{ dtype: DType; device: Device }>(where, target, ['dtype', 'device']);
      if (o.dtype !== undefined) dtype = dtypeArg(where, o.dtype);
      if (o.device !== undefined) device = deviceArg(where, o.device);
    }
    return new Tensor(native.to(this.handle, dtype, device));
  }

  /** A copy with its own memory. */
  clone(): Tensor {
    return new Tensor(native.clone(this.handle));
  }
  /** The same data, cut from the autograd graph. */
  detach(): Tensor {
    return new Tensor(native.detach(this.handle));
  }
  /** The same values in contiguous memory (this tensor's data if already contiguous). */
  contiguous(): Tensor {
    return new Tensor(native.contiguous(this.handle));
  }

  /**
   * A copy of the data as a TypedArray: Float32Array (float32, float16, bfloat16),
   * Float64Array, Int32Array, BigInt64Array (int64) or Uint8Array (uint8, bool).
   */
  toTypedArray(): TensorData {
    return native.toTypedArray(this.handle);
  }

  /** The data as nested arrays of numbers (booleans for bool tensors). */
  toArray(): NestedArray {
    const shape = this.shape;
    const dtype = this.dtype;
    const flat = this.toTypedArray();
    const at = (k: number): number | boolean => {
      const v = flat[k];
      if (typeof v === 'bigint') {
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
          throw new RangeError(`Tensor.toArray: int64 value ${v} is not a safe integer; use toTypedArray()`);
        }
        return Number(v);
      }
      return dtype === 'bool' ? v !== 0 : v;
    };
    if (shape.length === 0) return at(0);
    let offset = 0;
    const build = (d: number): NestedArray[] => {
      const out: NestedArray[] = new Array(shape[d]);
      for (let k = 0; k < shape[d]; k++) out[k] = d === shape.length - 1 ? at(offset++) : build(d + 1);
      return out;
    };
    return build(0);
  }

  /** The value of a one-element tensor. */
  item(): number {
    return native.item(this.handle);
  }

  // ---- elementwise ----
  /** this + other */
  add(other: TensorLike): Tensor {
    return new Tensor(native.binary('add', this.handle, operand('add', other)));
  }
  /** this - other */
  sub(other: TensorLike): Tensor {
    return new Tensor(native.binary('sub', this.handle, operand('sub', other)));
  }
  /** this * other */
  mul(other: TensorLike): Tensor {
    return new Tensor(native.binary('mul', this.handle, operand('mul', other)));
  }
  /** this / other (true division) */
  div(other: TensorLike): Tensor {
    return new Tensor(native.binary('div', this.handle, operand('div', other)));
  }
  /** this ** other */
  pow(other: TensorLike): Tensor {
    return new Tensor(native.binary('pow', this.handle, operand('pow', other)));
  }
  /** Python-style remainder. */
  remainder(other: TensorLike): Tensor {
    return new Tensor(native.binary('remainder', this.handle, operand('remainder', other)));
  }
  /** Elementwise maximum. */
  maximum(other: TensorLike): Tensor {
    return new Tensor(native.binary('maximum', this.handle, operand('maximum', other)));
  }
  /** Elementwise minimum. */
  minimum(other: TensorLike): Tensor {
    return new Tensor(native.binary('minimum', this.handle, operand('minimum', other)));
  }
  /** this == other, as a bool tensor. */
  eq(other: TensorLike): Tensor {
    return new Tensor(native.binary('eq', this.handle, operand('eq', other)));
  }
  /** this != other */
  ne(other: TensorLike): Tensor {
    return new Tensor(native.binary('ne', this.handle, operand('ne', other)));
  }
  /** this < other */
  lt(other: TensorLike): Tensor {
    return new Tensor(native.binary('lt', this.handle, operand('lt', other)));
  }
  /** this <= other */
  le(other: TensorLike): Tensor {
    return new Tensor(native.binary('le', this.handle, operand('le', other)));
  }
  /** this > other */
  gt(other: TensorLike): Tensor {
    return new Tensor(native.binary('gt', this.handle, operand('gt', other)));
  }
  /** this >= other */
  ge(other: TensorLike): Tensor {
    return new Tensor(native.binary('ge', this.handle, operand('ge', other)));
  }
  neg(): Tensor {
    return new Tensor(native.unary('neg', this.handle));
  }
  abs(): Tensor {
    return new Tensor(native.unary('abs', this.handle));
  }
  exp(): Tensor {
    return new Tensor(native.unary('exp', this.handle));
  }
  log(): Tensor {
    return new Tensor(native.unary('log', this.handle));
  }
  sqrt(): Tensor {
    return new Tensor(native.unary('sqrt', this.handle));
  }
  square(): Tensor {
    return new Tensor(native.unary('square', this.handle));
  }
  reciprocal(): Tensor {
    return new Tensor(native.unary('reciprocal', this.handle));
  }
  sigmoid(): Tensor {
    return new Tensor(native.unary('sigmoid', this.handle));
  }
  tanh(): Tensor {
    return new Tensor(native.unary('tanh', this.handle));
  }
  relu(): Tensor {
    return new Tensor(native.unary('relu', this.handle));
  }
  sin(): Tensor {
    return new Tensor(native.unary('sin', this.handle));
  }
  cos(): Tensor {
    return new Tensor(native.unary('cos', this.handle));
  }
  floor(): Tensor {
    return new Tensor(native.unary('floor', this.handle));
  }
  ceil(): Tensor {
    return new Tensor(native.unary('ceil', this.handle));
  }
  round(): Tensor {
    return new Tensor(native.unary('round', this.handle));
  }
  sign(): Tensor {
    return new Tensor(native.unary('sign', this.handle));
  }
  isfinite(): Tensor {
    return new Tensor(native.unary('isfinite', this.handle));
  }
  isnan(): Tensor {
    return new Tensor(native.unary('isnan', this.handle));
  }
  logicalNot(): Tensor {
    return new Tensor(native.unary('logicalNot', this.handle));
  }
  /** Clamps into [min, max]; either bound may be omitted. */
  clamp(min?: number | null, max?: number | null): Tensor {
    const lo = min === undefined || min === null ? null : is.number('clamp', 'min', min);
    const hi = max === undefined || max === null ? null : is.number('clamp', 'max', max);
    if (lo === null && hi === null) throw new TypeError('clamp: give min, max or both');
    return new Tensor(native.clamp(this.handle, lo, hi));
  }

  // ---- linear algebra and reductions ----
  /** Matrix product with broadcasting (like `torch.matmul`). */
  matmul(other: Tensor): Tensor {
    return new Tensor(native.matmul(this.handle, handleOf('matmul', 'other', other)));
  }
  /** Sum over all elements or over `dim`. */
  sum(options?: ReduceOptions): Tensor {
    const o = is.options<ReduceOptions>('sum', options, ['dim', 'keepdim']);
    return new Tensor(native.reduce('sum', this.handle, dimsArg('sum', o.dim), o.keepdim === true));
  }
  /** Mean over all elements or over `dim`. */
  mean(options?: ReduceOptions): Tensor {
    const o = is.options<ReduceOptions>('mean', options, ['dim', 'keepdim']);
    return new Tensor(native.reduce('mean', this.handle, dimsArg('mean', o.dim), o.keepdim === true));
  }
  /** Largest element (a 0-d tensor). */
  max(): Tensor;
  /** Largest elements along `dim`, with their indices. */
  max(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  max(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    return this.extreme('max', dim, keepdim);
  }
  /** Smallest element (a 0-d tensor). */
  min(): Tensor;
  /** Smallest elements along `dim`, with their indices. */
  min(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  min(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    return this.extreme('min', dim, keepdim);
  }
  private extreme(op: 'max' | 'min', dim: unknown, keepdim: unknown): Tensor | { values: Tensor; indices: Tensor } {
    const d = optionalDim(op, dim);
    const r = native.extreme(op, this.handle, d, is.boolean(op, 'keepdim', keepdim));
    if (Array.isArray(r)) return { values: new Tensor(r[0]), indices: new Tensor(r[1]) };
    return new Tensor(r);
  }
  /** Index of the largest element (flattened), or along `dim`. */
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argExtreme('argmax', this.handle, optionalDim('argmax', dim), is.boolean('argmax', 'keepdim', keepdim)));
  }
  /** Index of the smallest element (flattened), or along `dim`. */
  argmin(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argExtreme('argmin', this.handle, optionalDim('argmin', dim), is.boolean('argmin', 'keepdim', keepdim)));
  }
  /** The p-norm (default 2) over all elements or over `dim`. */
  norm(p = 2, options?: ReduceOptions): Tensor {
    is.number('norm', 'p', p);
    const o = is.options<ReduceOptions>('norm', options, ['dim', 'keepdim']);
    return new Tensor(native.norm(this.handle, p, dimsArg('norm', o.dim), o.keepdim === true));
  }

  // ---- shape ----
  /** Same data with a new shape (copies only when the layout requires). One -1 is inferred. */
  reshape(shape: number[]): Tensor {
    return new Tensor(native.reshape(this.handle, is.shape('reshape', 'shape', shape, true)));
  }
  /** A view with a new shape; fails when the layout does not allow a view. */
  view(shape: number[]): Tensor {
    return new Tensor(native.view(this.handle, is.shape('view', 'shape', shape, true)));
  }
  /** Reorders dimensions. */
  permute(dims: number[]): Tensor {
    return new Tensor(native.permute(this.handle, dimsArg('permute', dims) ?? []));
  }
  /** Swaps two dimensions. */
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(native.transpose(this.handle, is.integer('transpose', 'dim0', dim0), is.integer('transpose', 'dim1', dim1)));
  }
  /** Removes size-1 dimensions (all, or `dim`). */
  squeeze(dim?: number): Tensor {
    return new Tensor(native.squeeze(this.handle, optionalDim('squeeze', dim)));
  }
  /** Inserts a size-1 dimension at `dim`. */
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.unsqueeze(this.handle, is.integer('unsqueeze', 'dim', dim)));
  }
  /** Flattens dimensions startDim..endDim into one. */
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(native.flatten(this.handle, is.integer('flatten', 'startDim', startDim), is.integer('flatten', 'endDim', endDim)));
  }
  /** A view of `length` entries of `dim` from `start`. */
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(
      native.narrow(this.handle, is.integer('narrow', 'dim', dim), is.integer('narrow', 'start', start), is.integer('narrow', 'length', length, 0)),
    );
  }
  /** Entries of `dim` at the positions in `index` (an int64 or int32 tensor). */
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(native.indexSelect(this.handle, is.integer('indexSelect', 'dim', dim), handleOf('indexSelect', 'index', index)));
  }

  // ---- neural-network helpers ----
  softmax(dim: number): Tensor {
    return new Tensor(native.softmax(this.handle, is.integer('softmax', 'dim', dim)));
  }
  logSoftmax(dim: number): Tensor {
    return new Tensor(native.logSoftmax(this.handle, is.integer('logSoftmax', 'dim', dim)));
  }

  // ---- in place (not recorded by autograd) ----
  /** this += alpha * other, in place. Returns this. */
  add_(other: TensorLike, alpha = 1): this {
    native.inplace('add', this.handle, operand('add_', other), is.finite('add_', 'alpha', alpha));
    return this;
  }
  /** this -= alpha * other, in place. Returns this. */
  sub_(other: TensorLike, alpha = 1): this {
    native.inplace('sub', this.handle, operand('sub_', other), is.finite('sub_', 'alpha', alpha));
    return this;
  }
  /** this *= other, in place. */
  mul_(other: TensorLike): this {
    native.inplace('mul', this.handle, operand('mul_', other));
    return this;
  }
  /** this /= other, in place. */
  div_(other: TensorLike): this {
    native.inplace('div', this.handle, operand('div_', other));
    return this;
  }
  /** Copies `src` (broadcast, converted) into this tensor. */
  copy_(src: Tensor): this {
    native.inplace('copy', this.handle, handleOf('copy_', 'src', src));
    return this;
  }
  /** Sets every element to `value`. */
  fill_(value: number): this {
    if (typeof value !== 'number') throw is.invalidType('fill_', 'value', 'a number', value);
    native.inplace('fill', this.handle, value);
    return this;
  }
  /** Sets every element to 0. */
  zero_(): this {
    native.inplace('zero', this.handle);
    return this;
  }

  // ---- autograd ----
  /** Whether autograd records operations on this tensor. */
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  set requiresGrad(value: boolean) {
    native.setRequiresGrad(this.handle, is.boolean('requiresGrad', 'value', value));
  }
  /** The accumulated gradient, or null. */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g === null ? null : new Tensor(g);
  }
  /** Drops the accumulated gradient. */
  zeroGrad(): void {
    native.zeroGrad(this.handle);
  }
  /** Back-propagates from this (scalar) tensor, or with the given output gradient. */
  backward(gradient?: Tensor, options?: { retainGraph?: boolean }): void {
    const o = is.options<{ retainGraph: boolean }>('backward', options, ['retainGraph']);
    const g = gradient === undefined ? null : handleOf('backward', 'gradient', gradient);
    native.backward(this.handle, g, o.retainGraph === true);
  }

  toString(): string {
    if (this.isDisposed) return 'Tensor(disposed)';
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }
}

/** Options for creating a tensor. */
export interface CreateOptions {
  dtype?: DType;
  device?: Device;
}

/** Options for {@link tensor}. */
export interface TensorOptions extends CreateOptions {
  /** Shape of the data; required for a flat TypedArray holding more than one dimension. */
  shape?: number[];
}

/** Options for random tensors. */
export interface RandomOptions extends CreateOptions {
  /** A seeded generator; LibTorch's global generator when omitted. */
  generator?: Generator;
}

// By tag, not instanceof: typed arrays from another realm (a vm context, a worker's
// transferred data, jest's sandbox) are still typed arrays.
const TYPED_ARRAY_DTYPES: Record<string, DType> = {
  Float32Array: 'float32',
  Float64Array: 'float64',
  Int32Array: 'int32',
  BigInt64Array: 'int64',
  Uint8Array: 'uint8',
  Uint8ClampedArray: 'uint8',
  Int8Array: 'int32',
  Int16Array: 'int32',
};

function typedArrayDtype(data: ArrayBufferView): DType | null {
  const tag = Object.prototype.toString.call(data).slice(8, -1);
  return TYPED_ARRAY_DTYPES[tag] ?? null;
}

function flatten(where: string, data: NestedArray): { values: (number | boolean)[]; shape: number[]; bool: boolean } {
  const shape: number[] = [];
  let probe: NestedArray = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe.length > 0 ? probe[0] : 0;
  }
  const values: (number | boolean)[] = [];
  let bool = typeof probe === 'boolean';
  const walk = (v: NestedArray, d: number, pathName: string): void => {
    if (d === shape.length) {
      if (typeof v === 'number') bool = false;
      else if (typeof v !== 'boolean') throw is.invalidType(where, pathName, 'a number or boolean', v);
      values.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[d]) {
      throw new TypeError(`${where}: data is ragged at ${pathName} (expected an array of length ${shape[d]}, got ${is.describe(v)})`);
    }
    v.forEach((e, k) => walk(e, d + 1, `${pathName}[${k}]`));
  };
  walk(data, 0, 'data');
  return { values, shape, bool };
}

/**
 * Creates a tensor from a TypedArray, nested arrays or a number.
 *
 * A TypedArray whose element type matches `dtype` (Float32Array for float32,
 * Float64Array, Int32Array, BigInt64Array for int64, Uint8Array for uint8) is shared,
 * not copied, as `torch.from_numpy` does: writes through either side are seen by the
 * other, and the tensor keeps the array alive. Other combinations are converted with
 * exactly one copy. Do not transfer (postMessage) a shared buffer while the tensor lives.
 */
export function tensor(data: ArrayBufferView | NestedArray, options?: TensorOptions): Tensor {
  const where = 'tensor';
  const o = is.options<TensorOptions>(where, options, ['dtype', 'device', 'shape']);
  const device = o.device === undefined ? 'cpu' : deviceArg(where, o.device);
  let result: Tensor;
  if (ArrayBuffer.isView(data)) {
    const src = typedArrayDtype(data);
    if (src === null) {
      throw is.invalidType(where, 'data', 'a Float32Array, Float64Array, Int32Array, Int16Array, Int8Array, Uint8Array or BigInt64Array', data);
    }
    const ta = data as NativeTypedArray;
    const dtype = o.dtype === undefined ? src : dtypeArg(where, o.dtype);
    const shape = o.shape === undefined ? [ta.length] : is.shape(where, 'shape', o.shape);
    const count = shape.reduce((a, b) => a * b, 1);
    if (count !== ta.length) {
      throw new RangeError(`${where}: shape [${shape.join(', ')}] holds ${count} elements but data has ${ta.length}`);
    }
    const buffer = ta.buffer as ArrayBufferLike & { resizable?: boolean };
    const shareable = Object.prototype.toString.call(buffer) === '[object ArrayBuffer]' && buffer.resizable !== true;
    result = new Tensor(native.fromBuffer(ta, shape, dtype, shareable));
  } else if (typeof data === 'number' || typeof data === 'boolean' || Array.isArray(data)) {
    const flat = flatten(where, data);
    if (o.shape !== undefined) throw new TypeError(`${where}: shape is taken from nested arrays; omit the shape option`);
    const dtype = o.dtype === undefined ? (flat.bool ? 'bool' : 'float32') : dtypeArg(where, o.dtype);
    const numbers = flat.values.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));
    let ta: NativeTypedArray;
    if (dtype === 'float64') ta = Float64Array.from(numbers);
    else if (dtype === 'int64') {
      ta = BigInt64Array.from(numbers, (v, k) => {
        if (!Number.isSafeInteger(v)) throw is.invalidType(where, `data (element ${k})`, 'an integer for an int64 tensor', v);
        return BigInt(v);
      });
    } else if (dtype === 'int32') ta = Int32Array.from(numbers);
    else if (dtype === 'uint8' || dtype === 'bool') ta = Uint8Array.from(numbers);
    else ta = Float32Array.from(numbers);
    result = new Tensor(native.fromBuffer(ta, flat.shape, dtype, true));
  } else {
    throw is.invalidType(where, 'data', 'a TypedArray, a number or nested arrays', data);
  }
  return device === 'cpu' ? result : result.to(device);
}

function createArgs(where: string, shape: unknown, options: unknown, extra: string[] = []) {
  const o = is.options<RandomOptions>(where, options, ['dtype', 'device', ...extra]);
  return {
    shape: is.shape(where, 'shape', shape),
    dtype: o.dtype === undefined ? 'float32' : dtypeArg(where, o.dtype),
    device: o.device === undefined ? 'cpu' : deviceArg(where, o.device),
    generator: o.generator === undefined ? null : generatorHandle(where, o.generator),
  };
}

/** A tensor filled with `value`. */
export function full(shape: number[], value: number, options?: CreateOptions): Tensor {
  const a = createArgs('full', shape, options);
  return new Tensor(native.full(a.shape, is.number('full', 'value', value), a.dtype, a.device));
}
/** A tensor of zeros (float32 by default). */
export function zeros(shape: number[], options?: CreateOptions): Tensor {
  const a = createArgs('zeros', shape, options);
  return new Tensor(native.full(a.shape, 0, a.dtype, a.device));
}
/** A tensor of ones (float32 by default). */
export function ones(shape: number[], options?: CreateOptions): Tensor {
  const a = createArgs('ones', shape, options);
  return new Tensor(native.full(a.shape, 1, a.dtype, a.device));
}
/** Uniform samples in [0, 1). Drawn on the CPU, so a seeded generator gives the same numbers on any device. */
export function rand(shape: number[], options?: RandomOptions): Tensor {
  const a = createArgs('rand', shape, options, ['generator']);
  if (!FLOAT_DTYPES.includes(a.dtype)) throw is.invalidType('rand', 'dtype', 'a float dtype', a.dtype);
  return new Tensor(native.rand(a.shape, a.dtype, a.device, a.generator));
}
/** Standard normal samples. Drawn on the CPU, so a seeded generator gives the same numbers on any device. */
export function randn(shape: number[], options?: RandomOptions): Tensor {
  const a = createArgs('randn', shape, options, ['generator']);
  if (!FLOAT_DTYPES.includes(a.dtype)) throw is.invalidType('randn', 'dtype', 'a float dtype', a.dtype);
  return new Tensor(native.randn(a.shape, a.dtype, a.device, a.generator));
}
/** Uniform integers in [low, high) (int64 by default). */
export function randint(low: number, high: number, shape: number[], options?: RandomOptions): Tensor {
  const o = is.options<RandomOptions>('randint', options, ['dtype', 'device', 'generator']);
  const a = createArgs('randint', shape, { ...o, dtype: o.dtype ?? 'int64' }, ['generator']);
  const lo = is.integer('randint', 'low', low);
  const hi = is.integer('randint', 'high', high);
  if (hi <= lo) throw is.invalidRange('randint', 'high', `greater than low (${lo})`, high);
  return new Tensor(native.randint(lo, hi, a.shape, a.dtype, a.device, a.generator));
}
/** Values start, start + step, ... below end (float32 by default). */
export function arange(start: number, end: number, step = 1, options?: CreateOptions): Tensor {
  const a = createArgs('arange', [], options);
  const s = is.finite('arange', 'step', step);
  if (s === 0) throw is.invalidRange('arange', 'step', 'non-zero', step);
  return new Tensor(native.arange(is.finite('arange', 'start', start), is.finite('arange', 'end', end), s, a.dtype, a.device));
}

function tensorList(where: string, tensors: unknown): NativeTensor[] {
  if (!Array.isArray(tensors) || tensors.length === 0) throw is.invalidType(where, 'tensors', 'a non-empty array of Tensors', tensors);
  return tensors.map((t, k) => handleOf(where, `tensors[${k}]`, t));
}
/** Concatenates along an existing dimension. */
export function cat(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(native.cat(tensorList('cat', tensors), is.integer('cat', 'dim', dim)));
}
/** Stacks along a new dimension. */
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(native.stack(tensorList('stack', tensors), is.integer('stack', 'dim', dim)));
}
/** Elementwise `condition ? a : b`. */
export function where(condition: Tensor, a: Tensor, b: Tensor): Tensor {
  return new Tensor(native.where(handleOf('where', 'condition', condition), handleOf('where', 'a', a), handleOf('where', 'b', b)));
}

/** Options of {@link crossEntropy}. */
export interface CrossEntropyOptions {
  /** Label smoothing in [0, 1]. */
  labelSmoothing?: number;
}
/** Mean cross-entropy of `logits` [N, C] against class indices `target` [N] (int64). */
export function crossEntropy(logits: Tensor, target: Tensor, options?: CrossEntropyOptions): Tensor {
  const o = is.options<CrossEntropyOptions>('crossEntropy', options, ['labelSmoothing']);
  const smoothing = o.labelSmoothing === undefined ? 0 : is.inRange('crossEntropy', 'labelSmoothing', o.labelSmoothing, 0, 1);
  return new Tensor(native.crossEntropy(handleOf('crossEntropy', 'logits', logits), handleOf('crossEntropy', 'target', target), smoothing));
}
/** Mean squared error. */
export function mseLoss(input: Tensor, target: Tensor): Tensor {
  return new Tensor(native.mseLoss(handleOf('mseLoss', 'input', input), handleOf('mseLoss', 'target', target)));
}

function generatorHandle(where: string, g: unknown): NativeGenerator {
  if (!(g instanceof Generator)) throw is.invalidType(where, 'generator', 'a Generator', g);
  return g.handle;
}

/**
 * A seeded random generator (LibTorch's CPU Philox/MT generator) for {@link rand},
 * {@link randn} and {@link randint}. Its state can be saved and restored.
 */
export class Generator {
  /** @internal */
  readonly handle: NativeGenerator;
  constructor(seed: number | bigint) {
    this.handle = native.generatorNew(is.uint64('Generator', 'seed', seed));
  }
  /** The seed it was created with. */
  get seed(): bigint {
    return native.generatorSeed(this.handle);
  }
  /** The full state, as a uint8 tensor. */
  getState(): Tensor {
    return new Tensor(native.generatorGetState(this.handle));
  }
  /** Restores a state from {@link getState}. */
  setState(state: Tensor): void {
    native.generatorSetState(this.handle, handleOf('Generator.setState', 'state', state));
  }
}

/** Seeds LibTorch's global CPU generator (used by dropout inside models and by random ops without a generator). */
export function manualSeed(seed: number | bigint): void {
  native.manualSeed(is.uint64('manualSeed', 'seed', seed));
}

/** The global CPU generator's state (for checkpoints). */
export function globalGeneratorState(): Tensor {
  return new Tensor(native.globalGeneratorState());
}

/** Restores the global CPU generator's state. */
export function setGlobalGeneratorState(state: Tensor): void {
  native.setGlobalGeneratorState(handleOf('setGlobalGeneratorState', 'state', state));
}
