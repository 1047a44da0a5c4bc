import * as is from './is';
import { rejecting } from './errors';
import { Module } from './module';
import { native, AttackMethodInfo, NativeTrainer, StepResult } from './native';

export type { StepResult } from './native';
import { Tensor } from './tensor';

/** Training methods; see docs/methods.md for their exact definitions. */
export type AttackMethod = 'none' | 'dropattack' | 'fgm' | 'pgd' | 'freelb' | 'awp' | 'sam' | 'asam';

/** The engine's methods (native/engine/methods/) and the rules of their settings. */
const METHODS: ReadonlyMap<string, Readonly<AttackMethodInfo>> = new Map(
  native.attackMethods().map((m) => [m.name, Object.freeze({ ...m, fields: [...m.fields], groupFields: [...m.groupFields] })]),
);
/** Every method the engine has, in the order of docs/methods.md. */
export const ATTACK_METHODS: readonly AttackMethod[] = Object.freeze([...METHODS.keys()] as AttackMethod[]);

/** A method's rules as the engine states them (which settings it reads, what it needs). */
export function attackMethodInfo(method: string): Readonly<AttackMethodInfo> | undefined {
  return METHODS.get(method);
}

/** One attack group. */
export interface AttackGroup {
  /**
   * What to attack: parameter names, globs (`rnn.weight_*`), regexes written `/…/`, or
   * `'input'` for the batch's first (float) input. A target matching nothing is an error
   * that lists the parameters.
   */
  targets: string | string[];
  /** Radius of the step (absolute, or relative to ‖w‖ with `relative`). */
  epsilon: number;
  /** DropAttack: probability that an element is attacked. Default 1. */
  p?: number;
  /** Radius epsilon · ‖w‖ instead of epsilon. Default false. */
  relative?: boolean;
  /**
   * Row-sparse perturbation of embedding tables. `'auto'` (default) uses it for 2-D
   * targets named like an embedding (`…embed….weight`) when the batch's first input holds
   * token ids, after checking once that the gradient vanishes outside those rows.
   */
  sparse?: 'auto' | 'on' | 'off';
}

/** The attack of a {@link Trainer}. */
export interface AttackConfig {
  method: AttackMethod;
  groups?: AttackGroup[];
  /** Attack steps per batch (DropAttack, PGD, FreeLB). Default 1. */
  k?: number;
  /** Step size (PGD, FreeLB). */
  alpha?: number;
  /** Radius (SAM, ASAM). Default 0.05. */
  rho?: number;
  /** ASAM's η. Default 0.01. */
  eta?: number;
  /** Key of the mask generator. Default 0. */
  seed?: number | bigint;
}

/** Optimizer settings. */
export interface OptimizerConfig {
  type: 'sgd' | 'adam' | 'adamw';
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  dampening?: number;
  /** L2 penalty (SGD, Adam) or decoupled decay (AdamW, default 0.01). */
  weightDecay?: number;
  betas?: [number, number];
  eps?: number;
  amsgrad?: boolean;
}

/** The loss between the model's output and the batch's target (mean over the batch). */
export interface LossConfig {
  type: 'crossEntropy' | 'bceWithLogits' | 'mse';
  labelSmoothing?: number;
  classWeights?: Tensor;
}

export interface TrainerOptions {
  optimizer: OptimizerConfig;
  /** Default: plain training (`{ method: 'none' }`). */
  attack?: AttackConfig;
  /** Default: cross-entropy. */
  loss?: LossConfig;
  /**
   * `'bf16'`: every forward pass (clean and adversarial) runs under LibTorch's autocast to
   * bfloat16 on the parameters' device (CUDA, or CPU where LibTorch supports it); the
   * loss, the gradients, the perturbations and the optimizer stay in the parameters' own
   * dtype (fp32 master weights). Default `'off'`.
   */
  autocast?: 'off' | 'bf16';
}

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
  /** Token ids for the row-sparse embedding path; default: the first input when it is int64. */
  tokenIds?: Tensor;
}

