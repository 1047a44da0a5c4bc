// A streaming RFC 4180 CSV/TSV parser: a state machine fed chunk by chunk, so a file is
// never held as one string. It handles quoted fields, "" escapes, delimiters and line
// breaks inside quotes, CRLF, LF and lone CR line ends, and a leading byte-order mark.
// Each record carries the line it starts on and, when it is malformed, why.

import { DataFormatError } from './errors';
import { readChunks } from './io';

/** One parsed record. */
export interface CsvRecord {
  /** The fields, unquoted and unescaped. */
  fields: string[];
  /** 1-based line the record starts on. */
  line: number;
  /** Why the record is malformed, or null. */
  error: string | null;
}

/** Options of the parser. */
export interface CsvParserOptions {
  /** The field delimiter: one character. Default ','. */
  delimiter?: string;
  /** Whether '"' quotes fields. Default true. */
  quoting?: boolean;
  /** Longest quoted field, in characters, before the parser gives up (a missing closing quote). Default 2^24. */
  maxFieldLength?: number;
}

const LF = 10;
const CR = 13;
const QUOTE = 34;

const START = 0; // at the start of a field
const UNQUOTED = 1; // inside an unquoted field
const QUOTED = 2; // inside a quoted field
const CLOSED = 3; // just after a quote inside a quoted field: an escape or the closing quote

/**
 * The CSV state machine. Feed it with {@link push} and finish with {@link end}; both
 * append the completed records to `out`. Blank lines are skipped.
 */
export class CsvParser {
  private readonly delimiter: number;
  private readonly quote: number;
  private readonly maxFieldLength: number;
  private state = START;
  private fields: string[] = [];
  private buf = '';
  private line = 1;
  private recordLine = 1;
  private quoteLine = 1;
  private prevCR = false;
  private error: string | null = null;
  private first = true;

  constructor(options: CsvParserOptions = {}) {
    const d = options.delimiter ?? ',';
    if (typeof d !== 'string' || d.length !== 1 || d === '"' || d === '\n' || d === '\r') {
      throw new TypeError(`CsvParser: delimiter must be one character other than '"', CR and LF, got ${JSON.stringify(d)}`);
    }
    this.delimiter = d.charCodeAt(0);
    this.quote = options.quoting === false ? -1 : QUOTE;
    this.maxFieldLength = options.maxFieldLength ?? 1 << 24;
  }

  /** The line the parser has reached (1-based). */
  get currentLine(): number {
    return this.line;
  }

  private emit(out: CsvRecord[]): void {
    out.push({ fields: this.fields, line: this.recordLine, error: this.error });
    this.fields = [];
    this.error = null;
  }

  /** Parses one chunk of text. Throws a plain Error when a quoted field grows past maxFieldLength. */
  push(chunk: string, out: CsvRecord[]): void {
    let i = 0;
    if (this.first) {
      this.first = false;
      if (chunk.charCodeAt(0) === 0xfeff) i = 1; // byte-order mark
    }
    const delimiter = this.delimiter;
    const quote = this.quote;
    const n = chunk.length;
    let segStart = i;
    let state = this.state;
    for (; i < n; i++) {
      const c = chunk.charCodeAt(i);
      switch (state) {
        case START:
          if (c === LF || c === CR) {
            if (this.fields.length > 0) {
              this.fields.push('');
              this.emit(out);
            } // else: a blank line, or the LF of a CRLF that ended a record
          } else {
            if (this.fields.length === 0) this.recordLine = this.line;
            if (c === quote) {
              state = QUOTED;
              segStart = i + 1;
              this.quoteLine = this.line;
            } else if (c === delimiter) {
              this.fields.push('');
            } else {
              state = UNQUOTED;
              segStart = i;
            }
          }
          break;
        case UNQUOTED:
          if (c === delimiter) {
            this.fields.push(this.buf + chunk.slice(segStart, i));
            this.buf = '';
            state = START;
          } else if (c === LF || c === CR) {
            this.fields.push(this.buf + chunk.slice(segStart, i));
            this.buf = '';
            this.emit(out);
            state = START;
          }
          break;
        case QUOTED:
          if (c === quote) {
            this.buf += chunk.slice(segStart, i);
            state = CLOSED;
          }
          break;
        case CLOSED:
          if (c === quote) {
            this.buf += '"';
            segStart = i + 1;
            state = QUOTED;
          } else if (c === delimiter) {
            this.fields.push(this.buf);
            this.buf = '';
            state = START;
          } else if (c === LF || c === CR) {
            this.fields.push(this.buf);
            this.buf = '';
            this.emit(out);
            state = START;
          } else {
            this.error ??= `unexpected ${JSON.stringify(chunk[i])} after the closing quote of field ${this.fields.length + 1}`;
            state = UNQUOTED;
            segStart = i;
          }
          break;
      }
      if (c === LF) {
        if (!this.prevCR) this.line++;
        this.prevCR = false;
      } else if (c === CR) {
        this.line++;
        this.prevCR = true;
      } else {
        this.prevCR = false;
      }
    }
    if (state === UNQUOTED || state === QUOTED) this.buf += chunk.slice(segStart, n);
    this.state = state;
    if (state === QUOTED && this.buf.length > this.maxFieldLength) {
      throw Object.assign(
        new Error(`a quoted field grew past ${this.maxFieldLength} characters; is its closing quote missing?`),
        { line: this.quoteLine },
      );
    }
  }

  /** Finishes the input: flushes the last record (without a final line break). */
  end(out: CsvRecord[]): void {
    switch (this.state) {
      case QUOTED:
        this.fields.push(this.buf);
        this.error ??= `unterminated quoted field (opened at line ${this.quoteLine}) at the end of the file`;
        this.emit(out);
        break;
      case UNQUOTED:
      case CLOSED:
        this.fields.push(this.buf);
        this.emit(out);
        break;
      case START:
        if (this.fields.length > 0) {
          this.fields.push('');
          this.emit(out);
        }
        break;
    }
    this.buf = '';
    this.state = START;
  }
}

/**
 * The records of a CSV/TSV file (gzip-compressed when its name ends in .gz), read as a
 * stream. Errors opening or reading the file name it; records stay unchecked (see
 * {@link CsvRecord.error}).
 */
export async function* readCsvRecords(where: string, file: string, options: CsvParserOptions = {}): AsyncGenerator<CsvRecord> {
  const parser = new CsvParser(options);
  const out: CsvRecord[] = [];
  for await (const chunk of readChunks(where, file)) {
    try {
      parser.push(chunk, out);
    } catch (e) {
      throw new DataFormatError(file, (e as { line?: number }).line, (e as Error).message);
    }
    for (const r of out) yield r;
    out.length = 0;
  }
  parser.end(out);
  for (const r of out) yield r;
}
