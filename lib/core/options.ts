// The schema of the Trainer's options (optimizer, loss, attack, autocast): the one
// definition of their types, checks and defaults, shared by `new Trainer()` and the run
// configuration (lib/app/run.ts). The engine (native/engine/engine.h) has the same
// defaults and limits; engineDefaults() and test/schema.test.ts keep the two in step.
//
// Adding an option: add its field here (type, range, `default`, `description`, and a doc
// comment: the option types are the schema's, and TypeDoc documents their fields from
// these comments), read it in native/binding/trainer.cc (no default there), and give the
// engine struct the same default; `npm run schema` then regenerates
// dropattack.schema.json and docs/config.md.
import { Type } from '@sinclair/typebox';

import { native, AttackMethodInfo } from './native';
import { defaulted, StringEnum } from './schema';

/** The engine's methods (native/engine/methods/) and the rules of their settings. */
export const METHOD_INFO: readonly Readonly<AttackMethodInfo>[] = Object.freeze(
  native.attackMethods().map((m) => Object.freeze({ ...m, fields: [...m.fields], groupFields: [...m.groupFields] })),
);

/** Most attack steps per batch over every method (the engine's kMaxAttackSteps). */
export const MAX_ATTACK_STEPS = 1000;
/** Most attack groups (the engine's kMaxGroups). */
export const MAX_GROUPS = 255;

/** The optimizers the engine builds. */
export const OPTIMIZER_TYPES = ['sgd', 'adam', 'adamw'] as const;
/** The losses, as the options name them. */
export const LOSS_TYPES = ['crossEntropy', 'bceWithLogits', 'mse', 'model'] as const;

/** Settings of a group of parameters chosen by name (optimizer.groups). */
export const parameterGroupSchema = () =>
  Type.Object(
    {
      /** Parameter names, globs or `/regexes/`, as attack targets; a parameter joins the first group that matches it. */
      params: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
        errorMessage: 'must be a name or a non-empty array of names',
        description: 'parameter names, globs or /regexes/, as attack targets; a parameter joins the first group that matches it',
      }),
      /** This group's learning rate (a step's `lr` scales it by the same ratio as the optimizer's). Default: the optimizer's. */
      lr: Type.Optional(Type.Number({ minimum: 0, description: "this group's learning rate (a step's lr scales it by the optimizer's ratio)" })),
      /** This group's weight decay. Default: the optimizer's. */
      weightDecay: Type.Optional(Type.Number({ minimum: 0, description: "this group's weight decay" })),
      /** This group's momentum (SGD only). Default: the optimizer's. */
      momentum: Type.Optional(Type.Number({ minimum: 0, description: "this group's momentum (SGD only)" })),
    },
    { additionalProperties: false },
  );

/** Optimizer settings. */
export const optimizerSchema = (extra: Record<string, unknown> = {}) =>
  Type.Object(
    {
      /** The optimizer: `'sgd'`, `'adam'` (default) or `'adamw'`. */
      type: defaulted(StringEnum(OPTIMIZER_TYPES, { default: 'adam', description: 'the optimizer' })),
      /** Learning rate. Default 1e-3. */
      lr: defaulted(Type.Number({ minimum: 0, default: 1e-3, description: 'learning rate' })),
      /** SGD momentum. Default 0. */
      momentum: defaulted(Type.Number({ minimum: 0, default: 0, description: 'SGD momentum' })),
      /** SGD: Nesterov momentum (needs momentum > 0 and dampening 0). Default false. */
      nesterov: defaulted(Type.Boolean({ default: false, description: 'SGD: Nesterov momentum (needs momentum > 0 and dampening 0)' })),
      /** SGD: dampening of the momentum. Default 0. */
      dampening: defaulted(Type.Number({ minimum: 0, default: 0, description: 'SGD: dampening of the momentum' })),
      /** L2 penalty (SGD, Adam) or decoupled decay (AdamW). Default 0; 0.01 for AdamW. */
      weightDecay: defaulted(
        Type.Number({ minimum: 0, description: 'L2 penalty (SGD, Adam) or decoupled decay (AdamW)' }),
      ),
      /** Adam, AdamW: the moments' decay rates, each in [0, 1). Default `[0.9, 0.999]`. */
      betas: defaulted(
        Type.Tuple([Type.Number({ minimum: 0, exclusiveMaximum: 1 }), Type.Number({ minimum: 0, exclusiveMaximum: 1 })], {
          default: [0.9, 0.999],
          description: 'Adam, AdamW: the moments’ decay rates, each in [0, 1)',
        }),
      ),
      /** Adam, AdamW: added to the denominator. Default 1e-8. */
      eps: defaulted(Type.Number({ exclusiveMinimum: 0, default: 1e-8, description: 'Adam, AdamW: added to the denominator' })),
      /** Adam, AdamW: the AMSGrad variant. Default false. */
      amsgrad: defaulted(Type.Boolean({ default: false, description: 'Adam, AdamW: the AMSGrad variant' })),
      /** Per-group settings by parameter name (`ParameterGroup`; e.g. no weight decay on biases and norms). Default none. */
      groups: defaulted(Type.Array(parameterGroupSchema(), { default: [], description: 'per-group settings by parameter name (e.g. no weight decay on biases and norms)' })),
    },
    {
      additionalProperties: false,
      description: 'optimizer settings',
      ...extra,
      // AdamW's decay is decoupled and on by default, as in PyTorch (engine: DefaultWeightDecay).
      allOf: [
        {
          if: { properties: { type: { const: 'adamw' } }, required: ['type'] },
          then: { properties: { weightDecay: { default: 0.01 } } },
          else: { properties: { weightDecay: { default: 0 } } },
        },
      ],
    },
  );

