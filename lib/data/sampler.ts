// The order of a dataset's examples, epoch by epoch, cut into batches: the one place that
// decides which examples a batch holds. Text and image batches differ only in how they
// turn a batch's indices into tensors (their collation).

import * as is from '../core/is';
import { mixSeed, mulberry32, permutation, Rng, seedArg, shuffleInPlace } from './random';

/** The sampling options every batch source takes. */
export interface SamplerOptions {
  /** Examples per batch. */
  batchSize?: number;
  /** Shuffle each epoch (seeded). Default false. */
  shuffle?: boolean;
  /** Seed of the shuffles; epoch e uses a seed mixed from (seed, e). Default 0. */
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize. Default false. */
  dropLast?: boolean;
}

/** The option names of {@link SamplerOptions}, for option checks. */
export const SAMPLER_OPTIONS = ['batchSize', 'shuffle', 'seed', 'dropLast'] as const;

/** Ordering by example length (text): bucketing and the order within a batch. */
export interface LengthOrder {
  /** Each example's length. */
  lengths: Int32Array;
  /** Length bucketing: chunks of this many batches sorted by length (see TextBatchesOptions.bucket); 0 for none. */
  bucketSize: number;
  /** Sort each batch by length, longest first. */
  sortByLength: boolean;
}

/**
 * Batches of example indices for each epoch. For the same options and epoch the plan is
 * always the same, on any machine: a run resumed at epoch e sees the batches an
 * uninterrupted run would have.
 */
export class Sampler {
  /** Number of examples. */
  readonly size: number;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  private readonly by: LengthOrder | null;

  /**
   * @param where the caller, for messages
   * @param size number of examples (at least 1)
   * @param options already restricted to the caller's option names
   * @param defaultBatchSize the batch size without options.batchSize
   */
  constructor(where: string, size: number, options: SamplerOptions, defaultBatchSize: number, by: LengthOrder | null = null) {
    this.size = size;
    this.batchSize = options.batchSize === undefined ? defaultBatchSize : is.integer(where, 'batchSize', options.batchSize, 1);
    this.shuffle = options.shuffle === undefined ? false : is.boolean(where, 'shuffle', options.shuffle);
    this.seed = seedArg(where, options.seed);
    this.dropLast = options.dropLast === undefined ? false : is.boolean(where, 'dropLast', options.dropLast);
    if (this.dropLast && size < this.batchSize) {
      throw new RangeError(`${where}: dropLast with batchSize ${this.batchSize} leaves no batch of ${size} examples`);
    }
    if (by !== null && by.lengths.length !== size) throw new RangeError(`${where}: ${by.lengths.length} lengths for ${size} examples`);
    this.by = by;
  }

  /** Number of batches per epoch. */
  get numBatches(): number {
    return this.dropLast ? Math.floor(this.size / this.batchSize) : Math.ceil(this.size / this.batchSize);
  }

  private rng(epoch: number): Rng | null {
    return this.shuffle ? mulberry32(mixSeed(this.seed, epoch)) : null;
  }

  /** The example order of epoch `epoch` (the identity without shuffle); `where` names the caller. */
  order(epoch: number, where: string): Int32Array {
    is.integer(where, 'epoch', epoch, 0);
    return permutation(this.size, this.rng(epoch));
  }

  /** The example indices of each batch of epoch `epoch`, in batch order and order within a batch. */
  plan(epoch: number, where: string): Int32Array[] {
    is.integer(where, 'epoch', epoch, 0);
    const n = this.size;
    const B = this.batchSize;
    const rng = this.rng(epoch);
    const order = permutation(n, rng);
    let batches: Int32Array[] = [];
    const by = this.by;
    if (by !== null && by.bucketSize > 0) {
      const lens = by.lengths;
      const chunk = B * by.bucketSize;
      for (let c = 0; c < n; c += chunk) {
        // Array#sort is stable: equal lengths keep their (shuffled) order.
        const part = Array.from(order.subarray(c, Math.min(n, c + chunk))).sort((a, b) => lens[b] - lens[a]);
        for (let s = 0; s < part.length; s += B) batches.push(Int32Array.from(part.slice(s, s + B)));
      }
      if (this.dropLast && batches.length > 0 && batches[batches.length - 1].length < B) batches.pop();
      // The same generator goes on to shuffle the batch order.
      if (rng) shuffleInPlace(batches, rng);
    } else {
      for (let s = 0; s < n; s += B) {
        if (this.dropLast && s + B > n) break;
        batches.push(order.slice(s, Math.min(n, s + B)));
      }
    }
    if (by !== null && by.sortByLength) {
      const lens = by.lengths;
      batches = batches.map((b) => Int32Array.from(Array.from(b).sort((x, y) => lens[y] - lens[x])));
    }
    return batches;
  }
}
