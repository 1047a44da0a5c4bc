// JSON Lines: one JSON object per event per line, appended to a file.
import * as fs from 'fs';
import * as path from 'path';

import * as is from '../core/is';
import { AppendFile } from './file';
import { checkEvent, LogEvent, Logger } from './types';

/** JSON has no NaN or Infinity: such values are written as the strings "NaN", "Infinity", "-Infinity". */
function jsonValue(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

/**
 * Appends one JSON object per event to `file` (parent directories are created):
 * `{"kind","step","epoch","batch"?,"batches"?,"time","values","message"?}`. Numbers are
 * written exactly (shortest round-trip form); non-finite values as "NaN"/"Infinity"/"-Infinity".
 * Writes are streamed; close() flushes and closes the file.
 */
export class JsonlLogger implements Logger {
  readonly path: string;
  private readonly file: AppendFile;

  constructor(file: string) {
    if (typeof file !== 'string' || file === '') throw is.invalidType('JsonlLogger', 'path', 'a non-empty string', file);
    this.path = path.resolve(file);
    fs.mkdirSync(path.dirname(this.path), { recursive: true });
    // Opened synchronously so a bad path fails here rather than on a later write.
    const fd = fs.openSync(this.path, 'a');
    this.file = new AppendFile(this.path, fd);
  }

  log(e: LogEvent): void {
    const where = 'JsonlLogger.log';
    if (this.file.isClosed) throw new Error(`${where}: the logger is closed (${this.path})`);
    checkEvent(where, e);
    const values: Record<string, number | string> = {};
    for (const [k, v] of Object.entries(e.values)) values[k] = jsonValue(v);
    const line: Record<string, unknown> = { kind: e.kind, step: e.step, epoch: e.epoch };
    if (e.batch !== undefined) line.batch = e.batch;
    if (e.batches !== undefined) line.batches = e.batches;
    line.time = e.time;
    line.values = values;
    if (e.message !== undefined) line.message = e.message;
    this.file.write(JSON.stringify(line) + '\n');
  }

  /** Flushes and closes the file; rejects if a write failed. Calling it again returns the same promise. */
  close(): Promise<void> {
    return this.file.close();
  }
}