/** The loss between the model's output and the batch's target (mean over the batch); JSON settings. */
export const lossSchema = (extra: Record<string, unknown> = {}) =>
  Type.Object(
    {
      /** The loss: `'crossEntropy'` (default), `'bceWithLogits'`, `'mse'`, or `'model'`: the loss the model's forward returns (a scalar, a tuple's first item or a dict's `'loss'`). */
      type: defaulted(StringEnum(LOSS_TYPES, { default: 'crossEntropy', description: "the loss; 'model': the loss the model's forward returns (a scalar, a tuple's first item or a dict's 'loss')" })),
      /** crossEntropy: label smoothing, in [0, 1]. Default 0. */
      labelSmoothing: defaulted(Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'crossEntropy: label smoothing' })),
      /** crossEntropy: the target value that counts for nothing (padding, unmasked tokens), as PyTorch's. Default -100. */
      ignoreIndex: defaulted(
        Type.Integer({ minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER, default: -100, description: 'crossEntropy: the target value that counts for nothing (padding, unmasked tokens), as PyTorch' }),
      ),
    },
    { additionalProperties: false, description: 'the loss (classWeights, a Tensor, is an API option)', ...extra },
  );

/** One attack group. */
export const groupSchema = () =>
  Type.Object(
    {
      /** What to attack: parameter names, globs (`rnn.weight_*`), regexes written `/…/`, or a float input of the model: `'input'` (forward's first argument), `'input[k]'` (its k-th) or `'input:name'`. */
      targets: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
        errorMessage: 'must be a name or a non-empty array of names',
        description: "what to attack: parameter names, globs (rnn.weight_*), regexes written /…/, or a float input of the model: 'input' (forward's first argument), 'input[k]' (its k-th) or 'input:name'",
      }),
      /** Radius of the step (absolute, or relative to ‖w‖ with `relative`); required by the methods that read it. */
      epsilon: Type.Optional(Type.Number({ minimum: 0, description: 'radius of the step (absolute, or relative to ‖w‖ with relative); required by the methods that read it' })),
      /** DropAttack: probability that an element is attacked, in [0, 1]. Default 1. */
      p: defaulted(Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'DropAttack: probability that an element is attacked' })),
      /** Radius `epsilon · ‖w‖` instead of `epsilon`. Default false. */
      relative: defaulted(Type.Boolean({ default: false, description: 'radius epsilon · ‖w‖ instead of epsilon' })),
      /** Row-sparse perturbation of embedding tables: `'auto'` (default): 2-D targets named like an embedding when the batch's first input holds token ids; `'on'`; `'off'`. */
      sparse: defaulted(
        StringEnum(['auto', 'on', 'off'] as const, {
          default: 'auto',
          description: "row-sparse perturbation of embedding tables; 'auto': 2-D targets named like an embedding when the batch's first input holds token ids",
        }),
      ),
    },
    { additionalProperties: false },
  );

