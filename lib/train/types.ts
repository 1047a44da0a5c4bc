// The types shared by the training loop, its metrics and its checkpoints.
import { ForwardInputs } from '../core/module';
import { Tensor } from '../core/tensor';

/**
 * One batch: the model's forward arguments (by position or by name) and the target. The
 * target may be omitted when the trainer's loss is the model's own (the labels are then
 * forward arguments; evaluate() reads a `labels` argument for its metrics).
 */
export interface Batch {
  /** The forward arguments of the model, by position or by name (see ForwardInputs). */
  inputs: ForwardInputs;
  /** The target of the loss: class indices (int64) or values of the output's shape; omitted with loss type 'model'. */
  target?: Tensor | null;
}

/**
 * The batches of one epoch. Called with the epoch number (from 1) so a seeded source
 * gives the same order on a resumed run as on an uninterrupted one. An array, or an
 * iterable with a `numBatches` property (the epochs of TextBatches and ImageBatches),
 * tells progress loggers the epoch's total.
 */
export type BatchSource = (epoch: number) => Iterable<Batch> | AsyncIterable<Batch>;

/** What {@link evaluate} measured. */
export interface Metrics {
  /** The mean loss over every non-ignored target (the trainer's loss, or the given one). */
  loss: number;
  /** The `accuracy` metric (NaN when not measured). */
  accuracy: number;
  /** The `macroF1` metric (NaN when not measured). */
  macroF1: number;
  /** Number of examples evaluated. */
  examples: number;
  /** Every metric by name (`accuracy`, `macroF1`, `tokenAccuracy`, `mse`, your own). */
  values: Record<string, number>;
}

/** What one epoch did. */
export interface EpochRecord {
  /** The epoch's number, from 1. */
  epoch: number;
  /** Mean clean loss of the applied steps. */
  trainLoss: number;
  /** Mean adversarial loss per attack group. */
  trainAdversarialLoss: number[];
  /** Batches trained on. */
  steps: number;
  /** Steps whose update did not run (a non-finite loss or gradient). */
  notApplied: number;
  /** Perturbations skipped because the direction's norm was 0 or not finite, over all groups. */
  skippedAttacks: number;
  /** Wall-clock seconds of the epoch, validation included. */
  seconds: number;
  /** The validation metrics, when `validation` batches were given. */
  validation?: Metrics;
}

/** What {@link fit} did. */
export interface FitResult {
  /** One record per epoch. */
  history: EpochRecord[];
  /** The best epoch by the monitored metric (the checkpoint's or early stopping's), or null when none is monitored. */
  best: {
    /** The epoch's number. */
    epoch: number;
    /** The metric's value then. */
    value: number;
    /** The metric (`val.loss`, `val.accuracy`, `val.macroF1` or `train.loss`). */
    monitor: string;
    /** Where its model is saved (under `checkpoint.dir`); empty without `checkpoint`. */
    dir: string;
  } | null;
  /** Whether early stopping ended the run before `epochs`. */
  stoppedEarly: boolean;
  /** Why early stopping ended the run (one line), or null. */
  stopReason: string | null;
  /** Whether `signal` stopped the run. */
  aborted: boolean;
}
