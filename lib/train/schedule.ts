import * as is from '../core/is';

/** A learning-rate schedule: the rate for optimizer step `step` (0-based). */
export type Schedule = (step: number) => number;

function stepArg(where: string, step: unknown): number {
  return is.integer(where, 'step', step, 0);
}

/** A constant rate. */
export function constantLR(lr: number): Schedule {
  const base = is.inRange('constantLR', 'lr', lr, 0, Number.MAX_VALUE);
  return (step) => {
    stepArg('constantLR', step);
    return base;
  };
}

/** lr · gamma^floor(step / stepSize) (PyTorch's StepLR). */
export function stepLR(options: { lr: number; stepSize: number; gamma?: number }): Schedule {
  const o = is.options<{ lr: number; stepSize: number; gamma: number }>('stepLR', options, ['lr', 'stepSize', 'gamma']);
  const lr = is.inRange('stepLR', 'lr', o.lr, 0, Number.MAX_VALUE);
  const size = is.integer('stepLR', 'stepSize', o.stepSize, 1);
  const gamma = o.gamma === undefined ? 0.1 : is.inRange('stepLR', 'gamma', o.gamma, 0, Number.MAX_VALUE);
  return (step) => lr * gamma ** Math.floor(stepArg('stepLR', step) / size);
}

/**
 * Cosine annealing from lr to minLr over totalSteps (PyTorch's CosineAnnealingLR without
 * restarts); minLr after the end.
 */
export function cosineLR(options: { lr: number; totalSteps: number; minLr?: number }): Schedule {
  const o = is.options<{ lr: number; totalSteps: number; minLr: number }>('cosineLR', options, ['lr', 'totalSteps', 'minLr']);
  const lr = is.inRange('cosineLR', 'lr', o.lr, 0, Number.MAX_VALUE);
  const total = is.integer('cosineLR', 'totalSteps', o.totalSteps, 1);
  const min = o.minLr === undefined ? 0 : is.inRange('cosineLR', 'minLr', o.minLr, 0, lr);
  return (step) => {
    const s = Math.min(stepArg('cosineLR', step), total);
    return min + ((lr - min) * (1 + Math.cos((Math.PI * s) / total))) / 2;
  };
}

/**
 * Linear warm-up: the rate rises linearly from lr(warmupSteps)/warmupSteps at step 0 to
 * the wrapped schedule's rate at `warmupSteps`, which it follows afterwards.
 */
export function linearWarmup(schedule: Schedule, warmupSteps: number): Schedule {
  if (typeof schedule !== 'function') throw is.invalidType('linearWarmup', 'schedule', 'a schedule function', schedule);
  const warm = is.integer('linearWarmup', 'warmupSteps', warmupSteps, 0);
  return (step) => {
    const s = stepArg('linearWarmup', step);
    if (s >= warm) return schedule(s);
    return (schedule(warm) * (s + 1)) / warm;
  };
}
