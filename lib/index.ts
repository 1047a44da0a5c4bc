/**
 * dropattack: DropAttack (masked weight adversarial training) on LibTorch for Node.js.
 * @packageDocumentation
 */
export { TorchError } from './core/errors';
export { backends, cpuCache, getJitOptions, getNumThreads, memory, releaseCpuCache, setJitOptions, setNumThreads } from './core/backends';
export type { BackendsInfo, CpuCacheInfo, JitOptions, MemoryReport } from './core/backends';
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
export type { ModuleOutput, ModelSpec, ForwardInputs, ForwardValue } from './core/module';
export { Trainer, ATTACK_METHODS, attackMethodInfo } from './core/trainer';
export type { AttackMethodInfo, MemoryBytes, ModuleMemory, TrainerMemory } from './core/native';
export type {
  AttackMethod,
  AttackGroup,
  AttackConfig,
  OptimizerConfig,
  ParameterGroup,
  LossConfig,
  TrainerOptions,
  DistributedTrainerOptions,
  StepOptions,
  StepResult,
} from './core/trainer';
export { constantLR, stepLR, cosineLR, linearWarmup } from './train/schedule';
export type { Schedule } from './train/schedule';
export { fit, evaluate, TrainingError } from './train/fit';
export { accuracy, tokenAccuracy, f1, mse } from './train/metrics';
export type { Metric, EvaluateOptions } from './train/metrics';
export { ProcessGroup, distributedInfo, distributedEnv } from './core/distributed';
export type { DistributedEnv, ProcessGroupOptions } from './core/distributed';
export { shardBatches } from './train/shard';
export { launchLocal, freePort } from './app/launch';
export type { LaunchOptions, LaunchResult } from './app/launch';
export type { Batch, BatchSource, FitOptions, FitResult, EpochRecord, Metrics } from './train/fit';
export { ProgressLogger, JsonlLogger, TensorBoardLogger, MultiLogger } from './logging';
export type { Logger, LogEvent, ProgressOptions, ProgressStream, TensorBoardOptions } from './logging';
