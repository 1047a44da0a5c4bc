// CSV/TSV records read as a stream with csv-parse (RFC 4180: quoted fields, "" escapes,
// delimiters and line breaks inside quotes), after the shared input rules of io.ts (gzip
// by magic bytes, one byte-order mark dropped). Records end at CRLF, LF or a lone CR and
// blank lines are skipped. Each record carries the line it starts on and, when it is
// malformed, why.

import { CsvError, Info, parse } from 'csv-parse';
import { Readable } from 'stream';
import { DataFormatError } from './errors';
import { textStream } from './io';

/** One parsed record. */
export interface CsvRecord {
  /** The fields, unquoted and unescaped. */
  fields: string[];
  /** 1-based line the record starts on. */
  line: number;
  /** Why the record is malformed, or null. */
  error: string | null;
}

/** Options of {@link readCsvRecords}. */
export interface CsvParserOptions {
  /** The field delimiter: one character. Default ','. */
  delimiter?: string;
  /** Whether '"' quotes fields. Default true. */
  quoting?: boolean;
  /**
   * Longest record, in bytes, before reading stops with an error (a missing closing quote
   * would otherwise read the rest of the file as one field). Default 2^24.
   */
  maxFieldLength?: number;
}

const LINE_BREAK = /\r\n|\r|\n/g;

/** Line breaks inside a field (only a quoted field holds any), counted as csv-parse's record delimiters are. */
function lineBreaks(field: string): number {
  if (field.indexOf('\n') < 0 && field.indexOf('\r') < 0) return 0;
  return field.match(LINE_BREAK)!.length;
}

function checkOptions(options: CsvParserOptions): { delimiter: string; quoting: boolean; max: number } {
  const d = options.delimiter ?? ',';
  if (typeof d !== 'string' || d.length !== 1 || d === '"' || d === '\n' || d === '\r') {
    throw new TypeError(`readCsvRecords: delimiter must be one character other than '"', CR and LF, got ${JSON.stringify(d)}`);
  }
  const max = options.maxFieldLength ?? 1 << 24;
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`readCsvRecords: maxFieldLength must be a positive integer, got ${String(max)}`);
  return { delimiter: d, quoting: options.quoting !== false, max };
}

/**
 * The records of CSV text from a stream of strings; `file` names it in errors. Exported
 * for tests, which feed it text in chosen chunks.
 *
 * Line numbers are counted here rather than taken from csv-parse's `info.lines`, which
 * counts a CRLF inside a quoted field as two lines: a record starts on the line after the
 * previous record's last one, plus the blank lines csv-parse skipped before it.
 *
 * @internal
 */
export async function* parseCsvStream(source: Readable, file: string, options: CsvParserOptions = {}): AsyncGenerator<CsvRecord> {
  const o = checkOptions(options);
  // csv-parse's errors, in input order, with the number of records emitted before each.
  // Reporting them through on_skip, not as stream errors, keeps the records read before
  // an error (a stream error would drop those still buffered).
  const errors: (CsvError & Partial<Info>)[] = [];
  const parser = parse({
    delimiter: o.delimiter,
    quote: o.quoting ? '"' : false,
    record_delimiter: ['\r\n', '\n', '\r'],
    skip_empty_lines: true,
    // The field count is checked by the caller, per row, so a bad row can be skipped.
    relax_column_count: true,
    // A quote inside an unquoted field is an ordinary character (5 "inch" screen).
    relax_quotes: true,
    max_record_size: o.max,
    info: true,
    skip_records_with_error: true,
    on_skip: (err) => {
      if (!err) return;
      errors.push(err);
      if (err.code !== 'CSV_QUOTE_NOT_CLOSED') {
        // Fatal: read no further (a runaway field would otherwise go on to the end of the file).
        source.unpipe(parser);
        source.destroy();
        parser.end();
      }
    },
  });
  source.on('error', (e) => parser.destroy(e)); // read errors reach the loop below through the parser
  source.pipe(parser);
  let used = 0; // lines taken by the records so far, their line ends included
  let count = 0;
  // The error that comes before record number `count`, as a record, or a thrown error.
  const pending = (): CsvRecord | null => {
    const e = errors[0];
    if (e === undefined || (e.records ?? 0) > count) return null;
    errors.shift();
    const line = 1 + used + (e.empty_lines ?? 0);
    if (e.code === 'CSV_QUOTE_NOT_CLOSED') return { fields: [], line, error: 'unterminated quoted field at the end of the file' };
    if (e.code === 'CSV_MAX_RECORD_SIZE') throw new DataFormatError(file, line, `a record grew past ${o.max} bytes; is a closing quote missing?`);
    throw new DataFormatError(file, line, e.message);
  };
  try {
    for await (const out of parser as AsyncIterable<{ record: string[]; info: Info }>) {
      for (let bad = pending(); bad !== null; bad = pending()) yield bad;
      const { record, info } = out;
      const line = 1 + used + info.empty_lines;
      let breaks = 0;
      for (const f of record) breaks += lineBreaks(f);
      used += breaks + 1;
      count++;
      yield { fields: record, line, error: null };
    }
    for (let bad = pending(); bad !== null; bad = pending()) yield bad;
    // An error csv-parse would report after the last record (none known of) is not lost.
    if (errors.length > 0) throw new DataFormatError(file, undefined, errors[0].message);
  } finally {
    source.destroy();
    parser.destroy();
  }
}

/**
 * The records of a CSV/TSV file (gzip data decompressed, whatever its name), read as a
 * stream. Errors opening or reading the file name it; records stay unchecked (see
 * {@link CsvRecord.error}).
 */
export function readCsvRecords(where: string, file: string, options: CsvParserOptions = {}): AsyncGenerator<CsvRecord> {
  checkOptions(options);
  return parseCsvStream(textStream(where, file), file, options);
}
