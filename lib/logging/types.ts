// The logger interface of the training loop, and the event check all loggers share.
import * as is from '../core/is';

/** A training event for loggers. */
export interface LogEvent {
  kind: 'batch' | 'epoch' | 'run-start' | 'run-end';
  /** The trainer's global step after the event. */
  step: number;
  /** The epoch, from 1 (0 before the first epoch). */
  epoch: number;
  /** The batch within the epoch, from 1 (batch events). */
  batch?: number;
  /** The number of batches in the epoch, where known. */
  batches?: number;
  /** Scalars: `loss`, `adv_loss_0`, ... for batches; `train/loss`, `val/accuracy`, ... for epochs. */
  values: Record<string, number>;
  /** Milliseconds since the run started. */
  time: number;
  message?: string;
}

/** Receives training events (progress bars, JSONL, TensorBoard). */
export interface Logger {
  log(e: LogEvent): void;
  close(): Promise<void>;
}

export const EVENT_KINDS = ['batch', 'epoch', 'run-start', 'run-end'] as const;

/** Checks an event's fields; errors name `where` and the field. Returns the event. */
export function checkEvent(where: string, e: unknown): LogEvent {
  if (!is.isPlainObject(e)) throw is.invalidType(where, 'event', 'an object', e);
  is.oneOf(where, 'event.kind', e.kind, EVENT_KINDS);
  is.integer(where, 'event.step', e.step, 0);
  is.integer(where, 'event.epoch', e.epoch, 0);
  if (e.batch !== undefined) is.integer(where, 'event.batch', e.batch, 0);
  if (e.batches !== undefined) is.integer(where, 'event.batches', e.batches, 0);
  is.finite(where, 'event.time', e.time);
  if (!is.isPlainObject(e.values)) throw is.invalidType(where, 'event.values', 'an object of numbers', e.values);
  for (const [key, v] of Object.entries(e.values)) {
    // NaN is a legal value here (a diverged loss); only the kind is checked.
    if (typeof v !== 'number') throw is.invalidType(where, `event.values['${key}']`, 'a number', v);
  }
  if (e.message !== undefined && typeof e.message !== 'string') throw is.invalidType(where, 'event.message', 'a string', e.message);
  return e as unknown as LogEvent;
}

/** Checks that `value` is a Logger (an object with log and close functions). */
export function checkLogger(where: string, name: string, value: unknown): Logger {
  if (typeof value !== 'object' || value === null || typeof (value as Logger).log !== 'function' || typeof (value as Logger).close !== 'function') {
    throw is.invalidType(where, name, 'a logger (an object with log(event) and close())', value);
  }
  return value as Logger;
}
