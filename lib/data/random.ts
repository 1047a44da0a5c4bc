// Seeded pseudo-random numbers for the data pipeline: shuffles, splits and the random
// rows of word-vector tables. Everything here is pure JavaScript and deterministic for a
// given seed, on any machine and any Node version.

import * as is from '../core/is';

/** A generator of uniform floats in [0, 1). */
export type Rng = () => number;

/** A seed as accepted by the data pipeline: a safe non-negative integer. */
export function seedArg(where: string, value: unknown, fallback = 0): number {
  if (value === undefined) return fallback;
  return is.integer(where, 'seed', value, 0);
}

/** Mixes a 53-bit seed and up to two extra integers into one 32-bit state (murmur3 finalizer). */
export function mixSeed(seed: number, a = 0, b = 0): number {
  let h = (seed >>> 0) ^ Math.imul(Math.floor(seed / 2 ** 32) >>> 0, 0x9e3779b1);
  for (const v of [a, b]) {
    h = Math.imul(h ^ (v >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    h = (h + 0x6d2b79f5) | 0;
  }
  return h >>> 0;
}

/** mulberry32: a small, fast, well-distributed 32-bit generator. Returns floats in [0, 1). */
export function mulberry32(seed: number): Rng {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniform integer in [0, n). */
export function randomInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/** Fisher–Yates shuffle in place. */
export function shuffleInPlace<T extends { length: number; [k: number]: unknown }>(a: T, rng: Rng): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = randomInt(rng, i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

/** A random permutation of 0..n-1 (the identity when rng is null). */
export function permutation(n: number, rng: Rng | null): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return rng ? shuffleInPlace(p, rng) : p;
}

/** Standard normal samples (Box–Muller), as a generator. */
export function normalSampler(rng: Rng): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u <= Number.MIN_VALUE) u = rng();
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Options of {@link splitIndices}. */
export interface SplitOptions {
  /** Fraction of the examples held out for validation, in [0, 1). Default 0.1. */
  validation?: number;
  /** Seed of the shuffle. Default 0. */
  seed?: number;
  /**
   * Class labels (one per example): the split then keeps each class's share in both
   * parts (each class contributes round(count * validation) validation examples).
   */
  stratify?: ArrayLike<number>;
}

/**
 * A deterministic train/validation split of 0..n-1. Both parts are returned sorted
 * ascending; together they hold every index exactly once.
 */
export function splitIndices(n: number, options?: SplitOptions): { train: Int32Array; validation: Int32Array } {
  const where = 'splitIndices';
  is.integer(where, 'n', n, 0);
  const o = is.options<SplitOptions>(where, options, ['validation', 'seed', 'stratify']);
  const fraction = o.validation === undefined ? 0.1 : is.number(where, 'validation', o.validation);
  if (!(fraction >= 0 && fraction < 1)) throw is.invalidRange(where, 'validation', 'a fraction in [0, 1)', fraction);
  const rng = mulberry32(mixSeed(seedArg(where, o.seed), 0x5b117));
  const isValidation = new Uint8Array(n);
  if (o.stratify !== undefined) {
    const labels = o.stratify;
    if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') {
      throw is.invalidType(where, 'stratify', 'an array of class labels', labels);
    }
    if (labels.length !== n) throw is.invalidRange(where, 'stratify', `an array of ${n} labels (one per example)`, labels);
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const c = labels[i];
      if (typeof c !== 'number' || !Number.isInteger(c)) throw is.invalidType(where, `stratify[${i}]`, 'an integer label', c);
      let list = byClass.get(c);
      if (!list) byClass.set(c, (list = []));
      list.push(i);
    }
    for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
      const list = shuffleInPlace(byClass.get(c)!, rng);
      const k = Math.round(list.length * fraction);
      for (let j = 0; j < k; j++) isValidation[list[j]] = 1;
    }
  } else {
    const p = permutation(n, rng);
    const k = Math.round(n * fraction);
    for (let j = 0; j < k; j++) isValidation[p[j]] = 1;
  }
  let nv = 0;
  for (let i = 0; i < n; i++) nv += isValidation[i];
  const train = new Int32Array(n - nv);
  const validation = new Int32Array(nv);
  let a = 0;
  let b = 0;
  for (let i = 0; i < n; i++) {
    if (isValidation[i]) validation[b++] = i;
    else train[a++] = i;
  }
  return { train, validation };
}

/** The items at the given indices, in that order (a typed array gives the same kind back). */
export function pick<T>(items: readonly T[], indices: ArrayLike<number>): T[];
export function pick<A extends Int32Array | Float32Array | Float64Array | Uint8Array | BigInt64Array>(items: A, indices: ArrayLike<number>): A;
export function pick(items: ArrayLike<unknown> & { length: number }, indices: ArrayLike<number>): unknown {
  const n = indices.length;
  const out: { [k: number]: unknown } = ArrayBuffer.isView(items)
    ? new (items.constructor as new (n: number) => { [k: number]: unknown })(n)
    : new Array(n);
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    if (!(Number.isInteger(i) && i >= 0 && i < items.length)) {
      throw is.invalidRange('pick', `indices[${k}]`, `an index in [0, ${items.length})`, i);
    }
    out[k] = items[i];
  }
  return out;
}
