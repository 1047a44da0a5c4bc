// The one typed view of the addon: nothing else loads the .node file.
import * as fs from 'fs';
import * as path from 'path';

import './dispose';
import { TorchError } from './errors';

/** What one step did. */
export interface StepResult {
  /** L0, the loss at the unperturbed parameters (FreeLB: L_1). */
  cleanLoss: number;
  /** Each attack group's adversarial loss (docs/methods.md says which). */
  groupLosses: number[];
  /** Per group: perturbations skipped because the direction's norm was 0 or not finite. */
  skipped: number[];
  /** L2 norm of the update's gradient before clipping (0 when not applied; NaN when not computed: `gradNorm: false`). */
  gradNorm: number;
  /** Learning rate used. */
  lr: number;
  /** Whether the optimizer step ran. */
  applied: boolean;
  /** Gradients were kept for the next micro-batch. */
  accumulated: boolean;
  /** Why the step was not applied (a non-finite loss or gradient), else null. */
  reason: string | null;
  /** Targets that took the row-sparse embedding path in this step. */
  sparseTargets: string[];
  /**
   * Distributed training, in a step whose gradients were averaged: the all-reduce buckets,
   * and how many of them started during the last backward pass (the rest after it).
   */
  allReduce?: {
    /** The buckets the gradients were averaged in. */
    buckets: number;
    /** Of those, the ones whose all-reduce started during the last backward pass. */
    startedInBackward: number;
  };
  /** Seconds per phase, with `timePhases`. */
  times?: {
    /** Forward passes. */
    forward: number;
    /** Backward passes. */
    backward: number;
    /** Perturbations and restores. */
    perturb: number;
    /** Clipping and the optimizer's update. */
    optimizer: number;
    /** Collectives of distributed training (0 in one process): the time they kept the step waiting, not what overlapped the backward. */
    communication: number;
  };
}

/** An opaque native tensor handle. */
export interface NativeTensor {
  readonly __nativeTensor: unique symbol;
}
/** An opaque native generator handle. */
export interface NativeGenerator {
  readonly __nativeGenerator: unique symbol;
}
/** An opaque native module handle. */
export interface NativeModule {
  readonly __nativeModule: unique symbol;
}
/** An opaque native trainer handle. */
export interface NativeTrainer {
  readonly __nativeTrainer: unique symbol;
}
/** An opaque native process group handle. */
export interface NativeProcessGroup {
  readonly __nativeProcessGroup: unique symbol;
}
/** An opaque native perturbation handle. */
export interface NativePerturbation {
  readonly __nativePerturbation: unique symbol;
}

export type NativeTypedArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint8Array
  | Uint8ClampedArray
  | Int8Array
  | Int16Array
  | BigInt64Array;

type T = NativeTensor;
type Scalarish = T | number;
type Opt<X> = X | null;

/** What this build of the addon can do (see `backends()`). */
export interface BackendsInfo {
  /** Always true. */
  cpu: boolean;
  /** CUDA kernels are built and a device is present. */
  cuda: boolean;
  /** The number of CUDA devices LibTorch sees. */
  cudaDeviceCount: number;
  /** The addon was compiled with its CUDA kernels. */
  cudaKernels: boolean;
  /** The LibTorch version. */
  libtorch: string;
  /** LibTorch's intra-op thread count. */
  threads: number;
  /** LibTorch's inter-op thread count. */
  interopThreads: number;
  /** LibTorch's description of its parallel backend (`at::get_parallel_info()`). */
  parallel: string;
}

export interface PerturbationInfo {
  skipped: boolean;
  norm: number;
  scale: number;
  sparse: boolean;
  restored: boolean;
  backupBytes: number;
}

/** A training method of the engine and the rules its attack settings follow (native/engine/methods/). */
export interface AttackMethodInfo {
  /** The method's name, as `attack.method` takes it. */
  name: string;
  /** The attack settings it reads (besides method), and those of each group. */
  fields: string[];
  /** The settings each attack group reads. */
  groupFields: string[];
  /** attack.groups: must be empty, must list one at least, or may be empty (every parameter). */
  groups: 'forbidden' | 'required' | 'optional';
  /** `groups` is `'required'`. */
  needsGroups: boolean;
  /** The largest `k` it accepts (1 for the single-step methods). */
  maxK: number;
  /** `alpha` (the step size) must be given. */
  needsAlpha: boolean;
  /** Each group needs an `epsilon`. */
  needsEpsilon: boolean;
  /** Targets may take the row-sparse embedding path. */
  sparse: boolean;
  /** A tensor may be in one group only (the method moves all groups at once). */
  oneGroupPerTensor: boolean;
  /** p is forced to 1. */
  fullP: boolean;
}

