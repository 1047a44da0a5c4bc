import { ProcessGroup } from './distributed';
import * as is from './is';
import { rejecting } from './errors';
import { ForwardInputs, Module, nativeInputs } from './module';
import { native, AttackMethodInfo, NativeTrainer, StepResult, TrainerMemory } from './native';
import { attackSchema, groupSchema, lossSchema, METHOD_INFO, optimizerSchema, parameterGroupSchema, trainerSchema } from './options';
import { apiError, Checker, Resolved, Static } from './schema';

export type { StepResult } from './native';
import { Tensor } from './tensor';

/** Training methods; see docs/methods.md for their exact definitions. */
export type AttackMethod = 'none' | 'dropattack' | 'fgm' | 'pgd' | 'freelb' | 'awp' | 'sam' | 'asam';

const METHODS: ReadonlyMap<string, Readonly<AttackMethodInfo>> = new Map(METHOD_INFO.map((m) => [m.name, m]));
/** Every method the engine has, in the order of docs/methods.md. */
export const ATTACK_METHODS: readonly AttackMethod[] = Object.freeze([...METHODS.keys()] as AttackMethod[]);

/** A method's rules as the engine states them (which settings it reads, what it needs). */
export function attackMethodInfo(method: string): Readonly<AttackMethodInfo> | undefined {
  return METHODS.get(method);
}

// The option types come from the schema (lib/core/options.ts, docs/config.md): the input
// types as a user writes them, defaults optional. `@interface` has TypeDoc list their
// fields (with the doc comments of the schema's properties) instead of the TypeBox type.

/**
 * One attack group: `targets` (parameter names, globs `rnn.weight_*`, regexes written
 * `/…/`, or `'input'` for the batch's first float input; a target matching nothing is an
 * error that lists the parameters), `epsilon` (the radius, absolute or relative to ‖w‖
 * with `relative`), DropAttack's `p` (default 1), `sparse` (`'auto'` by default: row-sparse
 * perturbation of 2-D targets named like an embedding when the batch holds token ids).
 * @interface
 */
export type AttackGroup = Static<ReturnType<typeof groupSchema>>;

/**
 * The attack of a {@link Trainer}: `method` (default `'none'`), `groups`, `k` (attack
 * steps, default 1, at most 1000), `alpha` (PGD, FreeLB step size; required by them),
 * `rho` (SAM, ASAM radius, default 0.05), `eta` (ASAM, default 0.01), `seed` (key of the
 * mask generator, default 0; a bigint below 2^64 too).
 * @interface
 */
export type AttackConfig = Omit<Static<ReturnType<typeof attackSchema>>, 'seed' | 'method'> & {
  /** The training method (docs/methods.md). Default `'none'`. */
  method?: AttackMethod;
  /** Key of the mask generator: a safe integer ≥ 0 or a bigint below 2^64. Default 0. */
  seed?: number | bigint;
};

/**
 * Settings of one group of parameters, chosen by name (e.g. no weight decay on biases
 * and norms: `{ params: ['*.bias', '/norm/'], weightDecay: 0 }`). A parameter joins the
 * first group whose pattern matches it; the others keep the optimizer's settings. A
 * group's `lr` is scaled by a step's `lr` (a schedule) by the same ratio as the optimizer's.
 * @interface
 */
export type ParameterGroup = Static<ReturnType<typeof parameterGroupSchema>>;

/**
 * Optimizer settings (default: Adam, lr 1e-3; docs/config.md lists every default).
 * @interface
 */
export type OptimizerConfig = Static<ReturnType<typeof optimizerSchema>>;

/**
 * The loss of a batch (a mean). `crossEntropy`, `bceWithLogits` and `mse` compare the
 * model's output with the batch's target; the output is the forward's tensor, the first
 * item of a tuple, or a dict's `'logits'` entry. `model` takes the loss the model computes
 * itself (Hugging Face style): the forward's scalar output, the first item of a tuple,
 * or a dict's `'loss'` entry, with the labels passed as forward arguments.
 *
 * Cross-entropy takes `[B, C]` logits with `[B]` targets, token-level `[B, T, C]` logits
 * with `[B, T]` targets (sequence labelling, language models), or PyTorch's `[B, C, …]`
 * layout; targets equal to `ignoreIndex` (default -100, as PyTorch) count for nothing.
 * @interface
 */
