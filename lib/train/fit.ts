// The training loop: epochs, validation, metrics, checkpoints (atomic), early stopping,
// callbacks, loggers and exact resume. Each batch is one native call (Trainer.step).
import * as path from 'path';

import * as is from '../core/is';
import { tensor } from '../core/tensor';
import { StepResult, Trainer } from '../core/trainer';
import { Logger, LogEvent } from '../logging/types';
import { Schedule } from './schedule';
import { shardBatches } from './shard';
import { CHECKPOINT_VERSION, findLast, restoreCheckpoint, SavedState, writeCheckpoint } from './checkpoints';
import { defaultMetrics, evaluate, Metric } from './metrics';
import { BatchSource, EpochRecord, FitResult } from './types';

export type { Batch, BatchSource, EpochRecord, FitResult, Metrics } from './types';
export { evaluate };

/** Options of {@link fit}. */
export interface FitOptions {
  /** Epochs to train (the last epoch's number; a resumed run continues up to it). */
  epochs: number;
  /** The training batches of each epoch. */
  train: BatchSource;
  /** Batches evaluated after each epoch (the `val.*` metrics). */
  validation?: BatchSource;
  /** Learning rate per optimizer step. */
  schedule?: Schedule;
  /** Clip the gradient's global L2 norm to this value before each update. */
  clipGradNorm?: number;
  /** Micro-batches per optimizer step (gradient accumulation). Default 1. */
  accumulate?: number;
  /** Keep the best model by a metric, and the last state for resuming. */
  checkpoint?: {
    /** Directory of the checkpoints (`best` and `last` inside). */
    dir: string;
    /** Metric that picks the best model: `val.accuracy` (default with validation; else `train.loss`), `val.loss`, `val.macroF1` or `train.loss`. */
    monitor?: string;
    /** Whether smaller or larger is better; by default `min` for losses, `max` otherwise. */
    mode?: 'min' | 'max';
  };
  /** Stop when `monitor` has not improved by minDelta for `patience` epochs. */
  earlyStopping?: {
    /** The metric watched (as for `checkpoint.monitor`). */
    monitor: string;
    /** Epochs without improvement before stopping. */
    patience: number;
    /** The least change that counts as an improvement. Default 0. */
    minDelta?: number;
    /** Whether smaller or larger is better; by default `min` for losses, `max` otherwise. */
    mode?: 'min' | 'max';
  };
  /** Resume from a checkpoint directory's `last` state (model, optimizer, RNG, epoch, step). */
  resume?: string;
  /** Receive the run's events (progress bar, JSONL, TensorBoard). */
  loggers?: Logger[];
  /** Called after each batch's step, awaited before the next. */
  onBatchEnd?: (info: { epoch: number; batch: number; result: StepResult }) => void | Promise<void>;
  /** Called after each epoch (after validation and checkpoints), awaited before the next. */
  onEpochEnd?: (record: EpochRecord) => void | Promise<void>;
  /** Stops after the current batch when aborted; the last checkpoint stays intact. */
  signal?: AbortSignal;
  /**
   * The largest share of an epoch's batches whose step may fail (a non-finite loss or
   * gradient, so no update) before the run stops with a {@link TrainingError}. Default
   * 0.5; 1 disables the check. An epoch with no applied optimizer step always stops the run.
   */
  maxSkippedShare?: number;
  /** The validation metrics (default: evaluate()'s for the trainer's loss); fit's monitors name them `val.<name>`. */
  metrics?: Metric[];
}

/**
 * Training that cannot make progress: an epoch with no applied optimizer step, too many
 * failed (non-finite) steps, or a non-finite validation loss. The last checkpoint is left
 * as it was before the failing epoch.
 */
export class TrainingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingError';
  }
}

function metricValue(name: string, record: EpochRecord): number | undefined {
  switch (name) {
    case 'train.loss':
      return record.trainLoss;
    case 'val.loss':
      return record.validation?.loss;
    case 'val.accuracy':
      return record.validation?.accuracy;
    case 'val.macroF1':
      return record.validation?.macroF1;
    default:
      // Any other metric evaluate() measured, by its name.
      if (name.startsWith('val.') && name.length > 4) return record.validation?.values?.[name.slice(4)];
      throw new TypeError(`fit: unknown metric '${name}' (known: train.loss, val.loss, val.accuracy, val.macroF1, val.<metric name>)`);
  }
}

const defaultMode = (metric: string): 'min' | 'max' => (metric.endsWith('loss') ? 'min' : 'max');