/** The attack's fields (method, groups, k, alpha, rho, eta, seed). */
export const attackProperties = () => ({
  /** The training method (docs/methods.md). Default `'none'`. */
  method: defaulted(
    StringEnum(METHOD_INFO.map((i) => i.name) as unknown as readonly ['none', 'dropattack', 'fgm', 'pgd', 'freelb', 'awp', 'sam', 'asam'], {
      default: 'none',
      description: 'the training method (docs/methods.md)',
    }),
  ),
  /** The attack groups (at most 255). Default none. */
  groups: defaulted(Type.Array(groupSchema(), { maxItems: MAX_GROUPS, default: [], description: 'the attack groups' })),
  /** Attack steps per batch (DropAttack, PGD, FreeLB), in [1, 1000] and at most the method's largest. Default 1. */
  k: defaulted(Type.Integer({ minimum: 1, maximum: MAX_ATTACK_STEPS, default: 1, description: 'attack steps per batch (DropAttack, PGD, FreeLB)' })),
  /** Step size (PGD, FreeLB; required by them). */
  alpha: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'step size (PGD, FreeLB; required by them)' })),
  /** Radius (SAM, ASAM). Default 0.05. */
  rho: defaulted(Type.Number({ minimum: 0, default: 0.05, description: 'radius (SAM, ASAM)' })),
  /** ASAM's η. Default 0.01. */
  eta: defaulted(Type.Number({ minimum: 0, default: 0.01, description: 'ASAM’s η' })),
  /** Key of the mask generator, an integer ≥ 0. Default 0. */
  seed: defaulted(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0, description: 'key of the mask generator (the API also takes a bigint < 2^64)' })),
});

/**
 * Each method's own rules, from the engine's list (attackMethods()): groups forbidden or
 * required, its largest k, alpha and epsilon required. JSON Schema if/then branches, so
 * editors check them too.
 */
export function methodRules(): Record<string, unknown>[] {
  return METHOD_INFO.map((info) => {
    const then: { properties: Record<string, unknown>; required?: string[] } = { properties: {} };
    const groups: Record<string, unknown> = {};
    if (info.groups === 'forbidden') Object.assign(groups, { maxItems: 0, errorMessage: `must be empty for method '${info.name}'` });
    if (info.groups === 'required') Object.assign(groups, { minItems: 1, errorMessage: `must list at least one group for method '${info.name}'` });
    if (info.needsEpsilon) groups.items = { required: ['epsilon'] };
    if (Object.keys(groups).length) then.properties.groups = groups;
    if (info.maxK < MAX_ATTACK_STEPS) then.properties.k = { maximum: info.maxK, errorMessage: `must be ${info.maxK === 1 ? '1' : `at most ${info.maxK}`} for ${info.name}` };
    if (info.needsAlpha) then.required = ['alpha'];
    return { if: { properties: { method: { const: info.name } }, required: ['method'] }, then };
  });
}

/** The attack of a Trainer: a method and its settings. */
export const attackSchema = (extra: Record<string, unknown> = {}) =>
  Type.Object(attackProperties(), { additionalProperties: false, allOf: methodRules(), description: 'the attack (docs/methods.md)', ...extra });

/** Autocast settings of the forward passes. */
export const AUTOCAST = ['off', 'bf16'] as const;

/** What BatchNorm's running statistics see during a step. */
export const BATCH_NORM_STATS = ['every-pass', 'clean-pass'] as const;

/** The options of `new Trainer()` that JSON can hold (loss.classWeights, a Tensor, aside). */
export const trainerSchema = () =>
  Type.Object(
    {
      optimizer: defaulted(optimizerSchema({ default: {} })),
      attack: defaulted(attackSchema({ default: {} })),
      loss: defaulted(lossSchema({ default: {} })),
      autocast: defaulted(StringEnum(AUTOCAST, { default: 'off', description: "'bf16': forward passes under autocast to bfloat16" })),
      batchNormStats: defaulted(
        StringEnum(BATCH_NORM_STATS, {
          default: 'every-pass',
          description: "what BatchNorm's running statistics see: 'every-pass' (the clean and every attack pass, as a PyTorch loop) or 'clean-pass'",
        }),
      ),
    },
    { additionalProperties: false },
  );
