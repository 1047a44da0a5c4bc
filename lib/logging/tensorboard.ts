// TensorBoard event files, written directly: TFRecord framing of tensorflow.Event
// protobufs, one scalar per event, as torch.utils.tensorboard's add_scalar writes them.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as is from '../core/is';
import {
  experimentContent,
  fileVersionEvent,
  HParamValue,
  hparamInfo,
  metricInfo,
  pluginEvent,
  scalarEvent,
  sessionEndContent,
  sessionStartContent,
  tfrecord,
} from './tfrecord';
import { AppendFile } from './file';
import { checkEvent, LogEvent, Logger } from './types';

/** Options of {@link TensorBoardLogger}. */
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

  /** @internal Appends one encoded tensorflow.Event. */
  writeEvent(event: Uint8Array): void {
    if (this.file.isClosed) throw new Error(`TensorBoardLogger: the logger is closed (${this.path})`);
    this.file.write(tfrecord(event));
  }
}

export type { HParamValue };

/** The tags of the hparams plugin's summaries (tensorboard/plugins/hparams/metadata.py). */
export const HPARAMS_TAGS = {
  /** The experiment summary ({@link writeHParamsExperiment}). */
  experiment: '_hparams_/experiment',
  /** A session's start: its hyperparameter values ({@link writeHParamsSession}). */
  sessionStart: '_hparams_/session_start_info',
  /** A session's end: its status ({@link writeHParamsSession}). */
  sessionEnd: '_hparams_/session_end_info',
} as const;

/** What TensorBoard's HParams tab lists: the hyperparameters and the metrics of an experiment. */
export interface HParamsExperiment {
  /** Each hyperparameter, its type taken from `values` (default: string), and the values it takes. */
  hparams: {
    /** The hyperparameter's name (a key of the sessions' `hparams`). */
    name: string;
    /** The values it takes, all of one type: strings and booleans become its listed domain; numbers only set the type (the range stays open). */
    values: HParamValue[];
  }[];
  /** Scalar tags shown as metrics (the tags the sessions' runs log: `val/accuracy`, ...). */
  metrics: {
    /** The scalar's tag. */
    tag: string;
    /** The subdirectory of a session's run whose events hold the tag. Default: the run's own. */
    group?: string;
    /** Which data the metric is measured on. */
    dataset?: 'training' | 'validation';
  }[];
  /** Seconds since the epoch (default: now). */
  timeCreated?: number;
}

/** One training session of an experiment: its hyperparameter values and how it ended. */
export interface HParamsSession {
  /** The session's value of each hyperparameter, by name. */
  hparams: Record<string, HParamValue>;
  /** Seconds since the epoch. */
  startTime: number;
  /** Seconds since the epoch. */
  endTime: number;
  /** How the session ended. Default `'success'`. */
  status?: 'success' | 'failure' | 'running' | 'unknown';
  /** Where the session's model is (its checkpoints). */
  modelUri?: string;
  /** Sessions with the same group name are one row (repeats of one setting with other seeds). */
  groupName?: string;
}

function checkHParamValue(where: string, name: string, v: unknown): HParamValue {
  if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v;
  throw is.invalidType(where, name, 'a string, a boolean or a finite number', v);
}

/**
 * Writes the hparams plugin's experiment summary (tag `_hparams_/experiment`) to a new
 * event file in `dir`, the TensorBoard log directory whose runs are the sessions.
 * Returns the file.
 */
export async function writeHParamsExperiment(dir: string, e: HParamsExperiment): Promise<string> {
  const where = 'writeHParamsExperiment';
  if (typeof e !== 'object' || e === null || !Array.isArray(e.hparams) || !Array.isArray(e.metrics)) {
    throw is.invalidType(where, 'experiment', 'an object with hparams and metrics arrays', e);
  }
  const infos = e.hparams.map((h, k) => {
    if (typeof h?.name !== 'string' || h.name === '') throw is.invalidType(where, `hparams[${k}].name`, 'a non-empty string', h?.name);
    const values = (h.values ?? []).map((v, j) => checkHParamValue(where, `hparams[${k}].values[${j}]`, v));
    const types = new Set(values.map((v) => typeof v));
    if (types.size > 1) throw is.invalidType(where, `hparams[${k}].values`, 'values of one type', h.values);
    const type = (values.length ? typeof values[0] : 'string') as 'string' | 'number' | 'boolean';
    // A numeric hyperparameter's domain is left open (its interval): TensorBoard filters it by range.
    return hparamInfo(h.name, type, type === 'number' ? undefined : values);
  });
  const metrics = e.metrics.map((m, k) => {
    if (typeof m?.tag !== 'string' || m.tag === '') throw is.invalidType(where, `metrics[${k}].tag`, 'a non-empty string', m?.tag);
    return metricInfo(m.tag, m.group ?? '', m.dataset);
  });
  const now = Date.now() / 1000;
  const tb = new TensorBoardLogger(dir);
  tb.writeEvent(pluginEvent(now, HPARAMS_TAGS.experiment, 'hparams', experimentContent(infos, metrics, e.timeCreated ?? now)));
  await tb.close();
  return tb.path;
}

/**
 * Writes one session's hparams summaries (`_hparams_/session_start_info` and
 * `_hparams_/session_end_info`) to a new event file in `dir`, the session's run (the
 * directory of its scalar events). Returns the file.
 */
export async function writeHParamsSession(dir: string, s: HParamsSession): Promise<string> {
  const where = 'writeHParamsSession';
  if (typeof s !== 'object' || s === null || typeof s.hparams !== 'object' || s.hparams === null) {
    throw is.invalidType(where, 'session', 'an object with hparams', s);
  }
  const hparams: Record<string, HParamValue> = {};
  for (const [k, v] of Object.entries(s.hparams)) hparams[k] = checkHParamValue(where, `hparams.${k}`, v);
  for (const key of ['startTime', 'endTime'] as const) {
    if (typeof s[key] !== 'number' || !Number.isFinite(s[key])) throw is.invalidType(where, key, 'a finite number of seconds', s[key]);
  }
  const tb = new TensorBoardLogger(dir);
  tb.writeEvent(pluginEvent(s.startTime, HPARAMS_TAGS.sessionStart, 'hparams', sessionStartContent(hparams, s.startTime, s.modelUri, s.groupName)));
  tb.writeEvent(pluginEvent(s.endTime, HPARAMS_TAGS.sessionEnd, 'hparams', sessionEndContent(s.status ?? 'success', s.endTime)));
  await tb.close();
  return tb.path;
}
