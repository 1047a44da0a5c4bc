// Training loggers: a progress display, JSON Lines, TensorBoard event files, and a fan-out.
import * as is from '../core/is';
import { checkLogger, LogEvent, Logger } from './types';

export type { LogEvent, Logger } from './types';
export type { ProgressOptions, ProgressStream } from './progress';
export { ProgressLogger } from './progress';
export { JsonlLogger } from './jsonl';
export type { HParamsExperiment, HParamsSession, HParamValue, TensorBoardOptions } from './tensorboard';
export { HPARAMS_TAGS, TensorBoardLogger, writeHParamsExperiment, writeHParamsSession } from './tensorboard';

/**
 * Sends every event to each of `loggers`, in order. A logger that throws does not keep
 * the event from the others; the first error is rethrown after all have been called.
 * close() closes all of them and rejects with the first failure after all have settled.
 */
export class MultiLogger implements Logger {
  /** The loggers each event goes to, in order. */
  readonly loggers: readonly Logger[];

  constructor(loggers: Logger[]) {
    const where = 'MultiLogger';
    if (!Array.isArray(loggers)) throw is.invalidType(where, 'loggers', 'an array of loggers', loggers);
    this.loggers = loggers.map((l, k) => checkLogger(where, `loggers[${k}]`, l));
  }

  log(e: LogEvent): void {
    let first: unknown;
    let failed = false;
    for (const l of this.loggers) {
      try {
        l.log(e);
      } catch (err) {
        if (!failed) first = err;
        failed = true;
      }
    }
    if (failed) throw first;
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled(this.loggers.map((l) => Promise.resolve().then(() => l.close())));
    const bad = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (bad) throw bad.reason;
  }
}
