// The types shared by the training loop, its metrics and its checkpoints.
import { ForwardInputs } from '../core/module';
import { Tensor } from '../core/tensor';

/**
 * One batch: the model's forward arguments (by position or by name) and the target. The
 * target may be omitted when the trainer's loss is the model's own (the labels are then
 * forward arguments; evaluate() reads a `labels` argument for its metrics).
 */
export interface Batch {
  inputs: ForwardInputs;
  target?: Tensor | null;
}

/**
 * The batches of one epoch. Called with the epoch number (from 1) so a seeded source
 * gives the same order on a resumed run as on an uninterrupted one.
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
  examples: number;
  /** Every metric by name (`accuracy`, `macroF1`, `tokenAccuracy`, `mse`, your own). */
  values: Record<string, number>;
}

/** What one epoch did. */
export interface EpochRecord {
  epoch: number;
  /** Mean clean loss of the applied steps. */
  trainLoss: number;
  /** Mean adversarial loss per attack group. */
  trainAdversarialLoss: number[];
  steps: number;
  notApplied: number;
  skippedAttacks: number;
  seconds: number;
  validation?: Metrics;
}

/** What {@link fit} did. */
export interface FitResult {
  history: EpochRecord[];
  best: { epoch: number; value: number; monitor: string; dir: string } | null;
  stoppedEarly: boolean;
  /** Why early stopping ended the run (one line), or null. */
  stopReason: string | null;
  aborted: boolean;
}
