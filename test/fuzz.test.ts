// Fuzz test of the RAW binding (lib/core/native.ts): every exported function is called with
// random argument lists. Each call must return or throw a TypeError, RangeError or
// TorchError; anything else (a plain Error, a non-Error, a native crash that kills the
// process) is a bug.
//
// Reproduce a failure with FUZZ_SEED=<seed printed in the failure> npx jest test/fuzz.test.ts
// More calls: FUZZ_CALLS=<calls per function>.
//
// Sizes left out of the pools on purpose: integers such as 2**31, 2**32 or 1e10 used as
// a numel (dropMask) or as an arange length would allocate gigabytes legitimately (the
// machine overcommits up to its RAM). The pools keep sizes that are either tiny or
// impossible (terabytes and more), which the binding must refuse with an error.
import { spawnSync } from 'child_process';
import * as path from 'path';

import { native, NativeGenerator, NativePerturbation, NativeTensor } from '../lib/core/native';
import { TorchError } from '../lib/core/errors';
import { mulberry32 } from '../lib/data/random';
import { badThrow, NativeTypeError } from './helpers/errors';

type Fn = (...args: unknown[]) => unknown;
const binding = native as unknown as Record<string, Fn>;

// ---------------------------------------------------------------------------------

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : 0x5eed2024;
const CALLS_PER_FN = process.env.FUZZ_CALLS !== undefined ? Number(process.env.FUZZ_CALLS) : 400;
// Forged handles (see forge()) have their own targeted test below and are mixed into the
// random pool too; FUZZ_FORGED=0 leaves them out of the pool.
const FORGED_IN_POOL = process.env.FUZZ_FORGED !== '0';

// ---------------------------------------------------------------------------------
// Handles from real calls.
const T = (data: ArrayLike<number> | ArrayLike<bigint>, shape: number[], dtype: string): NativeTensor => {
  let ta;
  if (dtype === 'int64') ta = BigInt64Array.from(data as ArrayLike<bigint>);
  else if (dtype === 'float64') ta = Float64Array.from(data as ArrayLike<number>);
  else if (dtype === 'uint8' || dtype === 'bool') ta = Uint8Array.from(data as ArrayLike<number>);
  else if (dtype === 'int32') ta = Int32Array.from(data as ArrayLike<number>);
  else ta = Float32Array.from(data as ArrayLike<number>);
  return native.fromBuffer(ta, shape, dtype, false);
};

interface Handles {
  live: NativeTensor[];
  disposed: NativeTensor[];
  generators: NativeGenerator[];
  perturbations: NativePerturbation[];
  state: NativeTensor;
  /** Objects that pass an instanceof check against a handle class without wrapping anything. */
  forged: unknown[];
}

/** Objects inheriting a handle's prototype, and handles made through the exposed constructors. */
function forge(t: NativeTensor, g: NativeGenerator, p: NativePerturbation): unknown[] {
  const out: unknown[] = [
    Object.create(Object.getPrototypeOf(t)),
    Object.create(Object.getPrototypeOf(g)),
    Object.create(Object.getPrototypeOf(p)),
    Object.setPrototypeOf({ __nativeTensor: 1 }, Object.getPrototypeOf(t)),
  ];
  const ctorOf = (h: unknown) => (h as { constructor: new (...a: unknown[]) => unknown }).constructor;
  for (const make of [() => new (ctorOf(g))(5n), () => new (ctorOf(p))(), () => new (ctorOf(t))()]) {
    try {
      out.push(make());
    } catch {
      // the tensor constructor refuses JS calls
    }
  }
  return out;
}