export type LossConfig = Static<ReturnType<typeof lossSchema>> & {
  /** crossEntropy: a weight per class. */
  classWeights?: Tensor;
};

/**
 * The options of a {@link Trainer}; every one has a default (docs/config.md). `autocast:
 * 'bf16'` runs every forward pass (clean and adversarial) under LibTorch's autocast to
 * bfloat16 on the parameters' device; the loss, the gradients, the perturbations and the
 * optimizer stay in the parameters' own dtype (fp32 master weights).
 */
export interface TrainerOptions {
  /** Default: Adam, lr 1e-3. */
  optimizer?: OptimizerConfig;
  /** Default: plain training (`{ method: 'none' }`). */
  attack?: AttackConfig;
  /** Default: cross-entropy. */
  loss?: LossConfig;
  /** Default `'off'`. */
  autocast?: 'off' | 'bf16';
  /**
   * What BatchNorm's running statistics (and any buffer forward updates) see during a
   * step. `'every-pass'` (default): the clean pass and every attack pass update them, as
   * a PyTorch DropAttack loop does. `'clean-pass'`: the attack passes run with the
   * statistics as the clean pass left them and leave them so, as if each batch were
   * seen once. Either way, each pass normalizes with its own batch statistics.
   */
  batchNormStats?: 'every-pass' | 'clean-pass';
  /**
   * Data-parallel training over a {@link ProcessGroup}: every rank builds its Trainer on
   * the same model (a collective: rank 0's parameters and buffers are copied to the
   * others), then each step averages the update's gradient across ranks. See
   * docs/methods.md, "Distributed training".
   */
  distributed?: DistributedTrainerOptions;
}

/** The `distributed` option of a {@link Trainer}. */
export interface DistributedTrainerOptions {
  /** The processes that train together: each builds its Trainer with the same group. */
  group: ProcessGroup;
  /**
   * Which gradient each rank attacks with. `'local'` (default): its own batch's, with no
   * communication beyond the update's all-reduce. `'allreduced'`: the average across
   * ranks, as one process with the whole global batch (or a DDP model) would use; one
   * extra all-reduce of the attacked tensors per attack pass.
   */
  direction?: 'local' | 'allreduced';
  /** Size of the all-reduce buckets in MiB. Default 25. */
  bucketMB?: number;
  /**
   * Start each bucket's all-reduce during the step's last backward pass, as soon as its
   * gradients are accumulated (true, default), or only after the backward (false). Same
   * result either way; overlapping hides communication behind the backward's compute.
   */
  overlap?: boolean;
}

/** Trainer options with every default filled in (what the engine receives). */
export type ResolvedTrainerOptions = Resolved<ReturnType<typeof trainerSchema>>;

/** Options of {@link Trainer.step}. */
export interface StepOptions {
  /** Learning rate for this step (from a schedule); the optimizer's when omitted. */
  lr?: number;
  /** Clip the gradient's global L2 norm to this value before the update. */
  clipGradNorm?: number;
  /** Keep the gradients for the next micro-batch instead of updating. */
  accumulate?: boolean;
  /** Multiplies every backward (e.g. 1 / number of micro-batches). Default 1. */
  lossScale?: number;
  /** Report the time spent per phase. */
  timePhases?: boolean;
  /**
   * Compute the gradient's global L2 norm (`StepResult.gradNorm`) and refuse a step whose
   * gradient is not finite. Default true. With false (and no `clipGradNorm`, which needs
   * the norm) the update skips that pass over every gradient, as a plain PyTorch loop
   * does: `gradNorm` is then NaN and a non-finite gradient is applied as it is.
   */
  gradNorm?: boolean;
  /**
   * Token ids for the row-sparse embedding path. Default: the int64 forward argument
   * named `input_ids`, `token_ids`, `tokens` or `ids` when exactly one is, else the only
   * int64 argument; with `sparse: 'auto'` also the first argument when it is int64 (its
   * rows are checked against the gradient first).
   */
  tokenIds?: Tensor;
}

