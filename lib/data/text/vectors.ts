// Pretrained word vectors (GloVe or word2vec text format) for a vocabulary.

import * as is from '../../core/is';
import { Device, Tensor, tensor } from '../../core/tensor';
import { DataFormatError } from '../errors';
import { readLines } from '../io';
import { mixSeed, mulberry32, normalSampler, seedArg } from '../random';
import { Vocabulary } from './vocabulary';

/** Options of {@link loadWordVectors}. */
export interface WordVectorOptions {
  /** The vector size; checked against the file. By default from the file. */
  dim?: number;
  /** Seed of the random rows for words not in the file. Default 0. */
  seed?: number;
  /** Standard deviation of the random rows. Default 0.1. */
  scale?: number;
  /** Lowercase the file's words before matching (the first occurrence wins). Default false. */
  lowercase?: boolean;
  /** Device of the tensor. Default 'cpu'. */
  device?: Device;
}

/** The result of {@link loadWordVectors}. */
export interface WordVectors {
  /** float32 [vocab.size, dim]: rows from the file, random rows for the rest, pad row zero. */
  vectors: Tensor;
  /** The length of each vector, as in the file. */
  dim: number;
  /** Vocabulary tokens found in the file. */
  found: number;
  /** Vocabulary tokens not in the file (pad not counted). */
  missing: number;
  /** 1 for each vocabulary id whose row came from the file. */
  foundMask: Uint8Array;
}

const NUMBER_TOKEN = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?(nan|inf|infinity)$/i;

/**
 * Reads word vectors in GloVe text format (`word v1 v2 ...` per line) or word2vec text
 * format (the same after a first line `count dim`), gzip data decompressed whatever the file is called, as a
 * stream, keeping only the vocabulary's words. Ragged lines and non-numeric values are
 * errors `file:line: reason`. Words with spaces (GloVe 840B) are handled.
 */
export async function loadWordVectors(file: string, vocab: Vocabulary, options?: WordVectorOptions): Promise<WordVectors> {
  const where = 'loadWordVectors';
  if (typeof file !== 'string' || file === '') throw is.invalidType(where, 'path', 'a file path', file);
  if (!(vocab instanceof Vocabulary)) throw is.invalidType(where, 'vocab', 'a Vocabulary', vocab);
  const o = is.options<WordVectorOptions>(where, options, ['dim', 'seed', 'scale', 'lowercase', 'device']);
  let dim = o.dim === undefined ? 0 : is.integer(where, 'dim', o.dim, 1);
  const seed = seedArg(where, o.seed);
  const scale = o.scale === undefined ? 0.1 : is.finite(where, 'scale', o.scale);
  const lowercase = o.lowercase === undefined ? false : is.boolean(where, 'lowercase', o.lowercase);
  const V = vocab.size;
  const foundMask = new Uint8Array(V);
  let data: Float32Array | null = dim > 0 ? new Float32Array(V * dim) : null;
  let headerCount = -1;
  let vectorLines = 0;
  let first = true;
  let found = 0;
  for await (const { line, text } of readLines(where, file)) {
    const body = text.trimEnd();
    if (body === '') continue;
    const parts = body.split(' ');
    if (first) {
      first = false;
      if (parts.length === 2 && /^\d+$/.test(parts[0]) && /^\d+$/.test(parts[1])) {
        headerCount = Number(parts[0]);
        const d = Number(parts[1]);
        if (d < 1) throw new DataFormatError(file, line, `the word2vec header gives dimension ${d}`);
        if (dim > 0 && d !== dim) throw new DataFormatError(file, line, `the word2vec header gives dimension ${d}, but dim ${dim} was asked for`);
        dim = d;
        data ??= new Float32Array(V * dim);
        continue;
      }
      if (dim === 0) {
        dim = parts.length - 1;
        if (dim < 1) throw new DataFormatError(file, line, 'expected a word followed by its vector values');
        data = new Float32Array(V * dim);
      }
    }
    vectorLines++;
    const wordParts = parts.length - dim;
    if (wordParts < 1) throw new DataFormatError(file, line, `expected ${dim} values after the word, got ${parts.length - 1}`);
    if (wordParts > 1 && NUMBER_TOKEN.test(parts[1])) {
      throw new DataFormatError(file, line, `expected ${dim} values after the word, got ${parts.length - 1}`);
    }
    let word = wordParts === 1 ? parts[0] : parts.slice(0, wordParts).join(' ');
    if (lowercase) word = word.toLowerCase();
    const id = vocab.indexOf(word);
    if (id < 0 || foundMask[id]) continue;
    const base = id * dim;
    for (let k = 0; k < dim; k++) {
      const s = parts[wordParts + k];
      const v = Number(s);
      if (s === '' || (Number.isNaN(v) && !/^[-+]?nan$/i.test(s))) {
        throw new DataFormatError(file, line, `value ${k + 1} of '${word}' is not a number: ${JSON.stringify(s)}`);
      }
      data![base + k] = v;
    }
    foundMask[id] = 1;
    found++;
  }
  if (dim === 0 || data === null || vectorLines === 0) throw new DataFormatError(file, undefined, 'no word vectors in the file');
  if (headerCount >= 0 && vectorLines !== headerCount) {
    throw new DataFormatError(file, undefined, `the word2vec header announces ${headerCount} vectors, but the file holds ${vectorLines}`);
  }
  const normal = normalSampler(mulberry32(mixSeed(seed, 0x77f1)));
  let missing = 0;
  for (let id = 0; id < V; id++) {
    if (foundMask[id]) continue;
    if (id === Vocabulary.PAD_ID) {
      data.fill(0, 0, dim);
      continue;
    }
    missing++;
    const base = id * dim;
    for (let k = 0; k < dim; k++) data[base + k] = normal() * scale;
  }
  return { vectors: tensor(data, { shape: [V, dim], device: o.device ?? 'cpu' }), dim, found, missing, foundMask };
}
