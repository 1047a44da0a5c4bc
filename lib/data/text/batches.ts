// Batches of encoded sequences: the shared sampler (with length bucketing) and a padded
// int64 collation.

import * as is from '../../core/is';
import { Device, Tensor, tensor } from '../../core/tensor';
import { Batches } from '../batches';
import { Sampler, SAMPLER_OPTIONS, SamplerOptions } from '../sampler';
import { fillPadded, lengthArgs } from './encode';
import { Vocabulary } from './vocabulary';

/** Options of {@link TextBatches}: the sampling options (batchSize default 32) and the text ones. */
export interface TextBatchesOptions extends SamplerOptions {
  /**
   * Length bucketing: the (shuffled) order is cut into chunks of bucketSize batches, each
   * chunk sorted by length, cut into batches, and the batch order shuffled. Far less
   * padding than random batches. Default false.
   */
  bucket?: boolean;
  /** Batches per bucketing chunk. Default 50. */
  bucketSize?: number;
  /** Sort each batch by length, longest first (what packed sequences need). Default true. */
  sortByLength?: boolean;
  /** Longest sequence; longer ones are cut. Required for 'fixed' padding. */
  maxLength?: number;
  /** 'dynamic' (default): pad each batch to its longest sequence; 'fixed': to maxLength. */
  padding?: 'fixed' | 'dynamic';
  /** The id padding is filled with. Default 0 (Vocabulary's pad). */
  padId?: number;
  /** Device of the batch tensors. Default 'cpu'. */
  device?: Device;
}

/** One batch of {@link TextBatches}; `inputs`/`target` make it a `fit()` batch. */
export interface TextBatch {
  /** Token ids, int64 [B, T]. */
  tokens: Tensor;
  /** Sequence lengths, int64 [B], each ≥ 1 (descending with sortByLength). */
  lengths: Tensor;
  /** Class ids, int64 [B]. */
  labels: Tensor;
  /** The examples' indices in the dataset, in batch order. */
  indices: Int32Array;
  /** [tokens, lengths]. */
  inputs: Tensor[];
  /** labels. */
  target: Tensor;
}

const TEXT_OPTIONS = [...SAMPLER_OPTIONS, 'bucket', 'bucketSize', 'sortByLength', 'maxLength', 'padding', 'padId', 'device'] as const;

/**
 * Batches of encoded sequences as int64 tensors, for one epoch at a time. Iterating the
 * object itself runs epochs 1, 2, 3, ... on successive loops; `epoch(e)` gives epoch e
 * again (the same order for the same seed), which makes it a `fit()` batch source:
 * `train: (e) => batches.epoch(e)`.
 */
export class TextBatches extends Batches<TextBatch> {
  private readonly ids: Int32Array;
  private readonly offsets: Int32Array;
  private readonly lens: Int32Array;
  private readonly labelData: Int32Array;
  private readonly T: number;
  private readonly fixed: boolean;
  private readonly padId: number;
  private readonly device: Device;