/** The engine's default option structs and limits (native/engine/engine.h), named as in the schema. */
export interface EngineDefaults {
  optimizer: Record<string, unknown> & { weightDecay: number | Record<string, number> };
  attack: Record<string, unknown>;
  group: Record<string, unknown>;
  loss: Record<string, unknown>;
  limits: { maxK: number; maxGroups: number; maxTargetsPerGroup: number };
}
/**
 * Bytes of native memory by kind, each storage counted once (views and handles that
 * share memory count it once), with the same kinds per device.
 */
export type MemoryBytes<K extends string> = Record<K, number> & {
  /** The sum of the kinds. */
  total: number;
  /** The same per device (`'cpu'`, `'cuda:0'`, ...), for the devices that hold any. */
  devices: Record<
    string,
    Record<K, number> & {
      /** The sum of the kinds on this device. */
      total: number;
    }
  >;
};

/** Native bytes a Module holds (`Module.memory()`): its parameters, buffers and the parameters' gradients. */
export type ModuleMemory = MemoryBytes<'parameters' | 'buffers' | 'gradients'>;

/**
 * Native bytes a Trainer holds besides its module (`Trainer.memory()`): the optimizer's state
 * (momentum buffers; Adam's first and second moments, and the maximum with amsgrad) and
 * the loss's class weights. Gradients, those kept between micro-batches included, belong
 * to the module's parameters and show in {@link ModuleMemory}.
 */
export type TrainerMemory = MemoryBytes<'optimizerState' | 'lossState'>;

/**
 * The native memory held through this thread's live handles (the main thread's, or a
 * worker's own). Each storage counts once, under the first kind that holds it:
 * `modules` (parameters, buffers, gradients of undisposed modules), `optimizerState`
 * (trainers' optimizer state and class weights), `backups` (perturbations not yet
 * restored), `cachedBackups` (the pool of reusable backups, see `cachedBackupBytes`),
 * then `tensors` (tensor handles, for memory not counted above). While a step runs, its
 * module counts without gradients and its trainer as of the end of its last step.
 */
export type MemoryReport = MemoryBytes<'modules' | 'optimizerState' | 'backups' | 'cachedBackups' | 'tensors'> & {
  /** Live (undisposed) handles: tensors, modules, trainers, perturbations not restored. */
  counts: {
    /** Tensor handles not disposed. */
    tensors: number;
    /** Modules not disposed. */
    modules: number;
    /** Trainers not disposed. */
    trainers: number;
    /** Perturbations not yet restored. */
    perturbations: number;
  };
};

/** How TorchScript executes forwards (see docs/jit.md). */
export interface JitOptions {
  /** The graph executor: `'simple'` (default), `'profiling'` or `'legacy'`. */
  executor: 'simple' | 'profiling' | 'legacy';
  /** Kernel fusion: `'none'` (default) or `'tensorexpr'`. */
  fuser: 'none' | 'tensorexpr';
}

/** The caching CPU allocator's state (see `cpuCache()`). */
export interface CpuCacheInfo {
  /** Whether it serves LibTorch's CPU allocations (`DROPATTACK_CPU_CACHE_MB=0` at load keeps LibTorch's own allocator). */
  installed: boolean;
  /** Most bytes kept in freed blocks for reuse. */
  limitBytes: number;
  /** Bytes in freed blocks kept for reuse now. */
  cachedBytes: number;
  /** Bytes in large blocks (1 MiB and more) in use now. */
  liveBytes: number;
  /** Most `liveBytes` since the addon loaded or the last `cpuCache(true)`. */
  peakLiveBytes: number;
  /** Large allocations served from kept blocks. */
  hits: number;
  /** Large allocations that mapped fresh memory. */
  misses: number;
}

