import * as is from './is';
import { native, NativePerturbation } from './native';
import { Device, Tensor, deviceArg } from './tensor';

/** Options of {@link perturb}. */
export interface PerturbOptions {
  /** L2 radius of the step: the perturbation is epsilon * M (.) d / ||d||. Finite, >= 0. */
  epsilon: number;
  /** Probability that an element is attacked (mask entry 1), in [0, 1]. Default 1. */
  p?: number;
  /** Key of the mask generator (non-negative integer or bigint < 2^64). Default 0. */
  seed?: number | bigint;
  /**
   * Counter of the mask generator (e.g. a step, group and tensor id combined). The same
   * (seed, counter) gives the same mask on every device and thread count. Default 0.
   */
  counter?: number | bigint;
  /**
   * Row-sparse path for embedding tables: the rows (dimension 0 indices, int64 or int32)
   * the batch touched. The direction must be zero outside these rows (as an embedding
   * gradient is); only these rows are backed up, perturbed and restored, and the result
   * equals the dense op bit for bit. Duplicates are allowed.
   */
  rows?: Tensor;
}

/**
 * The result of {@link perturb}: whether it applied, the direction's norm, and the
 * exact backup that {@link Perturbation.restore} puts back.
 */
export class Perturbation {
  /** @internal */
  readonly handle: NativePerturbation;
  /** True when the direction's norm was 0 or not finite: the target was left unchanged. */
  readonly skipped: boolean;
  /** ||direction||_2 over the whole tensor (over `rows` on the row-sparse path). */
  readonly norm: number;
  /** epsilon / norm, the factor applied to masked direction entries (0 when skipped). */
  readonly scale: number;
  /** Whether the row-sparse path ran. */
  readonly sparse: boolean;
  /** Bytes held by the backup until restore (the whole target, or the touched rows). */
  readonly backupBytes: number;

  /** Wraps a native handle; not for direct use: {@link perturb} returns perturbations. */
  constructor(handle: NativePerturbation) {
    this.handle = handle;
    const info = native.perturbationInfo(handle);
    this.skipped = info.skipped;
    this.norm = info.norm;
    this.scale = info.scale;
    this.sparse = info.sparse;
    this.backupBytes = info.backupBytes;
  }

  /** Whether {@link restore} has run. */
  get restored(): boolean {
    return native.perturbationInfo(this.handle).restored;
  }

  /** Puts the target's original values back, bit for bit, and frees the backup. Once only. */
  restore(): void {
    native.restore(this.handle);
  }
}

/**
 * The fused DropAttack perturbation, in place:
 *
 *     target <- target + epsilon * M (.) direction / ||direction||_2,   M ~ Bernoulli(p)
 *
 * with an exact backup for {@link Perturbation.restore}. When ||direction|| is 0 or not
 * finite nothing changes and the result says `skipped`. The mask of element i is
 * `dropMask` bit i for (seed, counter): Philox-4x32-10, independent of threads, of the
 * dense/row-sparse path and of the device. float32, float64, float16 and bfloat16
 * (half types computed in float). The target must be contiguous; direction must have
 * its shape, dtype and device. The kernel is chosen by the target's device.
 */
export function perturb(target: Tensor, direction: Tensor, options: PerturbOptions): Perturbation {
  const where = 'perturb';
  if (!(target instanceof Tensor)) throw is.invalidType(where, 'target', 'a Tensor', target);
  if (!(direction instanceof Tensor)) throw is.invalidType(where, 'direction', 'a Tensor', direction);
  if (options === undefined) throw is.invalidType(where, 'options', 'an object with epsilon', options);
  const o = is.options<PerturbOptions>(where, options, ['epsilon', 'p', 'seed', 'counter', 'rows']);
  if (o.epsilon === undefined) throw is.invalidType(where, 'epsilon', 'a number', undefined);
  const epsilon = is.number(where, 'epsilon', o.epsilon);
  if (!Number.isFinite(epsilon) || epsilon < 0) throw is.invalidRange(where, 'epsilon', 'a finite number >= 0', o.epsilon);
  const p = o.p === undefined ? 1 : is.inRange(where, 'p', o.p, 0, 1);
  const seed = o.seed === undefined ? 0 : is.uint64(where, 'seed', o.seed);
  const counter = o.counter === undefined ? 0 : is.uint64(where, 'counter', o.counter);
  let rows = null;
  if (o.rows !== undefined) {
    if (!(o.rows instanceof Tensor)) throw is.invalidType(where, 'rows', 'a Tensor of row indices', o.rows);
    rows = o.rows.handle;
  }
  return new Perturbation(native.perturb(target.handle, direction.handle, epsilon, p, seed, counter, rows));
}

/** Options of {@link dropMask}. */
export interface DropMaskOptions {
  /** Keep probability in [0, 1]. */
  p: number;
  seed?: number | bigint;
  counter?: number | bigint;
  device?: Device;
}

/**
 * The Bernoulli(p) mask that {@link perturb} uses for a tensor of `numel` elements, as a
 * flat bool tensor: element i is 1 when the 32-bit Philox-4x32-10 word i mod 4 of
 * counter block (i / 4, counter) under key seed is below floor(p * 2^32).
 */
export function dropMask(numel: number, options: DropMaskOptions): Tensor {
  const where = 'dropMask';
  const n = is.integer(where, 'numel', numel, 0);
  const o = is.options<DropMaskOptions>(where, options, ['p', 'seed', 'counter', 'device']);
  const p = is.inRange(where, 'p', o.p, 0, 1);
  const seed = o.seed === undefined ? 0 : is.uint64(where, 'seed', o.seed);
  const counter = o.counter === undefined ? 0 : is.uint64(where, 'counter', o.counter);
  const device = o.device === undefined ? 'cpu' : deviceArg(where, o.device);
  return new Tensor(native.dropMask(n, p, seed, counter, device));
}

/**
 * One Philox-4x32-10 block: four 32-bit words for a 4-word counter and a 2-word key,
 * from the same header the kernels use (for checking and reproducing masks).
 */
export function philox4x32(counter: [number, number, number, number], key: [number, number]): [number, number, number, number] {
  const where = 'philox4x32';
  const word = (name: string, v: unknown) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw is.invalidRange(where, name, 'an integer in [0, 2^32)', v);
    }
    return v;
  };
  if (!Array.isArray(counter) || counter.length !== 4) throw is.invalidType(where, 'counter', 'an array of 4 words', counter);
  if (!Array.isArray(key) || key.length !== 2) throw is.invalidType(where, 'key', 'an array of 2 words', key);
  counter.forEach((v, k) => word(`counter[${k}]`, v));
  key.forEach((v, k) => word(`key[${k}]`, v));
  return native.philox4x32(counter, key) as [number, number, number, number];
}

/**
 * Backups return to a small pool on restore, so the next perturbation of the same size
 * reuses their memory instead of faulting in fresh pages (at most 8 buffers). This frees
 * them; {@link cachedBackupBytes} tells how much they hold.
 */
export function releaseCachedBackups(): void {
  native.releaseCachedBackups();
}

/** Bytes held by the pool of reusable backup buffers. */
export function cachedBackupBytes(): number {
  return native.cachedBackupBytes();
}
