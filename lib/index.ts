/**
 * dropattack: DropAttack (masked weight adversarial training) on LibTorch for Node.js.
 * @packageDocumentation
 */
export { TorchError } from './errors';
export { backends, getJitOptions, getNumThreads, setJitOptions, setNumThreads } from './backends';
export type { BackendsInfo, JitOptions } from './backends';
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
} from './tensor';
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
} from './tensor';
export { perturb, Perturbation, dropMask, philox4x32, releaseCachedBackups, cachedBackupBytes } from './perturb';
export type { PerturbOptions, DropMaskOptions } from './perturb';
export { Module } from './module';
export type { ModuleOutput, ModelSpec } from './module';
export { Trainer, ATTACK_METHODS, attackMethodInfo } from './trainer';
export type { AttackMethodInfo } from './native';
export type {
  AttackMethod,
  AttackGroup,
  AttackConfig,
  OptimizerConfig,
  LossConfig,
  TrainerOptions,
  DistributedTrainerOptions,
  StepOptions,
  StepResult,
} from './trainer';
export { constantLR, stepLR, cosineLR, linearWarmup } from './schedule';
export type { Schedule } from './schedule';
export { ProcessGroup, distributedInfo, distributedEnv, shardBatches, launchLocal, freePort } from './distributed';
export type { DistributedEnv, ProcessGroupOptions, LaunchOptions, LaunchResult } from './distributed';
export { fit, evaluate } from './fit';
export type { Batch, BatchSource, FitOptions, FitResult, EpochRecord, Metrics } from './fit';
export { ProgressLogger, JsonlLogger, TensorBoardLogger, MultiLogger, crc32c, maskedCrc32c } from './logging';
export type { Logger, LogEvent, ProgressOptions, ProgressStream, TensorBoardOptions } from './logging';
export * from './data';
