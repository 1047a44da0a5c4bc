// The types shared by the training loop, its metrics and its checkpoints.
import { Tensor } from '../core/tensor';

/** One batch: the model's forward arguments and the target. */
export interface Batch {
  inputs: Tensor[];
  target: Tensor;
}

/**
 * The batches of one epoch. Called with the epoch number (from 1) so a seeded source
 * gives the same order on a resumed run as on an uninterrupted one.
 */
export type BatchSource = (epoch: number) => Iterable<Batch> | AsyncIterable<Batch>;

/** Evaluation metrics of a classifier. */
export interface Metrics {
  loss: number;
  accuracy: number;
  macroF1: number;
  examples: number;
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
