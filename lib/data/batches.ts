// A batch source: a sampler (which examples, in which order) and a collation (the batch
// of given indices). TextBatches and ImageBatches are this with their own collation.

import { Sampler } from './sampler';

/** The batches of one epoch: an iterator that also says how many batches it holds. */
export interface EpochBatches<T> extends IterableIterator<T> {
  /** The number of batches the epoch holds, so progress can show a total. */
  readonly numBatches: number;
}

class EpochIterator<T> implements EpochBatches<T> {
  private k = 0;
  constructor(
    private readonly plan: Int32Array[],
    private readonly collate: (indices: Int32Array) => T,
  ) {}
  get numBatches(): number {
    return this.plan.length;
  }
  next(): IteratorResult<T> {
    if (this.k >= this.plan.length) return { done: true, value: undefined };
    return { done: false, value: this.collate(this.plan[this.k++]) };
  }
  [Symbol.iterator](): this {
    return this;
  }
}

/**
 * Seeded batches for one epoch at a time. Iterating the object itself runs epochs 1, 2,
 * 3, ... on successive loops; `epoch(e)` gives epoch e again (the same order for the same
 * seed), which makes it a `fit()` batch source: `train: (e) => batches.epoch(e)`.
 */
export abstract class Batches<T> implements Iterable<T> {
  private nextEpoch = 1;

  protected constructor(
    /** The caller's name in messages ('TextBatches', 'ImageBatches'). */
    protected readonly where: string,
    /** @internal Which examples each batch holds, in which order. */
    protected readonly sampler: Sampler,
  ) {}

  /** Number of examples. */
  get size(): number {
    return this.sampler.size;
  }
  /** Number of batches per epoch. */
  get numBatches(): number {
    return this.sampler.numBatches;
  }

  /** The batch of these example indices, in this order. */
  abstract batch(indices: Int32Array): T;

  /** The example indices of each batch of epoch `epoch` (batch order, and order within a batch). */
  plan(epoch = 1): Int32Array[] {
    return this.sampler.plan(epoch, `${this.where}.plan`);
  }

  /** The batches of epoch `epoch` (1-based by convention; any non-negative integer). */
  epoch(epoch = 1): EpochBatches<T> {
    return new EpochIterator(this.sampler.plan(epoch, `${this.where}.epoch`), (idx) => this.batch(idx));
  }

  /** Runs the next epoch (1, 2, 3, ... on successive loops). */
  [Symbol.iterator](): Iterator<T> {
    return this.epoch(this.nextEpoch++);
  }
}