const NATIVE_LOSS = { crossEntropy: 'cross_entropy', bceWithLogits: 'bce_with_logits', mse: 'mse', model: 'model' } as const;
const TRAINER_OPTIONS = new Checker(trainerSchema());

/**
 * Checks Trainer options against the schema and fills in their defaults; errors are
 * TypeError (RangeError for a number out of range) naming `where` and the option. A bigint
 * `attack.seed` and `loss.classWeights` (a Tensor), which JSON cannot hold, are checked
 * here and kept as they are.
 */
export function resolveTrainerOptions(options: unknown, where = 'Trainer'): ResolvedTrainerOptions & { loss: { classWeights?: Tensor }; attack: { seed: number | bigint } } {
  if (options === undefined) options = {};
  if (!is.isPlainObject(options)) throw is.invalidType(where, 'options', 'an object', options);
  const o: Record<string, unknown> = { ...options };
  let seed: bigint | undefined;
  if (is.isPlainObject(o.attack) && typeof o.attack.seed === 'bigint') {
    seed = is.uint64(`${where}: attack`, 'seed', o.attack.seed) as bigint;
    o.attack = { ...o.attack, seed: 0 };
  }
  let classWeights: Tensor | undefined;
  if (is.isPlainObject(o.loss) && o.loss.classWeights !== undefined) {
    const { classWeights: w, ...rest } = o.loss;
    if (!(w instanceof Tensor)) throw is.invalidType(`${where}: loss`, 'classWeights', 'a Tensor', w);
    classWeights = w;
    o.loss = rest;
  }
  if (is.isPlainObject(o.loss) && o.loss.type === 'model' && (o.loss.labelSmoothing !== undefined || classWeights !== undefined)) {
    throw new TypeError(`${where}: loss: labelSmoothing and classWeights are for the losses the trainer computes, not type 'model'`);
  }
  const { value, issue } = TRAINER_OPTIONS.resolve(o);
  if (issue) throw apiError(where, issue);
  const groups = (value as ResolvedTrainerOptions).optimizer.groups;
  groups.forEach((g, k) => {
    if (g.momentum !== undefined && (value as ResolvedTrainerOptions).optimizer.type !== 'sgd') {
      throw new TypeError(`${where}: optimizer.groups[${k}]: momentum is for SGD only`);
    }
  });
  const r = value as ResolvedTrainerOptions & { loss: { classWeights?: Tensor }; attack: { seed: number | bigint } };
  if (seed !== undefined) (r.attack as { seed: number | bigint }).seed = seed;
  if (classWeights) r.loss.classWeights = classWeights;
  return r;
}

/** The loss as the addon reads it (native loss names, classWeights as a handle). */
function nativeLoss(loss: ResolvedTrainerOptions['loss'] & { classWeights?: Tensor }): Record<string, unknown> {
  const { classWeights, type, ...rest } = loss;
  return { ...rest, type: NATIVE_LOSS[type], ...(classWeights ? { classWeights: classWeights.handle } : {}) };
}

/** @internal The loss as the addon reads it, from loss options (evaluate() of a Module). */
export function lossSpec(loss: unknown, where = 'evaluate'): Record<string, unknown> {
  return nativeLoss(resolveTrainerOptions({ loss }, where).loss);
}

/**
 * Trains a {@link Module} with plain training, DropAttack or one of the methods users
 * compare it with. Each `step()` is one native call on the thread pool: the clean pass,
 * every attack pass, the exact restores and the optimizer step. The event loop stays free
 * meanwhile; a second call while a step runs on the same module is refused.
 *
 * A step runs the module in training mode (dropout on, BatchNorm normalizing with batch
 * statistics and updating its running ones) and {@link evaluate} in eval mode, whatever
 * mode the module was saved in; each submodule's own mode is put back afterwards, as
 * Lightning does. See {@link TrainerOptions.batchNormStats} for the attack passes.
 */
