/**
 * dropattack: DropAttack (masked weight adversarial training) on LibTorch for Node.js.
 * @packageDocumentation
 */
export { TorchError } from './core/errors';
export { backends, cpuCache, getJitOptions, getNumThreads, releaseCpuCache, setJitOptions, setNumThreads } from './core/backends';
export type { BackendsInfo, CpuCacheInfo, JitOptions } from './core/backends';
export {
  Tensor,
  Generator,
  tensor,
  zeros,
  ones,
  full,
  rand,
  randn,
  randint,
  arange,
  cat,
  stack,
  where,
  crossEntropy,
  mseLoss,
  DTYPES,
  manualSeed,
  globalGeneratorState,
  setGlobalGeneratorState,
} from './core/tensor';
export type {
  DType,
  Device,
  NestedArray,
  TensorData,
  TensorLike,
  CreateOptions,
  TensorOptions,
  RandomOptions,
  ReduceOptions,
  CrossEntropyOptions,
} from './core/tensor';
export { perturb, Perturbation, dropMask } from './core/perturb';
export type { PerturbOptions, DropMaskOptions } from './core/perturb';
export { Module } from './core/module';
export type { ModuleOutput, ModelSpec } from './core/module';
export { Trainer, ATTACK_METHODS, attackMethodInfo } from './core/trainer';
export type { AttackMethodInfo } from './core/native';
export type {
  AttackMethod,
  AttackGroup,
  AttackConfig,
  OptimizerConfig,
  LossConfig,
  TrainerOptions,
  StepOptions,
  StepResult,
} from './core/trainer';
export { constantLR, stepLR, cosineLR, linearWarmup } from './train/schedule';
export type { Schedule } from './train/schedule';
export { fit, evaluate } from './train/fit';
export type { Batch, BatchSource, FitOptions, FitResult, EpochRecord, Metrics } from './train/fit';
export { ProgressLogger, JsonlLogger, TensorBoardLogger, MultiLogger } from './logging';
export type { Logger, LogEvent, ProgressOptions, ProgressStream, TensorBoardOptions } from './logging';
