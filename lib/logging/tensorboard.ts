// TensorBoard event files, written directly: TFRecord framing of tensorflow.Event
// protobufs, one scalar per event, as torch.utils.tensorboard's add_scalar writes them.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as is from '../core/is';
import { fileVersionEvent, scalarEvent, tfrecord } from './tfrecord';
import { AppendFile } from './file';
import { checkEvent, LogEvent, Logger } from './types';

export interface TensorBoardOptions {
  /** A sub-directory of `dir` for this run (TensorBoard shows each sub-directory as a run). */
  runName?: string;
}

/**
 * The TensorBoard tag of a value: a key that already has a '/' (`train/loss`,
 * `val/accuracy`) is used as given; otherwise batch values go under `batch/`, epoch
 * values under `epoch/` and run-start/run-end values under `run/`.
 */
export function tensorBoardTag(kind: LogEvent['kind'], key: string): string {
  if (key.includes('/')) return key;
  const prefix = kind === 'batch' ? 'batch' : kind === 'epoch' ? 'epoch' : 'run';
  return `${prefix}/${key}`;
}

/**
 * Writes a TensorBoard event file `events.out.tfevents.<unix seconds>.<hostname>.dropattack`
 * in `dir` (or `dir/runName`), created if missing. Each value of each event becomes one
 * scalar at the event's step. Writes are streamed; close() flushes and closes the file.
 */
export class TensorBoardLogger implements Logger {
  /** The event file being written. */
  readonly path: string;
  private readonly file: AppendFile;

  constructor(dir: string, options?: TensorBoardOptions) {
    const where = 'TensorBoardLogger';
    if (typeof dir !== 'string' || dir === '') throw is.invalidType(where, 'dir', 'a non-empty string', dir);
    const o = is.options<TensorBoardOptions>(where, options, ['runName']);
    let target = dir;
    if (o.runName !== undefined) {
      if (typeof o.runName !== 'string' || o.runName === '') throw is.invalidType(where, 'runName', 'a non-empty string', o.runName);
      if (path.isAbsolute(o.runName) || o.runName.split(/[\\/]/).includes('..')) {
        throw is.invalidRange(where, 'runName', 'a relative path inside dir', o.runName);
      }
      target = path.join(dir, o.runName);
    }
    fs.mkdirSync(target, { recursive: true });
    const seconds = Math.floor(Date.now() / 1000);
    const host = os.hostname().replace(/[\\/]/g, '_') || 'localhost';
    // Two loggers started in the same second in the same directory get distinct files.
    let fd = -1;
    let file = '';
    for (let n = 0; fd < 0; n++) {
      file = path.join(target, `events.out.tfevents.${seconds}.${host}.dropattack${n ? `.${n}` : ''}`);
      try {
        fd = fs.openSync(file, 'wx');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n > 1000) throw err;
      }
    }
    this.path = file;
    this.file = new AppendFile(file, fd);
    this.file.write(tfrecord(fileVersionEvent(Date.now() / 1000)));
  }

  log(e: LogEvent): void {
    const where = 'TensorBoardLogger.log';
    if (this.file.isClosed) throw new Error(`${where}: the logger is closed (${this.path})`);
    checkEvent(where, e);
    const wallTime = Date.now() / 1000;
    const records = Object.entries(e.values).map(([key, v]) => tfrecord(scalarEvent(wallTime, e.step, [[tensorBoardTag(e.kind, key), v]])));
    if (records.length) this.file.write(records.length === 1 ? records[0] : Buffer.concat(records));
  }

  /** Flushes and closes the file; rejects if a write failed. Calling it again returns the same promise. */
  close(): Promise<void> {
    return this.file.close();
  }
}