export class Trainer {
  /** @internal */
  readonly handle: NativeTrainer;
  /** The module it trains. */
  readonly module: Module;
  /** @internal The loss as the addon reads it (evaluate() uses the same). */
  readonly lossSpec: Record<string, unknown>;
  /** @internal */
  readonly autocast: 'off' | 'bf16';
  /** The process group of distributed training, or null. */
  readonly group: ProcessGroup | null = null;
  /**
   * Resolves when the Trainer is ready to step: at once in one process; with
   * `distributed`, once rank 0's parameters have reached every rank (step() waits for it).
   */
  readonly ready: Promise<void> = Promise.resolve();

  constructor(module: Module, options: TrainerOptions = {}) {
    if (!(module instanceof Module)) throw is.invalidType('Trainer', 'module', 'a Module', module);
    let distributed: { group: ProcessGroup; direction: string; bucketBytes: number; overlap: boolean } | null = null;
    if (is.isPlainObject(options) && options.distributed !== undefined) {
      const where = 'Trainer: distributed';
      const { distributed: given, ...rest } = options;
      options = rest;
      const d = is.options<DistributedTrainerOptions>(where, given, ['group', 'direction', 'bucketMB', 'overlap']);
      if (!(d.group instanceof ProcessGroup)) throw is.invalidType(where, 'group', 'a ProcessGroup', d.group);
      d.group.live(where);
      const direction = d.direction === undefined ? 'local' : is.oneOf(where, 'direction', d.direction, ['local', 'allreduced'] as const);
      const mb = d.bucketMB === undefined ? 25 : is.finite(where, 'bucketMB', d.bucketMB);
      if (!(mb > 0) || mb > 1 << 20) throw is.invalidRange(where, 'bucketMB', 'in (0, 1048576]', d.bucketMB);
      const overlap = d.overlap === undefined ? true : is.boolean(where, 'overlap', d.overlap);
      distributed = { group: d.group, direction, bucketBytes: Math.max(1, Math.round(mb * 1024 * 1024)), overlap };
    }
    const o = resolveTrainerOptions(options);
    this.module = module;
    this.lossSpec = nativeLoss(o.loss);
    this.autocast = o.autocast;
    // The engine gets every field (the binding holds no defaults); targets as a list.
    const attack = { ...o.attack, groups: o.attack.groups.map((g) => ({ ...g, targets: typeof g.targets === 'string' ? [g.targets] : g.targets })) };
    const optimizer = { ...o.optimizer, groups: o.optimizer.groups.map((g) => ({ ...g, params: typeof g.params === 'string' ? [g.params] : g.params })) };
    this.handle = native.trainerNew(module.handle, optimizer, attack, this.lossSpec, {
      autocast: o.autocast,
      freezeBuffersInAttack: o.batchNormStats === 'clean-pass',
    });
    if (distributed !== null) {
      this.group = distributed.group;
      const ready = native.trainerSetDistributed(this.handle, distributed.group.live('Trainer'), {
        direction: distributed.direction,
        bucketBytes: distributed.bucketBytes,
        overlap: distributed.overlap,
      });
      ready.catch(() => undefined); // reported by every step (and by awaiting ready)
      this.ready = ready;
    }
  }

  /**
   * Runs one training step on a batch. `inputs` are the model's forward arguments (by
   * position or by name; see {@link ForwardInputs}); `target` is what the loss compares
   * the output with, and may be omitted (or null) with loss type `'model'`.
   */
  step(inputs: ForwardInputs, target?: Tensor | null, options?: StepOptions): Promise<StepResult> {
    if (this.group !== null) return this.ready.then(() => rejecting(() => this.startStep(inputs, target, options)));
    return rejecting(() => this.startStep(inputs, target, options));
  }

  /** @internal Whether the trainer's loss is the model's own. */
  get modelLoss(): boolean {
    return this.lossSpec.type === 'model';
  }