  /**
   * @param sequences token ids per example (from {@link Vocabulary.encode})
   * @param labels class id per example
   */
  constructor(sequences: readonly ArrayLike<number>[], labels: ArrayLike<number>, options?: TextBatchesOptions) {
    const where = 'TextBatches';
    if (!is.isArray(sequences)) throw is.invalidType(where, 'sequences', 'an array of id arrays', sequences);
    if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') {
      throw is.invalidType(where, 'labels', 'an array of class ids', labels);
    }
    if (labels.length !== sequences.length) {
      throw new RangeError(`${where}: labels has ${labels.length} entries but there are ${sequences.length} sequences`);
    }
    if (sequences.length === 0) throw new RangeError(`${where}: no sequences`);
    const o = is.options<TextBatchesOptions>(where, options, [...TEXT_OPTIONS]);
    const bucket = o.bucket === undefined ? false : is.boolean(where, 'bucket', o.bucket);
    const bucketSize = o.bucketSize === undefined ? 50 : is.integer(where, 'bucketSize', o.bucketSize, 1);
    const sortByLength = o.sortByLength === undefined ? true : is.boolean(where, 'sortByLength', o.sortByLength);
    const { maxLength, fixed } = lengthArgs(where, o.maxLength, o.padding);
    const padId = o.padId === undefined ? 0 : is.integer(where, 'padId', o.padId, 0);
    const n = sequences.length;
    const offsets = new Int32Array(n + 1);
    const lens = new Int32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const s = sequences[i];
      if (s === null || typeof s !== 'object' || typeof s.length !== 'number') throw is.invalidType(where, `sequences[${i}]`, 'an array of ids', s);
      const len = Math.min(s.length, maxLength);
      offsets[i] = total;
      lens[i] = Math.max(1, len);
      total += len;
    }
    offsets[n] = total;
    super(where, new Sampler(where, n, o, 32, { lengths: lens, bucketSize: bucket ? bucketSize : 0, sortByLength }));
    this.fixed = fixed;
    this.T = maxLength;
    this.padId = padId;
    this.device = o.device ?? 'cpu';
    this.offsets = offsets;
    this.lens = lens;
    this.ids = new Int32Array(total);
    for (let i = 0; i < n; i++) {
      const s = sequences[i];
      const off = offsets[i];
      const len = offsets[i + 1] - off;
      for (let j = 0; j < len; j++) {
        const v = s[j];
        if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw is.invalidType(where, `sequences[${i}][${j}]`, 'a non-negative int32 id', v);
        this.ids[off + j] = v;
      }
    }
    this.labelData = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = labels[i];
      if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) throw is.invalidType(where, `labels[${i}]`, 'a non-negative integer class id', v);
      this.labelData[i] = v;
    }
  }

  /** Batches from token lists: each is encoded with the vocabulary. */
  static fromTokens(
    tokensList: readonly (readonly string[])[],
    labels: ArrayLike<number>,
    vocab: Vocabulary,
    options?: TextBatchesOptions,
  ): TextBatches {
    if (!(vocab instanceof Vocabulary)) throw is.invalidType('TextBatches.fromTokens', 'vocab', 'a Vocabulary', vocab);
    if (!is.isArray(tokensList)) throw is.invalidType('TextBatches.fromTokens', 'tokensList', 'an array of token arrays', tokensList);
    return new TextBatches(tokensList.map((t) => vocab.encode(t)), labels, options);
  }

  /** Each example's length after cutting to maxLength (at least 1). */
  get lengths(): Int32Array {
    return this.lens.slice();
  }

  /** The padded width of a batch. */
  private width(idx: Int32Array): number {
    if (this.fixed) return this.T;
    let T = 1;
    for (let k = 0; k < idx.length; k++) T = Math.max(T, this.lens[idx[k]]);
    return T;
  }

  /** The fraction of padding among the token slots of epoch `epoch` (0 = none). */
  paddingFraction(epoch = 1): number {
    let slots = 0;
    let real = 0;
    for (const idx of this.plan(epoch)) {
      slots += this.width(idx) * idx.length;
      for (let k = 0; k < idx.length; k++) real += this.lens[idx[k]];
    }
    return slots === 0 ? 0 : 1 - real / slots;
  }

  /** The batch of these example indices, in this order: padded tokens, lengths and labels. */
  batch(indices: Int32Array): TextBatch {
    const T = this.width(indices);
    const B = indices.length;
    const { ids, offsets } = this;
    for (let k = 0; k < B; k++) {
      if (!(indices[k] >= 0 && indices[k] < this.lens.length)) throw is.invalidRange('TextBatches.batch', `indices[${k}]`, `in [0, ${this.lens.length})`, indices[k]);
    }
    const { tokens, lengths } = fillPadded(
      T,
      B,
      (r) => ({ ids, start: offsets[indices[r]], length: offsets[indices[r] + 1] - offsets[indices[r]] }),
      this.padId,
    );
    const labels = new BigInt64Array(B);
    for (let k = 0; k < B; k++) labels[k] = BigInt(this.labelData[indices[k]]);
    const tt = tensor(tokens, { shape: [B, T], device: this.device });
    const lt = tensor(lengths, { shape: [B], device: this.device });
    const yt = tensor(labels, { shape: [B], device: this.device });
    return { tokens: tt, lengths: lt, labels: yt, indices, inputs: [tt, lt], target: yt };
  }
}
