// Errors of the data pipeline. A malformed input is reported as `file:line: reason`
// (or `file: reason` when no line applies), so an editor or a terminal can jump to it.

/** A malformed data file: a bad CSV row, an invalid JSON line, a truncated IDX file. */
export class DataFormatError extends Error {
  /** The file at fault. */
  readonly file: string;
  /** The 1-based line (text formats) or record number, when one applies. */
  readonly line: number | undefined;
  /** The reason, without the location. */
  readonly reason: string;
  constructor(file: string, line: number | undefined, reason: string) {
    super(line === undefined ? `${file}: ${reason}` : `${file}:${line}: ${reason}`);
    this.name = 'DataFormatError';
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

/** An error for a file that cannot be opened or read, naming the function and the file. */
export function readError(where: string, file: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  const what = e && e.code === 'ENOENT' ? 'no such file' : e && e.code === 'EISDIR' ? 'is a directory' : e && e.message ? e.message : String(err);
  const out = new Error(`${where}: cannot read ${file}: ${what}`);
  (out as NodeJS.ErrnoException).code = e?.code;
  return out;
}