  private startStep(inputs: ForwardInputs, target: Tensor | null | undefined, options?: StepOptions): Promise<StepResult> {
    const where = 'Trainer.step';
    if (Array.isArray(inputs) && inputs.length === 0) throw is.invalidType(where, 'inputs', 'a Tensor or a non-empty array of forward arguments', inputs);
    const args = nativeInputs(where, inputs);
    if (target === undefined || target === null) {
      if (!this.modelLoss) throw is.invalidType(where, 'target', `a Tensor (loss type '${String(this.lossSpec.type)}' compares the output with it)`, target);
    } else if (!(target instanceof Tensor)) {
      throw is.invalidType(where, 'target', 'a Tensor', target);
    }
    const o = is.options<StepOptions>(where, options, ['lr', 'clipGradNorm', 'accumulate', 'lossScale', 'timePhases', 'gradNorm', 'tokenIds']);
    const native_: Record<string, unknown> = {};
    if (o.lr !== undefined) native_.lr = is.inRange(where, 'lr', o.lr, 0, Number.MAX_VALUE);
    if (o.clipGradNorm !== undefined) {
      native_.clipGradNorm = is.finite(where, 'clipGradNorm', o.clipGradNorm);
      if ((native_.clipGradNorm as number) <= 0) throw is.invalidRange(where, 'clipGradNorm', '> 0', o.clipGradNorm);
    }
    if (o.accumulate !== undefined) native_.accumulate = is.boolean(where, 'accumulate', o.accumulate);
    if (o.lossScale !== undefined) native_.lossScale = is.finite(where, 'lossScale', o.lossScale);
    if (o.timePhases !== undefined) native_.timePhases = is.boolean(where, 'timePhases', o.timePhases);
    if (o.gradNorm !== undefined) native_.gradNorm = is.boolean(where, 'gradNorm', o.gradNorm);
    if (o.tokenIds !== undefined) {
      if (!(o.tokenIds instanceof Tensor)) throw is.invalidType(where, 'tokenIds', 'a Tensor', o.tokenIds);
      native_.tokenIds = o.tokenIds.handle;
    }
    return native.trainerStep(this.handle, args, target instanceof Tensor ? target.handle : null, native_);
  }

  /** Optimizer steps taken (the step index of the mask counters). */
  get globalStep(): number {
    return native.trainerInfo(this.handle).globalStep;
  }
  /** Sets the step count (e.g. when resuming), which the mask counters follow. */
  set globalStep(step: number) {
    native.trainerSetGlobalStep(this.handle, is.integer('Trainer.globalStep', 'step', step, 0));
  }

  /** Writes the optimizer's state (moments, momentum buffers) and the global step to a file. */
  saveState(path: string): Promise<void> {
    return rejecting(() => {
      if (typeof path !== 'string' || path.length === 0) throw is.invalidType('Trainer.saveState', 'path', 'a file path', path);
      return native.trainerSaveState(this.handle, path);
    });
  }

  /** Restores what {@link saveState} wrote. */
  loadState(path: string): Promise<void> {
    return rejecting(() => {
      if (typeof path !== 'string' || path.length === 0) throw is.invalidType('Trainer.loadState', 'path', 'a file path', path);
      return native.trainerLoadState(this.handle, path);
    });
  }

  /** The resolved targets of each attack group. */
  get targets(): string[][] {
    return native.trainerInfo(this.handle).targets;
  }

  /** The attack method. */
  get method(): AttackMethod {
    return native.trainerInfo(this.handle).method as AttackMethod;
  }

  /** True after {@link dispose}, or after its module was disposed. */
  get isDisposed(): boolean {
    return native.trainerIsDisposed(this.handle);
  }

  /**
   * Frees the optimizer state (and the class weights) now; the module stays as it is.
   * Refused with a `TorchError` while a step or another call runs on the module: await
   * it first. Further use throws a `TorchError`; a second call does nothing.
   */
  dispose(): void {
    native.trainerDispose(this.handle);
  }

  /** {@link dispose}, for `using trainer = new Trainer(...)`. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * Native bytes the trainer holds besides the module: optimizer state and class weights.
   * Refused with a `TorchError` while a call runs on the module.
   */
  memory(): TrainerMemory {
    return native.trainerMemory(this.handle);
  }
}