const LOSS_TYPES = { crossEntropy: 'cross_entropy', bceWithLogits: 'bce_with_logits', mse: 'mse' } as const;

function validateAttack(attack: unknown): Record<string, unknown> {
  const where = 'Trainer: attack';
  const a = is.options<AttackConfig>(where, attack, ['method', 'groups', 'k', 'alpha', 'rho', 'eta', 'seed']);
  const method = is.oneOf(where, 'method', a.method, ATTACK_METHODS);
  const info = METHODS.get(method) as AttackMethodInfo;
  const out: Record<string, unknown> = { method };
  if (a.k !== undefined) out.k = is.integer(where, 'k', a.k, 1);
  if (a.alpha !== undefined) {
    out.alpha = is.finite(where, 'alpha', a.alpha);
    if ((out.alpha as number) <= 0) throw is.invalidRange(where, 'alpha', '> 0', a.alpha);
  } else if (info.needsAlpha) {
    throw new TypeError(`${where}: alpha (the step size) is required for ${method}`);
  }
  if (a.rho !== undefined) out.rho = is.inRange(where, 'rho', a.rho, 0, Number.MAX_VALUE);
  if (a.eta !== undefined) out.eta = is.inRange(where, 'eta', a.eta, 0, Number.MAX_VALUE);
  if (a.seed !== undefined) out.seed = is.uint64(where, 'seed', a.seed);
  const groups = a.groups ?? [];
  if (!Array.isArray(groups)) throw is.invalidType(where, 'groups', 'an array', groups);
  if (info.groups === 'forbidden' && groups.length > 0) throw new TypeError(`${where}: groups must be empty for method '${method}'`);
  if (info.needsGroups && groups.length === 0) {
    throw new TypeError(`${where}: groups must list at least one group for method '${method}'`);
  }
  out.groups = groups.map((g, k) => {
    const gw = `Trainer: attack.groups[${k}]`;
    const o = is.options<AttackGroup>(gw, g, ['targets', 'epsilon', 'p', 'relative', 'sparse']);
    const targets = typeof o.targets === 'string' ? [o.targets] : o.targets;
    if (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== 'string' || t.length === 0)) {
      throw is.invalidType(gw, 'targets', 'a name or a non-empty array of names', o.targets);
    }
    if (info.needsEpsilon && o.epsilon === undefined) throw new TypeError(`${gw}: epsilon is required`);
    const epsilon = o.epsilon === undefined ? 0 : is.finite(gw, 'epsilon', o.epsilon);
    if (epsilon < 0) throw is.invalidRange(gw, 'epsilon', '>= 0', o.epsilon);
    return {
      targets,
      epsilon,
      p: o.p === undefined ? 1 : is.inRange(gw, 'p', o.p, 0, 1),
      relative: o.relative === undefined ? false : is.boolean(gw, 'relative', o.relative),
      sparse: o.sparse === undefined ? 'auto' : is.oneOf(gw, 'sparse', o.sparse, ['auto', 'on', 'off'] as const),
    };
  });
  return out;
}

function validateOptimizer(optimizer: unknown): Record<string, unknown> {
  const where = 'Trainer: optimizer';
  const o = is.options<OptimizerConfig>(where, optimizer, ['type', 'lr', 'momentum', 'nesterov', 'dampening', 'weightDecay', 'betas', 'eps', 'amsgrad']);
  const out: Record<string, unknown> = { type: is.oneOf(where, 'type', o.type, ['sgd', 'adam', 'adamw'] as const) };
  if (o.lr === undefined) throw new TypeError(`${where}: lr is required`);
  out.lr = is.inRange(where, 'lr', o.lr, 0, Number.MAX_VALUE);
  for (const key of ['momentum', 'dampening', 'weightDecay', 'eps'] as const) {
    if (o[key] !== undefined) out[key] = is.inRange(where, key, o[key], 0, Number.MAX_VALUE);
  }
  for (const key of ['nesterov', 'amsgrad'] as const) {
    if (o[key] !== undefined) out[key] = is.boolean(where, key, o[key]);
  }
  if (o.betas !== undefined) {
    if (!Array.isArray(o.betas) || o.betas.length !== 2) throw is.invalidType(where, 'betas', 'two numbers in [0, 1)', o.betas);
    out.betas = o.betas.map((b, k) => {
      const v = is.inRange(where, `betas[${k}]`, b, 0, 1);
      if (v >= 1) throw is.invalidRange(where, `betas[${k}]`, 'in [0, 1)', b);
      return v;
    });
  }
  return out;
}