export interface Binding {
  setErrorClass(cls: new (message: string) => Error): void;
  backends(): BackendsInfo;
  setJitOptions(o: Partial<JitOptions>): JitOptions;
  getJitOptions(): JitOptions;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  cpuCache(resetPeak?: boolean): CpuCacheInfo;
  releaseCpuCache(): void;

  fromBuffer(data: NativeTypedArray, shape: number[], dtype: string, share: boolean): T;
  full(shape: number[], value: number, dtype: string, device: string): T;
  rand(shape: number[], dtype: string, device: string, gen: Opt<NativeGenerator>): T;
  randn(shape: number[], dtype: string, device: string, gen: Opt<NativeGenerator>): T;
  randint(low: number, high: number, shape: number[], dtype: string, device: string, gen: Opt<NativeGenerator>): T;
  arange(start: number, end: number, step: number, dtype: string, device: string): T;

  shape(t: T): number[];
  dtype(t: T): string;
  device(t: T): string;
  isDisposed(t: T): boolean;
  dispose(t: T): void;
  toTypedArray(t: T): Float32Array | Float64Array | Int32Array | Uint8Array | BigInt64Array;
  item(t: T): number;
  to(t: T, dtype: Opt<string>, device: Opt<string>): T;
  clone(t: T): T;
  detach(t: T): T;
  contiguous(t: T): T;
  unary(op: string, t: T): T;
  binary(op: string, a: T, b: Scalarish): T;
  matmul(a: T, b: T): T;
  reduce(op: 'sum' | 'mean', t: T, dims: Opt<number[]>, keepdim: boolean): T;
  extreme(op: 'max' | 'min', t: T, dim: Opt<number>, keepdim: boolean): T | [T, T];
  argExtreme(op: 'argmax' | 'argmin', t: T, dim: Opt<number>, keepdim: boolean): T;
  norm(t: T, p: number, dims: Opt<number[]>, keepdim: boolean): T;
  reshape(t: T, shape: number[]): T;
  view(t: T, shape: number[]): T;
  permute(t: T, dims: number[]): T;
  transpose(t: T, dim0: number, dim1: number): T;
  squeeze(t: T, dim: Opt<number>): T;
  unsqueeze(t: T, dim: number): T;
  flatten(t: T, startDim: number, endDim: number): T;
  narrow(t: T, dim: number, start: number, length: number): T;
  indexSelect(t: T, dim: number, index: T): T;
  cat(tensors: T[], dim: number): T;
  stack(tensors: T[], dim: number): T;
  where(condition: T, a: T, b: T): T;
  clamp(t: T, min: Opt<number>, max: Opt<number>): T;
  softmax(t: T, dim: number): T;
  logSoftmax(t: T, dim: number): T;
  crossEntropy(logits: T, target: T, labelSmoothing: number): T;
  mseLoss(input: T, target: T): T;
  inplace(op: 'add' | 'sub' | 'mul' | 'div' | 'copy' | 'fill' | 'zero', t: T, other?: Scalarish, alpha?: number): void;
  requiresGrad(t: T): boolean;
  setRequiresGrad(t: T, value: boolean): void;
  grad(t: T): T | null;
  zeroGrad(t: T): void;
  backward(t: T, gradient: Opt<T>, retainGraph: boolean): void;

  generatorNew(seed: number | bigint): NativeGenerator;
  generatorSeed(g: NativeGenerator): bigint;
  generatorGetState(g: NativeGenerator): T;
  generatorSetState(g: NativeGenerator, state: T): void;
  generatorDispose(g: NativeGenerator): void;
  generatorIsDisposed(g: NativeGenerator): boolean;

  perturb(
    target: T,
    direction: T,
    epsilon: number,
    p: number,
    seed: number | bigint,
    counter: number | bigint,
    rows: Opt<T>,
  ): NativePerturbation;
  perturbationInfo(h: NativePerturbation): PerturbationInfo;
  restore(h: NativePerturbation): void;
  perturbationDispose(h: NativePerturbation): void;
  perturbationIsDisposed(h: NativePerturbation): boolean;
  dropMask(numel: number, p: number, seed: number | bigint, counter: number | bigint, device: string): T;
  philox4x32(counter: number[], key: number[]): number[];
  releaseCachedBackups(): void;

