// Encoding token lists into padded int64 id tensors: the padding shared by encodeTexts and
// the collation of TextBatches.

import * as os from 'os';
import * as is from '../../core/is';
import { Device, Tensor, tensor } from '../../core/tensor';
import { Vocabulary } from './vocabulary';

const LITTLE_ENDIAN = os.endianness() === 'LE';

/**
 * Fills a [rows.length, T] int64 buffer in one pass. Row r holds seq[r] (cut to T) and
 * pad elsewhere. On little-endian machines non-negative int32 ids are written through an
 * Int32Array view of the same memory, with no BigInt per element.
 */
/** @internal */
export function fillPadded(
  T: number,
  rows: number,
  get: (r: number) => { ids: ArrayLike<number>; start: number; length: number },
  padId: number,
): { tokens: BigInt64Array; lengths: BigInt64Array } {
  const tokens = new BigInt64Array(rows * T);
  const lengths = new BigInt64Array(rows);
  const view = LITTLE_ENDIAN && padId >= 0 ? new Int32Array(tokens.buffer) : null;
  if (padId !== 0) tokens.fill(BigInt(padId));
  for (let r = 0; r < rows; r++) {
    const { ids, start, length } = get(r);
    const len = Math.min(length, T);
    const base = r * T;
    if (view) for (let j = 0; j < len; j++) view[2 * (base + j)] = ids[start + j];
    else for (let j = 0; j < len; j++) tokens[base + j] = BigInt(ids[start + j]);
    lengths[r] = BigInt(Math.max(1, len));
  }
  return { tokens, lengths };
}

/** Options of {@link encodeTexts}. */
export interface EncodeOptions {
  /** Longest sequence; longer ones are cut. Required for 'fixed' padding. */
  maxLength?: number;
  /** 'dynamic' (default): pad to the longest sequence (≤ maxLength); 'fixed': always pad to maxLength. */
  padding?: 'fixed' | 'dynamic';
  /** Device of the tensors. Default 'cpu'. */
  device?: Device;
}

/** @internal */
export function lengthArgs(where: string, maxLength: unknown, padding: unknown): { maxLength: number; fixed: boolean } {
  const max = maxLength === undefined ? Infinity : is.integer(where, 'maxLength', maxLength, 1);
  const fixed = (padding === undefined ? 'dynamic' : is.oneOf(where, 'padding', padding, ['fixed', 'dynamic'] as const)) === 'fixed';
  if (fixed && max === Infinity) throw new TypeError(`${where}: padding 'fixed' needs maxLength`);
  return { maxLength: max, fixed };
}

/**
 * Encodes token lists into padded ids: tokens int64 [N, T] (pad id 0) and lengths int64
 * [N]. An empty token list becomes one pad token with length 1 (packed sequences need
 * lengths ≥ 1).
 */
export function encodeTexts(
  tokensList: readonly (readonly string[])[],
  vocab: Vocabulary,
  options?: EncodeOptions,
): {
  /** Token ids, int64 [N, T]. */
  tokens: Tensor;
  /** Sequence lengths, int64 [N], each ≥ 1. */
  lengths: Tensor;
} {
  const where = 'encodeTexts';
  if (!Array.isArray(tokensList)) throw is.invalidType(where, 'tokensList', 'an array of token arrays', tokensList);
  if (!(vocab instanceof Vocabulary)) throw is.invalidType(where, 'vocab', 'a Vocabulary', vocab);
  const o = is.options<EncodeOptions>(where, options, ['maxLength', 'padding', 'device']);
  const { maxLength, fixed } = lengthArgs(where, o.maxLength, o.padding);
  const encoded = tokensList.map((t, k) => {
    if (!Array.isArray(t)) throw is.invalidType(where, `tokensList[${k}]`, 'an array of strings', t);
    return vocab.encode(t);
  });
  let T = fixed ? maxLength : 1;
  if (!fixed) for (const e of encoded) T = Math.max(T, Math.min(e.length, maxLength));
  const { tokens, lengths } = fillPadded(T, encoded.length, (r) => ({ ids: encoded[r], start: 0, length: encoded[r].length }), Vocabulary.PAD_ID);
  const device = o.device ?? 'cpu';
  return {
    tokens: tensor(tokens, { shape: [encoded.length, T], device }),
    lengths: tensor(lengths, { shape: [encoded.length], device }),
  };
}