function validateLoss(loss: unknown): Record<string, unknown> {
  const where = 'Trainer: loss';
  if (loss === undefined) return { type: 'cross_entropy' };
  const o = is.options<LossConfig>(where, loss, ['type', 'labelSmoothing', 'classWeights']);
  const type = is.oneOf(where, 'type', o.type, Object.keys(LOSS_TYPES) as (keyof typeof LOSS_TYPES)[]);
  const out: Record<string, unknown> = { type: LOSS_TYPES[type] };
  if (o.labelSmoothing !== undefined) out.labelSmoothing = is.inRange(where, 'labelSmoothing', o.labelSmoothing, 0, 1);
  if (o.classWeights !== undefined) {
    if (!(o.classWeights instanceof Tensor)) throw is.invalidType(where, 'classWeights', 'a Tensor', o.classWeights);
    out.classWeights = o.classWeights.handle;
  }
  return out;
}

/**
 * Trains a {@link Module} with plain training, DropAttack or one of the methods users
 * compare it with. Each `step()` is one native call on the thread pool: the clean pass,
 * every attack pass, the exact restores and the optimizer step. The event loop stays free
 * meanwhile; a second call while a step runs on the same module is refused.
 */
export class Trainer {
  /** @internal */
  readonly handle: NativeTrainer;
  readonly module: Module;

  constructor(module: Module, options: TrainerOptions) {
    if (!(module instanceof Module)) throw is.invalidType('Trainer', 'module', 'a Module', module);
    const o = is.options<TrainerOptions>('Trainer', options, ['optimizer', 'attack', 'loss', 'autocast']);
    if (o.optimizer === undefined) throw new TypeError('Trainer: optimizer is required');
    this.module = module;
    this.handle = native.trainerNew(
      module.handle,
      validateOptimizer(o.optimizer),
      validateAttack(o.attack ?? { method: 'none' }),
      validateLoss(o.loss),
      { autocast: o.autocast === undefined ? 'off' : is.oneOf('Trainer', 'autocast', o.autocast, ['off', 'bf16'] as const) },
    );
  }

  /** Runs one training step on a batch: `inputs` are the model's forward arguments. */
  step(inputs: Tensor | Tensor[], target: Tensor, options?: StepOptions): Promise<StepResult> {
    return rejecting(() => this.startStep(inputs, target, options));
  }

  private startStep(inputs: Tensor | Tensor[], target: Tensor, options?: StepOptions): Promise<StepResult> {
    const where = 'Trainer.step';
    const list = Array.isArray(inputs) ? inputs : [inputs];
    if (list.length === 0) throw is.invalidType(where, 'inputs', 'a Tensor or a non-empty array of Tensors', inputs);
    list.forEach((t, k) => {
      if (!(t instanceof Tensor)) throw is.invalidType(where, `inputs[${k}]`, 'a Tensor', t);
    });
    if (!(target instanceof Tensor)) throw is.invalidType(where, 'target', 'a Tensor', target);
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
    return native.trainerStep(this.handle, list.map((t) => t.handle), target.handle, native_);
  }

  /** Optimizer steps taken (the step index of the mask counters). */
  get globalStep(): number {
    return native.trainerInfo(this.handle).globalStep;
  }
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
}