  moduleLoad(path: string, device?: string | null): Promise<NativeModule>;
  moduleSave(m: NativeModule, path: string): Promise<void>;
  moduleForward(m: NativeModule, inputs: object, grad: boolean): Promise<unknown>;
  moduleEvaluate(m: NativeModule, inputs: object, target: T | null, loss: object, settings: object): Promise<{ loss: number; count: number; logits: T | null }>;
  moduleNamedParameters(m: NativeModule): { name: string; tensor: T }[];
  moduleStateDict(m: NativeModule): { name: string; tensor: T }[];
  moduleLoadStateDict(m: NativeModule, state: { name: string; tensor: T }[], strict: boolean): void;
  moduleTrain(m: NativeModule, on: boolean): void;
  moduleIsTraining(m: NativeModule): boolean;
  moduleTo(m: NativeModule, device: Opt<string>, dtype: Opt<string>): void;
  moduleIsBusy(m: NativeModule): boolean;
  moduleBuild(spec: object, seed: number | bigint): NativeModule;
  moduleDispose(m: NativeModule): void;
  moduleIsDisposed(m: NativeModule): boolean;
  moduleMemory(m: NativeModule): ModuleMemory;

  attackMethods(): AttackMethodInfo[];
  engineDefaults(): EngineDefaults;
  trainerNew(m: NativeModule, optimizer: object, attack: object, loss: object, settings?: object): NativeTrainer;
  trainerStep(t: NativeTrainer, inputs: object, target: T | null, options: object): Promise<StepResult>;
  trainerInfo(t: NativeTrainer): { method: string; globalStep: number; targets: string[][] };
  trainerSetGlobalStep(t: NativeTrainer, step: number): void;
  trainerSetDistributed(t: NativeTrainer, g: NativeProcessGroup, options: { direction: string; bucketBytes: number; overlap: boolean }): Promise<void>;
  distributedInfo(): { available: boolean; backends: string[] };
  processGroupNew(options: object): Promise<NativeProcessGroup>;
  processGroupAllReduce(g: NativeProcessGroup, t: T, op: string): Promise<void>;
  processGroupBroadcast(g: NativeProcessGroup, tensors: T[], root: number): Promise<void>;
  processGroupBarrier(g: NativeProcessGroup): Promise<void>;
  processGroupClose(g: NativeProcessGroup): void;
  processGroupInfo(g: NativeProcessGroup): { rank: number; worldSize: number; backend: string; masterAddr: string; masterPort: number; timeoutMs: number };
  trainerSaveState(t: NativeTrainer, path: string): Promise<void>;
  trainerLoadState(t: NativeTrainer, path: string): Promise<void>;
  trainerDispose(t: NativeTrainer): void;
  trainerIsDisposed(t: NativeTrainer): boolean;
  trainerMemory(t: NativeTrainer): TrainerMemory;
  manualSeed(seed: number | bigint): void;
  globalGeneratorState(): T;
  setGlobalGeneratorState(state: T): void;
  cachedBackupBytes(): number;
  memory(): MemoryReport;
}

function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'dropattack') return dir;
      } catch {
        // keep looking
      }
    }
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..');
}

function load(): Binding {
  const root = packageRoot();
  // As node-gyp-build does: an explicit path, a local build, then the package's prebuild.
  const explicit = process.env.DROPATTACK_BINARY;
  if (explicit && !fs.existsSync(explicit)) {
    throw new Error(`dropattack: DROPATTACK_BINARY=${explicit}: no such file`);
  }
  const candidates = [
    explicit,
    path.join(root, 'build', 'Release', 'dropattack.node'),
    path.join(root, 'build', 'Debug', 'dropattack.node'),
    path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'dropattack.node'),
  ].filter((p): p is string => typeof p === 'string' && p.length > 0);
  for (const file of candidates) {
    if (fs.existsSync(file)) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const binding = require(file) as Binding;
      binding.setErrorClass(TorchError);
      return binding;
    }
  }
  throw new Error(
    `dropattack: the native addon is not built (looked for ${candidates.join(', ')}). ` +
      'Run `npm rebuild dropattack` (it says what is missing), or `bash scripts/setup.sh` in a checkout.',
  );
}

/** The loaded addon. */
export const native: Binding = load();