/** How many batches a source holds: an array's length, or a declared `numBatches` (TextBatches/ImageBatches epochs). */
function batchCount(source: unknown): number | undefined {
  if (Array.isArray(source)) return source.length;
  if (source === null || typeof source !== 'object') return undefined;
  const n = (source as { numBatches?: unknown }).numBatches;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * Trains for `epochs` epochs: one native step per batch, validation after each epoch,
 * the best model kept by a metric, early stopping, callbacks and loggers. With
 * `checkpoint`, `<dir>/last` holds everything needed to resume exactly (model, optimizer,
 * RNG, epoch, step) and `<dir>/best` the best model; both are replaced atomically.
 *
 * With a distributed Trainer (option `distributed`), every rank calls fit with the same
 * options and the same batch source: each rank takes its shard of every epoch's batches
 * (see {@link shardBatches}), the epoch's figures are summed over the ranks, and rank 0
 * alone validates, logs (loggers on other ranks get no events) and writes checkpoints.
 * `signal` must then abort every rank, or the others wait until the group's timeout.
 */
export async function fit(trainer: Trainer, options: FitOptions): Promise<FitResult> {
  const where = 'fit';
  if (!(trainer instanceof Trainer)) throw is.invalidType(where, 'trainer', 'a Trainer', trainer);
  const o = is.options<FitOptions>(where, options, [
    'epochs', 'train', 'validation', 'schedule', 'clipGradNorm', 'accumulate', 'checkpoint', 'earlyStopping', 'resume', 'loggers', 'onBatchEnd', 'onEpochEnd', 'signal',
    'maxSkippedShare', 'metrics',
  ]);
  const epochs = is.integer(where, 'epochs', o.epochs, 1);
  if (typeof o.train !== 'function') throw is.invalidType(where, 'train', 'a function (epoch) => batches', o.train);
  if (o.validation !== undefined && typeof o.validation !== 'function') throw is.invalidType(where, 'validation', 'a function (epoch) => batches', o.validation);
  const accumulate = o.accumulate === undefined ? 1 : is.integer(where, 'accumulate', o.accumulate, 1);
  const loggers = o.loggers ?? [];
  const monitor = o.checkpoint?.monitor ?? (o.validation ? 'val.accuracy' : 'train.loss');
  const mode = o.checkpoint?.mode ?? defaultMode(monitor);
  const stopMonitor = o.earlyStopping?.monitor;
  const maxSkippedShare = o.maxSkippedShare === undefined ? 0.5 : is.inRange(where, 'maxSkippedShare', o.maxSkippedShare, 0, 1);
  // Settings that cannot work are rejected before the first step.
  const blank: EpochRecord = { epoch: 0, trainLoss: 0, trainAdversarialLoss: [], steps: 0, notApplied: 0, skippedAttacks: 0, seconds: 0 };
  // The validation metrics fit can monitor: evaluate()'s for the trainer's loss, or the given ones.
  const measured = new Set(['loss', 'accuracy', 'macroF1', ...(o.metrics ?? defaultMetrics(trainer.lossSpec)).map((m) => m.name)]);
  const checkMonitor = (field: string, metric: string) => {
    metricValue(metric, blank);
    if (metric.startsWith('val.') && !measured.has(metric.slice(4))) {
      throw new TypeError(`${where}: unknown metric '${metric}' (known: train.loss, ${[...measured].map((m) => `val.${m}`).join(', ')})`);
    }
    if (metric.startsWith('val.') && !o.validation) throw new TypeError(`${where}: ${field} '${metric}' needs validation batches (options.validation)`);
  };
  checkMonitor('checkpoint.monitor', monitor);
  if (o.earlyStopping) {
    is.integer(where, 'earlyStopping.patience', o.earlyStopping.patience, 1);
    checkMonitor('earlyStopping.monitor', o.earlyStopping.monitor);
  }

  // Distributed training: each rank trains on its shard of every epoch; the epoch's
  // figures are summed over ranks; rank 0 alone validates, logs and writes checkpoints.
  const group = trainer.group;
  const rank = group?.rank ?? 0;
  const world = group?.worldSize ?? 1;
  await trainer.ready;
  let state: SavedState = { version: CHECKPOINT_VERSION, epoch: 0, globalStep: 0, history: [], best: null, bad: 0, ...(world > 1 ? { worldSize: world } : {}) };
  if (o.resume !== undefined) {
    state = await restoreCheckpoint(trainer, findLast(o.resume));
  }
  const started = Date.now();
  const emit = (e: Omit<LogEvent, 'time'>) => {
    if (rank === 0) loggers.forEach((l) => l.log({ ...e, time: Date.now() - started }));
  };
  emit({ kind: 'run-start', step: trainer.globalStep, epoch: state.epoch, values: {} });
  let stoppedEarly = false;
  let stopReason: string | null = null;
  let aborted = false;
  try {
    for (let epoch = state.epoch + 1; epoch <= epochs && !stoppedEarly && !aborted; epoch++) {
      const t0 = Date.now();
      let lossSum = 0;
      let advSum: number[] = [];
      let applied = 0;
      let notApplied = 0;
      let skippedAttacks = 0;
      let optimizerSteps = 0;
      let failed = 0;
      let firstFailure: string | null = null;
      let batch = 0;
      let micro = 0;
      const all = o.train(epoch);
      const source = world > 1 ? shardBatches(all, rank, world) : all;
      const total = batchCount(all);
      const batches = total === undefined ? undefined : Math.floor(total / world);
      if (batches !== undefined && batches < accumulate) {
        throw new RangeError(`${where}: accumulate ${accumulate} is larger than the ${batches} batches of epoch ${epoch}; no optimizer step would run`);
      }
      for await (const b of source) {
        micro++;
        const last = micro % accumulate === 0;
        const lr = o.schedule ? o.schedule(trainer.globalStep) : undefined;
        const r = await trainer.step(b.inputs, b.target, {
          ...(lr !== undefined ? { lr } : {}),
          ...(o.clipGradNorm !== undefined ? { clipGradNorm: o.clipGradNorm } : {}),
          ...(accumulate > 1 ? { accumulate: !last, lossScale: 1 / accumulate } : {}),
        });
        batch++;
        if (r.applied) optimizerSteps++;
        if (!r.applied && !r.accumulated) {
          failed++;
          if (firstFailure === null) firstFailure = `batch ${batch}: ${r.reason ?? 'not applied'}`;
        }
        if (r.applied || r.accumulated) {
          lossSum += r.cleanLoss;
          if (advSum.length === 0) advSum = r.groupLosses.map(() => 0);
          r.groupLosses.forEach((v, k) => (advSum[k] += v));
          applied++;
        } else {
          notApplied++;
        }
        skippedAttacks += r.skipped.reduce((a, c) => a + c, 0);
        const values: Record<string, number> = { loss: r.cleanLoss, lr: r.lr, gradNorm: r.gradNorm };
        r.groupLosses.forEach((v, k) => (values[`adv_loss_${k}`] = v));
        emit({ kind: 'batch', step: trainer.globalStep, epoch, batch, ...(batches !== undefined ? { batches } : {}), values });
        if (o.onBatchEnd) await o.onBatchEnd({ epoch, batch, result: r });
        if (o.signal?.aborted) {
          aborted = true;
          break;
        }
      }
      if (aborted) break;
      if (group !== null && world > 1) {
        // The epoch's figures over every rank, so that each rank takes the same decisions.
        while (advSum.length < trainer.targets.length) advSum.push(0);
        const figures = tensor([lossSum, applied, notApplied, skippedAttacks, optimizerSteps, failed, batch, ...advSum], { dtype: 'float64' });
        await group.allReduce(figures, 'sum');
        const v = Array.from(figures.toTypedArray() as Float64Array);
        figures.dispose();
        [lossSum, applied, notApplied, skippedAttacks] = v;
        optimizerSteps = v[4] / world;
        failed = v[5];
        batch = v[6];
        advSum = v.slice(7);
      }
      if (batch === 0) throw new TrainingError(`${where}: epoch ${epoch} has no training batches`);
      if (optimizerSteps === 0) {
        throw new TrainingError(
          `${where}: epoch ${epoch} applied no optimizer step in ${batch} batch(es)` +
            (failed > 0 ? ` (${failed} failed; first at ${firstFailure})` : accumulate > 1 ? ` (accumulate ${accumulate})` : ''),
        );
      }
      if (failed / batch > maxSkippedShare) {
        throw new TrainingError(
          `${where}: epoch ${epoch}: ${failed} of ${batch} steps failed (${((100 * failed) / batch).toFixed(0)}% > maxSkippedShare ${maxSkippedShare}); first at ${firstFailure}`,
        );
      }
      const record: EpochRecord = {
        epoch,
        trainLoss: applied ? lossSum / applied : NaN,
        trainAdversarialLoss: advSum.map((v) => v / Math.max(applied, 1)),
        steps: applied,
        notApplied,
        skippedAttacks,
        seconds: (Date.now() - t0) / 1000,
      };
      if (o.validation && group !== null && world > 1) {
        // The replicas are identical: rank 0 evaluates, the others take its figures.
        const names = (o.metrics ?? defaultMetrics(trainer.lossSpec)).map((m) => m.name);
        const m = rank === 0 ? await evaluate(trainer, o.validation(epoch), o.metrics ? { metrics: o.metrics } : undefined) : null;
        const figures = tensor(m ? [m.loss, m.examples, ...names.map((n) => m.values[n])] : new Array<number>(2 + names.length).fill(0), { dtype: 'float64' });
        await group.broadcast(figures, 0);
        const [loss, examples, ...rest] = Array.from(figures.toTypedArray() as Float64Array);
        figures.dispose();
        const values: Record<string, number> = {};
        names.forEach((n, k) => (values[n] = rest[k]));
        record.validation = { loss, accuracy: values.accuracy ?? NaN, macroF1: values.macroF1 ?? NaN, examples, values };
        if (!Number.isFinite(record.validation.loss)) {
          throw new TrainingError(`${where}: epoch ${epoch}: the validation loss is ${record.validation.loss}; training diverged (try a lower learning rate or gradient clipping)`);
        }
      } else if (o.validation) {
        record.validation = await evaluate(trainer, o.validation(epoch), o.metrics ? { metrics: o.metrics } : undefined);
        if (!Number.isFinite(record.validation.loss)) {
          throw new TrainingError(`${where}: epoch ${epoch}: the validation loss is ${record.validation.loss}; training diverged (try a lower learning rate or gradient clipping)`);
        }
      }
      state.history.push(record);
      state.epoch = epoch;
      state.globalStep = trainer.globalStep;
      const values: Record<string, number> = { 'train/loss': record.trainLoss };
      record.trainAdversarialLoss.forEach((v, k) => (values[`train/adv_loss_${k}`] = v));
      if (record.validation) {
        values['val/loss'] = record.validation.loss;
        values['val/accuracy'] = record.validation.accuracy;
        values['val/macroF1'] = record.validation.macroF1;
      }
      emit({ kind: 'epoch', step: trainer.globalStep, epoch, values });
      // Best model and early stopping.
      const current = metricValue(monitor, record);
      const improved =
        current !== undefined && !Number.isNaN(current) && (state.best === null || (mode === 'max' ? current > state.best.value : current < state.best.value));
      if (improved && o.checkpoint) {
        const dir = rank === 0 ? await writeCheckpoint(trainer, o.checkpoint.dir, 'best', state) : path.join(o.checkpoint.dir, 'best');
        state.best = { epoch, value: current, monitor, dir };
      } else if (improved) {
        state.best = { epoch, value: current, monitor, dir: '' };
      }
      if (o.earlyStopping && stopMonitor) {
        const value = metricValue(stopMonitor, record);
        const history = state.history.slice(0, -1).map((h) => metricValue(stopMonitor, h)).filter((v): v is number => v !== undefined);
        const m = o.earlyStopping.mode ?? defaultMode(stopMonitor);
        const delta = o.earlyStopping.minDelta ?? 0;
        const bestBefore = history.length === 0 ? undefined : m === 'max' ? Math.max(...history) : Math.min(...history);
        const better = value !== undefined && (bestBefore === undefined || (m === 'max' ? value > bestBefore + delta : value < bestBefore - delta));
        state.bad = better ? 0 : state.bad + 1;
        if (state.bad >= o.earlyStopping.patience && epoch < epochs) {
          stoppedEarly = true;
          const all = state.history.map((h) => metricValue(stopMonitor, h) ?? NaN);
          const best = m === 'max' ? Math.max(...all) : Math.min(...all);
          stopReason =
            `early stopping: ${stopMonitor} did not improve${delta > 0 ? ` by more than ${delta}` : ''} for ${o.earlyStopping.patience} epoch(s) ` +
            `(best ${best.toFixed(4)} at epoch ${state.history[all.indexOf(best)]?.epoch ?? '?'}); stopped after epoch ${epoch} of ${epochs}`;
        }
      }
      if (o.checkpoint && rank === 0) await writeCheckpoint(trainer, o.checkpoint.dir, 'last', state);
      if (o.onEpochEnd) await o.onEpochEnd(record);
    }
    emit({ kind: 'run-end', step: trainer.globalStep, epoch: state.epoch, values: {} });
  } finally {
    await Promise.all(loggers.map((l) => l.close()));
  }
  return { history: state.history, best: state.best, stoppedEarly, stopReason, aborted };
}