function makeHandles(): Handles {
  const f32 = T([1, 2, 3, 4, 5, 6], [2, 3], 'float32');
  const f32b = T([0.5, -1, 2, 0, 3, -2], [2, 3], 'float32');
  const f64 = T([1, -2, 3.5, 0], [4], 'float64');
  const i64 = T([0n, 1n, 2n], [3], 'int64');
  const i32 = T([1, 0], [2], 'int32');
  const b = T([1, 0], [2], 'bool');
  const u8 = T([3, 250], [2], 'uint8');
  const f16 = native.full([2, 2], 0.5, 'float16', 'cpu');
  const bf16 = native.full([3], -2, 'bfloat16', 'cpu');
  const scalar = native.full([], 3, 'float32', 'cpu');
  const empty = native.full([0], 0, 'float32', 'cpu');
  const empty2 = native.full([2, 0], 0, 'float64', 'cpu');
  const shared = native.fromBuffer(new Float32Array([1, 2, 3, 4]), [2, 2], 'float32', true);
  const nonContig = native.transpose(T([1, 2, 3, 4, 5, 6], [2, 3], 'float32'), 0, 1);
  const grad = T([1, 2], [2], 'float32');
  native.setRequiresGrad(grad, true);
  const nonLeaf = native.binary('mul', grad, 2);
  const logits = T([1, 2, 3, 0, 0, 1], [2, 3], 'float32');
  const labels = T([2n, 0n], [2], 'int64');
  const rows = T([1n], [1], 'int64');

  const disposed = [
    T([1, 2, 3, 4, 5, 6], [2, 3], 'float32'),
    T([1, 2, 3, 4], [4], 'float64'),
    T([1n, 2n, 3n], [3], 'int64'),
    T([1, 0], [2], 'bool'),
    native.full([2, 2], 1, 'float16', 'cpu'),
    native.full([], 1, 'float32', 'cpu'),
    native.full([0], 1, 'float32', 'cpu'),
    native.fromBuffer(new Float32Array([1, 2]), [2], 'float32', true),
  ];
  for (const d of disposed) native.dispose(d);

  const g1 = native.generatorNew(1);
  const g2 = native.generatorNew(2n ** 64n - 1n);
  const state = native.generatorGetState(g1);

  const target = T([1, 2, 3, 4, 5, 6], [2, 3], 'float32');
  const dir = T([1, 0, -1, 2, 0, 1], [2, 3], 'float32');
  const p1 = native.perturb(target, dir, 0.1, 0.5, 1, 2, null);
  const p2 = native.perturb(T([1, 2, 3, 4, 5, 6], [3, 2], 'float64'), T([0, 0, 1, 1, 0, 0], [3, 2], 'float64'), 1, 1, 3n, 4n, rows);
  const p3 = native.perturb(T([1, 2], [2], 'float32'), T([1, 1], [2], 'float32'), 1, 1, 0, 0, null);
  native.restore(p3);
  const p4 = native.perturb(T([1, 2], [2], 'float32'), T([0, 0], [2], 'float32'), 1, 1, 0, 0, null); // skipped

  return {
    live: [f32, f32b, f64, i64, i32, b, u8, f16, bf16, scalar, empty, empty2, shared, nonContig, grad, nonLeaf, logits, labels, rows, target, dir],
    disposed,
    generators: [g1, g2],
    perturbations: [p1, p2, p3, p4],
    state,
    forged: forge(f32, g1, p1),
  };
}

// ---------------------------------------------------------------------------------
// The value pool.
const NUMBERS = [
  0, -0, 1, -1, 2, 3, 0.5, 1.5, -2.5, 255, 256, 1e-300, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53 + 2,
  2 ** 60, 2 ** 64, -(2 ** 64), 1e15, 1e300, -1e300, Number.MAX_VALUE, Number.MIN_VALUE, 64, 65, -65,
];
// 2**32 - 1 and 2**32 are not in NUMBERS: arange(0.5, 2**32, 2, 'int64') allocates 16 GB
// legitimately (and took 29 s); they only appear as philox4x32 words.
const WORDS = [0, 1, 4294967295, 4294967296, -1, 0.5, NaN, Infinity, 2 ** 53];
const BIGINTS = [0n, 1n, -1n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n, 2n ** 100n, -(2n ** 100n), 3n];
const DTYPE_NAMES = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'uint8', 'bool'];
const DEVICES = ['cpu', 'cuda', 'cuda:0', 'cuda:99', 'cuda:200', 'cuda:999', 'cuda:', 'cuda:-1', 'cuda:00000001', 'cpu:0', 'mps', 'meta'];
const OPS = [
  'add', 'sub', 'mul', 'div', 'pow', 'remainder', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge',
  'neg', 'abs', 'exp', 'log', 'sqrt', 'square', 'reciprocal', 'sigmoid', 'tanh', 'relu', 'sin', 'cos', 'floor',
  'ceil', 'round', 'sign', 'isfinite', 'isnan', 'logicalNot', 'sum', 'mean', 'max', 'min', 'argmax', 'argmin',
  'copy', 'fill', 'zero', 'matmul', 'constructor', '__proto__', 'toString', 'hasOwnProperty',
];
const GARBAGE_STRINGS = ['', ' ', 'float8', 'Float32', 'int', '\u0000', 'cpu\u0000', 'x'.repeat(1000), '💥', '-1', '[2,3]', 'NaN'];
const SHAPES: unknown[] = [
  [], [0], [1], [2, 3], [3, 2], [6], [3], [2], [2, 2], [-1], [2, -1], [-1, 3], [-1, -1], [-2], [1, 1, 1, 1, 1, 1, 1, 1],
  [1e12, 1e12], [1e12], [2 ** 40], [2 ** 53], [0, 1e12, 1e12], [0, 2 ** 53, 2 ** 53], [1.5], [NaN], [Infinity], ['2'], [[2]], [2n],
  [null], [undefined], new Array(65).fill(1), new Array(64).fill(1), [0, 1], [1, 0, -1], [2 ** 31, 0], [6, 1],
];
const DIMS: unknown[] = [[0], [1], [-1], [0, 1], [1, 0], [0, 0], [2], [-3], [64], [2 ** 53], [0, 1, 2], [-2, -1]];

function makeObjects(): unknown[] {
  const holey: unknown[] = [];
  holey[3] = 1;
  const withLength = { length: 2, 0: 1, 1: 2 };
  const nullProto = Object.create(null);
  return [{}, { dtype: 'float32' }, { shape: [2, 3] }, nullProto, withLength, holey, new Date(0), /re/, new Map(), new Error('x'), Promise.resolve(1)];
}

