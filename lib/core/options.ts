// The schema of the Trainer's options (optimizer, loss, attack, autocast): the one
// definition of their types, checks and defaults, shared by `new Trainer()` and the run
// configuration (lib/app/run.ts). The engine (native/engine/engine.h) has the same
// defaults and limits; engineDefaults() and test/schema.test.ts keep the two in step.
//
// Adding an option: add its field here (type, range, `default`, `description`), read it
// in native/binding/trainer.cc (no default there), and give the engine struct the same
// default; `npm run schema` then regenerates dropattack.schema.json and docs/config.md.
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
export const LOSS_TYPES = ['crossEntropy', 'bceWithLogits', 'mse'] as const;

/** Optimizer settings. */
export const optimizerSchema = (extra: Record<string, unknown> = {}) =>
  Type.Object(
    {
      type: defaulted(StringEnum(OPTIMIZER_TYPES, { default: 'adam', description: 'the optimizer' })),
      lr: defaulted(Type.Number({ minimum: 0, default: 1e-3, description: 'learning rate' })),
      momentum: defaulted(Type.Number({ minimum: 0, default: 0, description: 'SGD momentum' })),
      nesterov: defaulted(Type.Boolean({ default: false, description: 'SGD: Nesterov momentum (needs momentum > 0 and dampening 0)' })),
      dampening: defaulted(Type.Number({ minimum: 0, default: 0, description: 'SGD: dampening of the momentum' })),
      weightDecay: defaulted(
        Type.Number({ minimum: 0, description: 'L2 penalty (SGD, Adam) or decoupled decay (AdamW)' }),
      ),
      betas: defaulted(
        Type.Tuple([Type.Number({ minimum: 0, exclusiveMaximum: 1 }), Type.Number({ minimum: 0, exclusiveMaximum: 1 })], {
          default: [0.9, 0.999],
          description: 'Adam, AdamW: the moments’ decay rates, each in [0, 1)',
        }),
      ),
      eps: defaulted(Type.Number({ exclusiveMinimum: 0, default: 1e-8, description: 'Adam, AdamW: added to the denominator' })),
      amsgrad: defaulted(Type.Boolean({ default: false, description: 'Adam, AdamW: the AMSGrad variant' })),
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
      type: defaulted(StringEnum(LOSS_TYPES, { default: 'crossEntropy', description: 'the loss' })),
      labelSmoothing: defaulted(Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'crossEntropy: label smoothing' })),
    },
    { additionalProperties: false, description: 'the loss (classWeights, a Tensor, is an API option)', ...extra },
  );

/** One attack group. */
export const groupSchema = () =>
  Type.Object(
    {
      targets: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
        errorMessage: 'must be a name or a non-empty array of names',
        description: "what to attack: parameter names, globs (rnn.weight_*), regexes written /…/, or 'input' for the batch's first (float) input",
      }),
      epsilon: Type.Optional(Type.Number({ minimum: 0, description: 'radius of the step (absolute, or relative to ‖w‖ with relative); required by the methods that read it' })),
      p: defaulted(Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'DropAttack: probability that an element is attacked' })),
      relative: defaulted(Type.Boolean({ default: false, description: 'radius epsilon · ‖w‖ instead of epsilon' })),
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
  method: defaulted(
    StringEnum(METHOD_INFO.map((i) => i.name) as unknown as readonly ['none', 'dropattack', 'fgm', 'pgd', 'freelb', 'awp', 'sam', 'asam'], {
      default: 'none',
      description: 'the training method (docs/methods.md)',
    }),
  ),
  groups: defaulted(Type.Array(groupSchema(), { maxItems: MAX_GROUPS, default: [], description: 'the attack groups' })),
  k: defaulted(Type.Integer({ minimum: 1, maximum: MAX_ATTACK_STEPS, default: 1, description: 'attack steps per batch (DropAttack, PGD, FreeLB)' })),
  alpha: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'step size (PGD, FreeLB; required by them)' })),
  rho: defaulted(Type.Number({ minimum: 0, default: 0.05, description: 'radius (SAM, ASAM)' })),
  eta: defaulted(Type.Number({ minimum: 0, default: 0.01, description: 'ASAM’s η' })),
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

/** The options of `new Trainer()` that JSON can hold (loss.classWeights, a Tensor, aside). */
export const trainerSchema = () =>
  Type.Object(
    {
      optimizer: defaulted(optimizerSchema({ default: {} })),
      attack: defaulted(attackSchema({ default: {} })),
      loss: defaulted(lossSchema({ default: {} })),
      autocast: defaulted(StringEnum(AUTOCAST, { default: 'off', description: "'bf16': forward passes under autocast to bfloat16" })),
    },
    { additionalProperties: false },
  );
