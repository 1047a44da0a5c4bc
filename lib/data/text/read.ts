// Reading labelled text files (CSV, TSV, JSONL; gzip data decompressed whatever the name)
// as streams of records, with `file:line: reason` errors or skip-and-count for bad rows.

import * as path from 'path';
import * as is from '../../core/is';
import { readCsvRecords } from '../csv';
import { DataFormatError } from '../errors';
import { readLines } from '../io';

/** File formats of {@link readTextDataset}. */
export type TextFormat = 'csv' | 'tsv' | 'jsonl';
const FORMATS: readonly TextFormat[] = ['csv', 'tsv', 'jsonl'];

/** Options of {@link readTextDataset} and {@link streamTextRecords}. */
export interface TextDatasetOptions {
  /** The format; by default from the extension (.csv, .tsv/.tab, .jsonl/.ndjson, each optionally followed by .gz). Gzip data is recognised by its content, whatever the name. */
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
  /** The text field, as written. */
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
  /** The 1-based line the row starts on. */
  line: number;
  /** What is wrong with it: the `reason` of the {@link DataFormatError} that onBadRow: 'fail' would have thrown. */
  reason: string;
}

/** The result of {@link readTextDataset}. */
export interface TextDataset {
  /** The texts, in file order. */
  texts: string[];
  /** Label ids, indices into labelNames. */
  labels: Int32Array;
  /** The label set: the fixed `labels` option, else the labels found, sorted (see {@link sortLabelNames}). */
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
      if (o.header && r.error) throw new DataFormatError(file, r.line, `malformed header: ${r.error}`);
      if (r.error) {
        // A malformed first record sets no field count (its fields are unknown).
        yield { ok: false, line: r.line, reason: r.error };
        continue;
      }
      expected = r.fields.length;
      if (o.header) {
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