function makeTypedArrays(): unknown[] {
  return [
    new Float32Array(0), new Float32Array([1, 2, 3, 4, 5, 6]), new Float32Array(1 << 16), new Float64Array([1, 2, 3, 4]),
    new Float64Array(0), new Int32Array([1, 2]), new Uint8Array([1, 0]), new Uint8Array(0), new Uint8ClampedArray([9, 9, 9]),
    new Int8Array([-1, 1]), new Int16Array([1, 2, 3, 4, 5, 6]), new Uint16Array([1]), new Uint32Array([1, 2]),
    new BigInt64Array([1n, 2n, 3n]), new BigUint64Array([1n]), new Float32Array(new ArrayBuffer(64), 8, 6),
    new DataView(new ArrayBuffer(8)), new ArrayBuffer(16), Buffer.from([1, 2, 3]),
    new Float32Array(new SharedArrayBuffer(24)),
    detachedArray(),
  ];
}

/** A Float32Array whose buffer was transferred away (length 0 now). */
function detachedArray(): Float32Array {
  const a = new Float32Array([1, 2, 3]);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

type Kind =
  | 'tensor' | 'tensorOrNumber' | 'number' | 'int' | 'uint64' | 'shape' | 'dims' | 'dimsOrNull' | 'intOrNull'
  | 'numberOrNull' | 'dtype' | 'dtypeOrNull' | 'device' | 'deviceOrNull' | 'bool' | 'gen' | 'pert' | 'tensorList'
  | 'tensorOrNull' | 'typedArray' | 'op' | 'words' | 'any';

/** Plausible argument kinds by position, used to reach past the first argument check. */
const SIGNATURES: Record<string, Kind[]> = {
  backends: [],
  getNumThreads: [],
  releaseCachedBackups: [],
  cachedBackupBytes: [],
  cpuCache: [], // resetPeak is optional
  releaseCpuCache: [],
  setNumThreads: ['int'],
  fromBuffer: ['typedArray', 'shape', 'dtype', 'bool'],
  full: ['shape', 'number', 'dtype', 'device'],
  rand: ['shape', 'dtype', 'device', 'gen'],
  randn: ['shape', 'dtype', 'device', 'gen'],
  randint: ['int', 'int', 'shape', 'dtype', 'device', 'gen'],
  arange: ['number', 'number', 'number', 'dtype', 'device'],
  shape: ['tensor'], dtype: ['tensor'], device: ['tensor'], isDisposed: ['tensor'], dispose: ['tensor'],
  toTypedArray: ['tensor'], item: ['tensor'], to: ['tensor', 'dtypeOrNull', 'deviceOrNull'], clone: ['tensor'],
  detach: ['tensor'], contiguous: ['tensor'],
  unary: ['op', 'tensor'],
  binary: ['op', 'tensor', 'tensorOrNumber'],
  matmul: ['tensor', 'tensor'],
  reduce: ['op', 'tensor', 'dimsOrNull', 'bool'],
  extreme: ['op', 'tensor', 'intOrNull', 'bool'],
  argExtreme: ['op', 'tensor', 'intOrNull', 'bool'],
  norm: ['tensor', 'number', 'dimsOrNull', 'bool'],
  reshape: ['tensor', 'shape'], view: ['tensor', 'shape'], permute: ['tensor', 'dims'],
  transpose: ['tensor', 'int', 'int'], squeeze: ['tensor', 'intOrNull'], unsqueeze: ['tensor', 'int'],
  flatten: ['tensor', 'int', 'int'], narrow: ['tensor', 'int', 'int', 'int'], indexSelect: ['tensor', 'int', 'tensor'],
  cat: ['tensorList', 'int'], stack: ['tensorList', 'int'], where: ['tensor', 'tensor', 'tensor'],
  clamp: ['tensor', 'numberOrNull', 'numberOrNull'], softmax: ['tensor', 'int'], logSoftmax: ['tensor', 'int'],
  crossEntropy: ['tensor', 'tensor', 'number'], mseLoss: ['tensor', 'tensor'],
  inplace: ['op', 'tensor', 'tensorOrNumber', 'number'],
  requiresGrad: ['tensor'], setRequiresGrad: ['tensor', 'bool'], grad: ['tensor'], zeroGrad: ['tensor'],
  backward: ['tensor', 'tensorOrNull', 'bool'],
  generatorNew: ['uint64'], generatorSeed: ['gen'], generatorGetState: ['gen'], generatorSetState: ['gen', 'tensor'],
  perturb: ['tensor', 'tensor', 'number', 'number', 'uint64', 'uint64', 'tensorOrNull'],
  perturbationInfo: ['pert'], restore: ['pert'],
  dropMask: ['int', 'number', 'uint64', 'uint64', 'device'],
  philox4x32: ['words', 'words'],
};

class Fuzzer {
  readonly rnd: () => number;
  h: Handles;
  readonly objects = makeObjects();
  readonly typed = makeTypedArrays();
  readonly functions: unknown[] = [() => 1, function named() {}, class K {}, TorchError, Array, Symbol, () => Promise.resolve(0)];
  readonly symbols = [Symbol('s'), Symbol.iterator, Symbol.for('tensor')];

  constructor(seed: number) {
    this.rnd = mulberry32(seed);
    this.h = makeHandles();
  }
  refresh(): void {
    this.h = makeHandles();
  }
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  pick<X>(a: readonly X[]): X {
    return a[this.int(a.length)];
  }
  tensor(): NativeTensor {
    const r = this.rnd();
    if (r < 0.15) return this.pick(this.h.disposed);
    if (r < 0.18) return this.h.state;
    if (r < 0.2 && FORGED_IN_POOL) return this.pick(this.h.forged) as NativeTensor;
    return this.pick(this.h.live);
  }
  tensorList(): unknown {
    const r = this.rnd();
    if (r < 0.1) return [];
    if (r < 0.2) return [this.tensor(), 1];
    if (r < 0.3) return [this.tensor(), this.any(0)];
    const n = 1 + this.int(4);
    const base = this.tensor();
    return Array.from({ length: n }, () => (this.rnd() < 0.6 ? base : this.tensor()));
  }

  /** Any value from the whole pool; depth bounds nested arrays. */
  any(depth = 1): unknown {
    switch (this.int(16)) {
      case 0: return this.pick([undefined, null]);
      case 1: return this.rnd() < 0.5;
      case 2: case 3: return this.pick(NUMBERS);
      case 4: return this.pick(BIGINTS);
      case 5: return this.pick([...OPS, ...DTYPE_NAMES, ...DEVICES, ...GARBAGE_STRINGS]);
      case 6: return this.pick(SHAPES);
      case 7: return depth > 0 ? Array.from({ length: this.int(5) }, () => this.any(depth - 1)) : [];
      case 8: return this.tensorList();
      case 9: return this.pick(this.typed);
      case 10: return this.pick(this.objects);
      case 11: return this.pick(this.functions);
      case 12: return this.pick(this.symbols);
      case 13: case 14: return this.tensor();
      default: {
        const r = this.rnd();
        if (r < 0.1 && FORGED_IN_POOL) return this.pick(this.h.forged);
        return r < 0.55 ? this.pick(this.h.generators) : this.pick(this.h.perturbations);
      }
    }
  }

  /** A value plausible for `kind` (still often invalid). */
  of(kind: Kind): unknown {
    const r = this.rnd();
    switch (kind) {
      case 'tensor': return this.tensor();
      case 'tensorOrNull': return r < 0.4 ? null : this.tensor();
      case 'tensorOrNumber': return r < 0.4 ? this.pick(NUMBERS) : this.tensor();
      case 'number': return r < 0.5 ? this.pick([0, 1, 0.5, -1, 2, 0.1]) : this.pick(NUMBERS);
      case 'numberOrNull': return r < 0.3 ? null : this.of('number');
      case 'int': return r < 0.6 ? this.pick([0, 1, -1, 2, -2, 3]) : r < 0.8 ? this.pick(NUMBERS) : this.pick(BIGINTS);
      case 'intOrNull': return r < 0.3 ? this.pick([null, undefined]) : this.of('int');
      case 'uint64': return r < 0.5 ? this.pick(BIGINTS) : this.pick(NUMBERS);
      case 'shape': return this.pick(SHAPES);
      case 'dims': return r < 0.8 ? this.pick(DIMS) : this.pick(SHAPES);
      case 'dimsOrNull': return r < 0.3 ? null : this.of('dims');
      case 'dtype': return r < 0.8 ? this.pick(DTYPE_NAMES) : this.pick(GARBAGE_STRINGS);
      case 'dtypeOrNull': return r < 0.3 ? null : this.of('dtype');
      case 'device': return r < 0.6 ? 'cpu' : this.pick(DEVICES);
      case 'deviceOrNull': return r < 0.3 ? null : this.of('device');
      case 'bool': return r < 0.9 ? r < 0.45 : this.pick([0, 1, 'true', null]);
      case 'gen': return r < 0.7 ? this.pick(this.h.generators) : r < 0.85 ? null : this.tensor();
      case 'pert': return r < 0.8 ? this.pick(this.h.perturbations) : this.tensor();
      case 'tensorList': return this.tensorList();
      case 'typedArray': return this.pick(this.typed);
      case 'op': return r < 0.9 ? this.pick(OPS) : this.pick(GARBAGE_STRINGS);
      case 'words':
        return r < 0.5
          ? Array.from({ length: this.pick([2, 4]) }, () => this.int(2 ** 32))
          : Array.from({ length: this.int(6) }, () => (this.rnd() < 0.5 ? this.pick(WORDS) : this.any(0)));
      default: return this.any();
    }
  }

  /** A random argument list (0-8 args) for `name`. */
  args(name: string): unknown[] {
    const sig = SIGNATURES[name];
    const mode = this.rnd();
    if (sig === undefined || mode < 0.3) return Array.from({ length: this.int(9) }, () => this.any());
    // Mostly plausible: each position follows the signature, with occasional wild values,
    // dropped trailing args or extra args.
    const n = mode < 0.4 ? this.int(sig.length + 1) : sig.length + (this.rnd() < 0.1 ? this.int(3) : 0);
    const out: unknown[] = [];
    for (let k = 0; k < Math.min(n, 8); k++) {
      const kind = k < sig.length ? sig[k] : 'any';
      out.push(this.rnd() < 0.85 ? this.of(kind) : this.any());
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------
function describeArg(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol') return v.toString();
  if (typeof v === 'function') return `function ${v.name}`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v);
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.length > 8 ? `[${v.length} items]` : `[${v.map(describeArg).join(', ')}]`;
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as { length?: number }).length ?? v.byteLength})`;
  try {
    if (native.isDisposed(v as NativeTensor)) return 'Tensor(disposed)';
    return `Tensor(${native.dtype(v as NativeTensor)}[${native.shape(v as NativeTensor).join(',')}])`;
  } catch {
    // not a tensor
  }
  const ctor = (v as { constructor?: { name?: string } }).constructor?.name;
  return ctor ? `<${ctor}>` : '<object>';
}

// Async functions (moduleLoad, moduleForward, trainerStep, ...) return promises: their
// rejections are checked like synchronous throws, after the calls (see the last test).
const pending: Promise<void>[] = [];
const asyncFailures: string[] = [];

function callOnce(name: string, args: unknown[]): string | null {
  try {
    const r: unknown = binding[name](...args);
    if (r !== null && typeof r === 'object' && typeof (r as Promise<unknown>).then === 'function') {
      const call = `native.${name}(${args.map(describeArg).join(', ')})`;
      pending.push(
        (r as Promise<unknown>).then(
          () => undefined,
          (e: unknown) => {
            const why = badThrow(e);
            if (why !== null && asyncFailures.length < 40) asyncFailures.push(`${call} rejected: ${why}`);
          },
        ),
      );
    }
  } catch (e) {
    return badThrow(e) ?? 'threw';
  }
  return null;
}

const SKIP = new Set(['setErrorClass', 'setNumThreads']);
const fnNames = Object.keys(native).filter((k) => typeof binding[k] === 'function');

describe('raw binding fuzz', () => {
  let threadsBefore = 0;
  beforeAll(() => {
    threadsBefore = native.getNumThreads();
  });
  afterAll(() => {
    // setNumThreads is only called with arguments it must reject; make sure of it.
    expect(native.getNumThreads()).toBe(threadsBefore);
  });

  test('the binding exports the functions the typings describe', () => {
    const optional = new Set(['releaseCachedBackups', 'cachedBackupBytes']); // newer than the rest
    for (const name of Object.keys(SIGNATURES)) if (!optional.has(name)) expect(fnNames).toContain(name);
    expect(fnNames).toContain('setErrorClass');
  });

  test(`random argument lists (seed ${SEED}, ${CALLS_PER_FN} calls per function)`, () => {
    const fz = new Fuzzer(SEED);
    const names = fnNames.filter((n) => !SKIP.has(n));
    const failures: string[] = [];
    const slow: string[] = [];
    const seen = new Set<string>();
    let calls = 0;
    let returned = 0;
    // Interleave functions so that state changes (dispose, in-place ops, restore,
    // requiresGrad) of one function meet the others.
    for (let round = 0; round < CALLS_PER_FN; round++) {
      if (round % 25 === 0) fz.refresh();
      for (let j = 0; j < names.length; j++) {
        const name = names[fz.int(names.length)];
        const args = fz.args(name);
        const started = performance.now();
        const result = callOnce(name, args);
        const ms = performance.now() - started;
        if (ms > 250) slow.push(`${ms.toFixed(0)} ms: native.${name}(${args.map(describeArg).join(', ')})`);
        calls++;
        if (result === null) returned++;
        const why = result === 'threw' ? null : result;
        if (why !== null) {
          // one report per function and kind of failure (numbers stripped)
          const key = `${name}|${why.replace(/\d+/g, '#')}`;
          if (!seen.has(key) && failures.length < 40) {
            seen.add(key);
            failures.push(`[seed ${SEED}, call #${calls}] native.${name}(${args.map(describeArg).join(', ')}) ${why}`);
          }
        }
      }
    }
    if (failures.length > 0) console.error(failures.join('\n'));
    if (slow.length > 0) console.warn(`slow calls (seed ${SEED}):\n${slow.slice(0, 20).join('\n')}`);
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThanOrEqual(Math.min(1000, CALLS_PER_FN * names.length));
    // the mix reaches past argument checks now and then
    expect(returned).toBeGreaterThan(calls / 50);
  });

  test('every function called with zero arguments', () => {
    const failures: string[] = [];
    for (const name of fnNames) {
      if (name === 'setErrorClass') continue;
      let threw = false;
      let error: unknown;
      try {
        binding[name]();
      } catch (e) {
        threw = true;
        error = e;
      }
      // functions known to take arguments must refuse an empty call; the others (and
      // functions added after this test was written) may return
      const needsArgs = (SIGNATURES[name]?.length ?? 0) > 0;
      if (!threw) {
        if (needsArgs) failures.push(`native.${name}() returned instead of throwing`);
        continue;
      }
      const why = badThrow(error);
      if (why !== null) failures.push(`native.${name}() ${why}`);
      else if (!(error instanceof NativeTypeError || error instanceof TypeError)) {
        failures.push(`native.${name}() threw ${(error as Error).name}, expected TypeError: ${(error as Error).message}`);
      } else if (!/ must be /.test(error.message)) {
        failures.push(`native.${name}() message does not say what was expected: ${error.message}`);
      }
    }
    expect(failures).toEqual([]);
    expect(native.getNumThreads()).toBeGreaterThanOrEqual(1);
  });

  // Valid calls, a fresh argument list each time, with the names the binding gives each
  // tensor argument in its messages.
  const f = (shape: number[] = [2, 3], v = 1) => native.full(shape, v, 'float32', 'cpu');
  const VALID: Record<string, { args: () => unknown[]; tensorArgs: Record<number, string> }> = {
    backends: { args: () => [], tensorArgs: {} },
    getNumThreads: { args: () => [], tensorArgs: {} },
    setNumThreads: { args: () => [native.getNumThreads()], tensorArgs: {} },
    fromBuffer: { args: () => [new Float32Array(6), [2, 3], 'float32', true], tensorArgs: {} },
    full: { args: () => [[2], 1, 'float32', 'cpu'], tensorArgs: {} },
    rand: { args: () => [[2], 'float32', 'cpu', null], tensorArgs: {} },
    randn: { args: () => [[2], 'float32', 'cpu', native.generatorNew(1)], tensorArgs: {} },
    randint: { args: () => [0, 5, [2], 'int64', 'cpu', null], tensorArgs: {} },
    arange: { args: () => [0, 5, 1, 'float32', 'cpu'], tensorArgs: {} },
    shape: { args: () => [f()], tensorArgs: { 0: 'tensor' } },
    dtype: { args: () => [f()], tensorArgs: { 0: 'tensor' } },
    device: { args: () => [f()], tensorArgs: { 0: 'tensor' } },
    isDisposed: { args: () => [f()], tensorArgs: {} }, // a disposed tensor is a valid input
    dispose: { args: () => [f()], tensorArgs: {} }, // disposing twice is fine
    toTypedArray: { args: () => [f()], tensorArgs: { 0: 'tensor' } },
    item: { args: () => [f([])], tensorArgs: { 0: 'tensor' } },
    to: { args: () => [f(), 'float64', 'cpu'], tensorArgs: { 0: 'tensor' } },
    clone: { args: () => [f()], tensorArgs: { 0: 'tensor' } },
    detach: { args: () => [f()], tensorArgs: { 0: 'tensor' } },
    contiguous: { args: () => [f()], tensorArgs: { 0: 'tensor' } },
    unary: { args: () => ['exp', f()], tensorArgs: { 1: 'tensor' } },
    binary: { args: () => ['add', f(), f()], tensorArgs: { 1: 'self', 2: 'other' } },
    matmul: { args: () => [f([2, 3]), f([3, 2])], tensorArgs: { 0: 'self', 1: 'other' } },
    reduce: { args: () => ['sum', f(), [0], false], tensorArgs: { 1: 'tensor' } },
    extreme: { args: () => ['max', f(), 1, true], tensorArgs: { 1: 'tensor' } },
    argExtreme: { args: () => ['argmin', f(), 0, false], tensorArgs: { 1: 'tensor' } },
    norm: { args: () => [f(), 2, [1], false], tensorArgs: { 0: 'tensor' } },
    reshape: { args: () => [f(), [3, -1]], tensorArgs: { 0: 'tensor' } },
    view: { args: () => [f(), [6]], tensorArgs: { 0: 'tensor' } },
    permute: { args: () => [f(), [1, 0]], tensorArgs: { 0: 'tensor' } },
    transpose: { args: () => [f(), 0, 1], tensorArgs: { 0: 'tensor' } },
    squeeze: { args: () => [f([1, 2]), 0], tensorArgs: { 0: 'tensor' } },
    unsqueeze: { args: () => [f(), 0], tensorArgs: { 0: 'tensor' } },
    flatten: { args: () => [f(), 0, -1], tensorArgs: { 0: 'tensor' } },
    narrow: { args: () => [f(), 1, 1, 2], tensorArgs: { 0: 'tensor' } },
    indexSelect: { args: () => [f(), 1, T([0n, 2n], [2], 'int64')], tensorArgs: { 0: 'tensor', 2: 'index' } },
    cat: { args: () => [[f(), f()], 0], tensorArgs: {} },
    stack: { args: () => [[f(), f()], 1], tensorArgs: {} },
    where: { args: () => [T([1, 0, 1], [3], 'bool'), f([3]), f([3], 2)], tensorArgs: { 0: 'condition', 1: 'self', 2: 'other' } },
    clamp: { args: () => [f(), 0, 0.5], tensorArgs: { 0: 'tensor' } },
    softmax: { args: () => [f(), 1], tensorArgs: { 0: 'tensor' } },
    logSoftmax: { args: () => [f(), -1], tensorArgs: { 0: 'tensor' } },
    crossEntropy: { args: () => [f(), T([0n, 2n], [2], 'int64'), 0.1], tensorArgs: { 0: 'logits', 1: 'target' } },
    mseLoss: { args: () => [f(), f([2, 3], 0)], tensorArgs: { 0: 'input', 1: 'target' } },
    inplace: { args: () => ['add', f(), f(), 2], tensorArgs: { 1: 'tensor', 2: 'other' } },
    requiresGrad: { args: () => [f()], tensorArgs: { 0: 'tensor' } },
    setRequiresGrad: { args: () => [f(), true], tensorArgs: { 0: 'tensor' } },
    grad: { args: () => [f()], tensorArgs: { 0: 'tensor' } },
    zeroGrad: { args: () => [f()], tensorArgs: { 0: 'tensor' } },
    backward: {
      args: () => {
        const x = f([2]);
        native.setRequiresGrad(x, true);
        return [native.binary('mul', x, 2), f([2]), false];
      },
      tensorArgs: { 0: 'tensor', 1: 'gradient' },
    },
    generatorNew: { args: () => [5n], tensorArgs: {} },
    generatorSeed: { args: () => [native.generatorNew(5)], tensorArgs: {} },
    generatorGetState: { args: () => [native.generatorNew(5)], tensorArgs: {} },
    generatorSetState: {
      args: () => {
        const g = native.generatorNew(5);
        return [g, native.generatorGetState(native.generatorNew(6))];
      },
      tensorArgs: { 1: 'state' },
    },
    perturb: {
      args: () => [f([3, 2]), f([3, 2], 0.5), 0.1, 0.5, 1, 2, T([0n, 2n], [2], 'int64')],
      tensorArgs: { 0: 'target', 1: 'direction', 6: 'rows' },
    },
    perturbationInfo: { args: () => [native.perturb(f([2]), f([2]), 1, 1, 0, 0, null)], tensorArgs: {} },
    restore: { args: () => [native.perturb(f([2]), f([2]), 1, 1, 0, 0, null)], tensorArgs: {} },
    dropMask: { args: () => [10, 0.5, 1, 2, 'cpu'], tensorArgs: {} },
    releaseCachedBackups: { args: () => [], tensorArgs: {} },
    cachedBackupBytes: { args: () => [], tensorArgs: {} },
    cpuCache: { args: () => [], tensorArgs: {} },
    releaseCpuCache: { args: () => [], tensorArgs: {} },
    philox4x32: { args: () => [[0, 1, 2, 3], [4, 5]], tensorArgs: {} },
  };

  test('the valid baseline calls succeed', () => {
    for (const [name, v] of Object.entries(VALID)) {
      if (!(name in binding)) continue;
      expect(() => binding[name](...v.args())).not.toThrow();
    }
  });

  test('every function with each argument replaced by a disposed tensor', () => {
    const failures: string[] = [];
    const disposed = (): NativeTensor => {
      const t = f([2, 3]);
      native.dispose(t);
      return t;
    };
    for (const name of fnNames) {
      if (name === 'setErrorClass') continue;
      const v = VALID[name];
      // a function without a known baseline still gets up to 8 positions filled with disposed tensors
      const base = v ? v.args() : [];
      const n = Math.max(v ? base.length : 8, 1);
      for (let k = 0; k < n; k++) {
        const args = v ? v.args() : Array.from({ length: 8 }, () => disposed());
        args[k] = disposed();
        let threw = false;
        let error: unknown;
        try {
          binding[name](...args);
        } catch (e) {
          threw = true;
          error = e;
        }
        const call = `native.${name}(${args.map(describeArg).join(', ')})`;
        if (threw) {
          const why = badThrow(error);
          if (why !== null) {
            failures.push(`${call} ${why}`);
            continue;
          }
        }
        const tensorName = v?.tensorArgs[k];
        if (tensorName !== undefined) {
          if (!threw) failures.push(`${call} returned; expected a TorchError about the disposed ${tensorName}`);
          else if (!(error instanceof TorchError)) failures.push(`${call} threw ${(error as Error).name}, expected TorchError`);
          else if (!/disposed/.test(error.message) || !error.message.includes(tensorName)) {
            failures.push(`${call} message should say 'disposed' and name '${tensorName}': ${error.message}`);
          }
        } else if (v && threw && !(error instanceof TorchError) && !/ must be | is a disposed /.test((error as Error).message)) {
          failures.push(`${call} message does not say what was expected: ${(error as Error).message}`);
        }
      }
    }
    // lists holding a disposed tensor
    for (const name of ['cat', 'stack']) {
      const d = disposed();
      try {
        binding[name]([f(), d], 0);
        failures.push(`native.${name}([live, disposed], 0) returned`);
      } catch (e) {
        if (!(e instanceof TorchError) || !/tensors\[1\]/.test(e.message) || !/disposed/.test(e.message)) {
          failures.push(`native.${name}([live, disposed], 0) threw ${String(e)}`);
        }
      }
    }
    if (failures.length > 0) console.error(failures.join('\n'));
    expect(failures).toEqual([]);
    expect(native.getNumThreads()).toBeGreaterThanOrEqual(1);
  });

  test('forged handles (a handle prototype without a native object) are refused with TypeError/TorchError', () => {
    const h = makeHandles();
    const failures: string[] = [];
    for (const name of fnNames) {
      const v = VALID[name];
      if (name === 'setErrorClass' || v === undefined) continue;
      const n = v.args().length;
      for (let k = 0; k < n; k++) {
        for (const forged of h.forged) {
          const args = v.args();
          args[k] = forged;
          let why: string | null = null;
          try {
            binding[name](...args);
          } catch (e) {
            why = badThrow(e);
          }
          const line = `native.${name}(${args.map(describeArg).join(', ')}) ${why}`;
          if (why !== null && !failures.includes(line)) failures.push(line);
        }
      }
    }
    for (const name of ['cat', 'stack']) {
      for (const forged of h.forged.slice(0, 1)) {
        try {
          binding[name]([f(), forged], 0);
        } catch (e) {
          const why = badThrow(e);
          if (why !== null) failures.push(`native.${name}([live, forged tensor], 0) ${why}`);
        }
      }
    }
    if (failures.length > 0) console.error(`${failures.length} failures with forged handles:\n${failures.slice(0, 30).join('\n')}`);
    expect(failures).toEqual([]);
  });

  test('typed arrays over a SharedArrayBuffer are copied or refused with a TypeError', () => {
    for (const share of [false, true]) {
      const sab = new Float32Array(new SharedArrayBuffer(16));
      sab.set([1, 2, 3, 4]);
      let result: unknown;
      let why: string | null = null;
      try {
        result = native.fromBuffer(sab, [4], 'float32', share);
      } catch (e) {
        why = badThrow(e);
      }
      expect({ share, why }).toEqual({ share, why: null });
      if (result !== undefined) expect(Array.from(native.toTypedArray(result as NativeTensor) as Float32Array)).toEqual([1, 2, 3, 4]);
    }
  });

  // A native crash would take this test file down with it: run it in a child process.
  test('a zero-copy tensor over a resizable ArrayBuffer survives the buffer shrinking', () => {
    const addon = process.env.DROPATTACK_BINARY ?? path.join(__dirname, '..', 'build', 'Release', 'dropattack.node');
    const script = `
      const n = require(${JSON.stringify(addon)});
      n.setErrorClass(class TorchError extends Error {});
      for (const newLength of [0, 4]) {
        const ab = new ArrayBuffer(16, { maxByteLength: 1 << 20 });
        const a = new Float32Array(ab);
        a.set([1, 2, 3, 4]);
        let t;
        try {
          t = n.fromBuffer(a, [4], 'float32', true);
        } catch (e) {
          if (!(e instanceof TypeError || e instanceof RangeError || e.constructor.name === 'TorchError')) throw e;
          continue;
        }
        ab.resize(newLength);
        n.toTypedArray(t);
        n.dispose(t);
      }
      console.log('survived');
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
    expect({ status: r.status, signal: r.signal, stderr: r.stderr.split('\n').slice(0, 3).join('\n') }).toEqual({
      status: 0,
      signal: null,
      stderr: '',
    });
    expect(r.stdout).toMatch(/survived/);
  });

  test('an unknown op is reported as such before the other arguments are read', () => {
    const cases: Array<[string, unknown[]]> = [
      ['unary', ['bogus', 'not a tensor']],
      ['binary', ['bogus', 'not a tensor', 1]],
      ['reduce', ['bogus', 'not a tensor', null, false]],
      ['extreme', ['bogus', 'not a tensor', null, false]],
      ['argExtreme', ['bogus', 'not a tensor', null, false]],
      ['inplace', ['bogus', 'not a tensor', 1]],
    ];
    const failures: string[] = [];
    for (const [name, args] of cases) {
      try {
        binding[name](...args);
        failures.push(`native.${name} returned`);
      } catch (e) {
        const msg = (e as Error).message;
        if (badThrow(e) !== null || !msg.startsWith(`${name}: `) || !/unknown op 'bogus'/.test(msg)) {
          failures.push(`native.${name}(${args.map(describeArg).join(', ')}): ${msg}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  test('the process is still healthy after fuzzing', () => {
    const a = native.full([2, 2], 3, 'float32', 'cpu');
    const s = native.reduce('sum', a, null, false);
    expect(native.item(s)).toBe(12);
    const m = native.matmul(a, a);
    expect(Array.from(native.toTypedArray(m) as Float32Array)).toEqual([18, 18, 18, 18]);
  });

  test('promises returned by the async functions settle, rejecting only with TypeError/RangeError/TorchError', async () => {
    await Promise.all(pending.splice(0));
    expect(asyncFailures).toEqual([]);
  });
});
