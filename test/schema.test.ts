// The one schema of the options (lib/core/options.ts, lib/app/run.ts): the files made from
// it are up to date, the example configurations pass it (checked by an Ajv of its own on
// the published file), its defaults and limits are the engine's, the engine receives them,
// and its errors keep the project's wording.
import * as fs from 'fs';
import * as path from 'path';
import Ajv from 'ajv';

import { Module, Trainer, manualSeed, tensor } from '../lib';
import { parseRunConfig } from '../lib/app/run';
import { optionReference, publishedSchemaText } from '../lib/app/reference';
import { native } from '../lib/core/native';
import { attackSchema, groupSchema, lossSchema, MAX_ATTACK_STEPS, MAX_GROUPS, METHOD_INFO, optimizerSchema, trainerSchema } from '../lib/core/options';
import { fillDefaults } from '../lib/core/schema';
import { resolveTrainerOptions } from '../lib/core/trainer';

const ROOT = path.join(__dirname, '..');
const EXAMPLES = path.join(ROOT, 'examples', 'configs');

describe('generated files', () => {
  it('dropattack.schema.json is the schema (run `npm run schema` after changing it)', () => {
    expect(fs.readFileSync(path.join(ROOT, 'dropattack.schema.json'), 'utf8')).toBe(publishedSchemaText());
  });

  it('docs/config.md is the schema (run `npm run schema` after changing it)', () => {
    expect(fs.readFileSync(path.join(ROOT, 'docs', 'config.md'), 'utf8')).toBe(optionReference());
  });

  it('the example configurations name the schema and pass it', () => {
    const published = JSON.parse(fs.readFileSync(path.join(ROOT, 'dropattack.schema.json'), 'utf8')) as Record<string, unknown>;
    // Another validator, on the published file, as an editor would read it.
    const check = new Ajv({ strict: false, allErrors: true }).compile(published);
    const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const f of files) {
      const config = JSON.parse(fs.readFileSync(path.join(EXAMPLES, f), 'utf8')) as Record<string, unknown>;
      expect(config.$schema).toBe('../../dropattack.schema.json');
      expect(fs.existsSync(path.resolve(EXAMPLES, config.$schema as string))).toBe(true);
      expect({ file: f, valid: check(config), errors: check.errors ?? null }).toEqual({ file: f, valid: true, errors: null });
      const parsed = parseRunConfig(config) as unknown as Record<string, unknown>;
      expect(parsed.$schema).toBeUndefined();
    }
    // The published file rejects what the loader rejects.
    const bad = { ...JSON.parse(fs.readFileSync(path.join(EXAMPLES, files[0]), 'utf8')), attack: { method: 'pgd', groups: [{ targets: 'x', epsilon: 1 }] } };
    expect(check(bad)).toBe(false);
    expect(() => parseRunConfig(bad)).toThrow(/config\.attack\.alpha: is required for method 'pgd'/);
  });
});

describe('defaults and limits agree with the engine', () => {
  const engine = native.engineDefaults();

  it('optimizer', () => {
    const o = fillDefaults(optimizerSchema(), {});
    const { weightDecay, ...rest } = o;
    const { weightDecay: engineDecay, ...engineRest } = engine.optimizer;
    expect(rest).toEqual(engineRest);
    expect(weightDecay).toBe(0);
    for (const type of ['sgd', 'adam', 'adamw']) {
      expect([type, fillDefaults(optimizerSchema(), { type }).weightDecay]).toEqual([type, (engineDecay as Record<string, number>)[type]]);
    }
    expect(engine.optimizer).toMatchObject({ type: 'adam', lr: 1e-3, weightDecay: { sgd: 0, adam: 0, adamw: 0.01 } });
  });

  it('attack, groups and loss', () => {
    const a = fillDefaults(attackSchema(), {});
    expect(a).toEqual(Object.fromEntries(Object.entries(engine.attack).filter(([, v]) => v !== undefined)));
    expect('alpha' in engine.attack && engine.attack.alpha === undefined && !('alpha' in a)).toBe(true);
    const g = fillDefaults(groupSchema(), { targets: 'x' });
    expect(g).toEqual({ targets: 'x', ...Object.fromEntries(Object.entries(engine.group).filter(([, v]) => v !== undefined)) });
    expect(engine.group.epsilon).toBeUndefined();
    const l = fillDefaults(lossSchema(), {});
    expect({ ...l, type: 'cross_entropy' }).toEqual(engine.loss);
    expect(l.type).toBe('crossEntropy');
  });

  it('limits: k, groups and each method’s largest k', () => {
    const s = attackSchema() as unknown as { properties: Record<string, { maximum?: number; maxItems?: number }> };
    expect(s.properties.k.maximum).toBe(engine.limits.maxK);
    expect(MAX_ATTACK_STEPS).toBe(engine.limits.maxK);
    expect(s.properties.groups.maxItems).toBe(engine.limits.maxGroups);
    expect(MAX_GROUPS).toBe(engine.limits.maxGroups);
    const rules = (attackSchema() as unknown as { allOf: { if: { properties: { method: { const: string } } }; then: { properties: { k?: { maximum: number } } } }[] }).allOf;
    for (const m of METHOD_INFO) {
      const rule = rules.find((r) => r.if.properties.method.const === m.name);
      expect([m.name, rule?.then.properties.k?.maximum ?? MAX_ATTACK_STEPS]).toEqual([m.name, m.maxK]);
    }
  });

  it('the binding takes complete options only: it holds no defaults', () => {
    const module = Module.build({ kind: 'mlp', inputDim: 3, hiddenSizes: [4], numClasses: 2 }, { seed: 1 });
    const full = resolveTrainerOptions({});
    const native_ = (o: object, a: object, l: object, s: object) => native.trainerNew(module.handle, o, a, l, s);
    const loss = { type: 'cross_entropy', labelSmoothing: 0, ignoreIndex: -100 };
    const settings = { autocast: 'off', freezeBuffersInAttack: false };
    expect(() => native_(full.optimizer, full.attack, loss, settings)).not.toThrow();
    expect(() => native_(full.optimizer, full.attack, { type: 'cross_entropy', labelSmoothing: 0 }, settings)).toThrow(/loss\.ignoreIndex is required/);
    expect(() => native_(full.optimizer, full.attack, loss, { autocast: 'off' })).toThrow(/Trainer\.freezeBuffersInAttack is required/);
    expect(() => native_({ type: 'adam', lr: 0.1 }, full.attack, loss, { autocast: 'off' })).toThrow(/optimizer\.momentum is required/);
    expect(() => native_(full.optimizer, { method: 'none' }, loss, { autocast: 'off' })).toThrow(/attack\.k is required/);
    expect(() => native_(full.optimizer, full.attack, {}, { autocast: 'off' })).toThrow(/loss\.type is required/);
    expect(() => native_(full.optimizer, full.attack, loss, {})).toThrow(/Trainer\.autocast is required/);
  });
});

describe('the defaults reach the engine', () => {
  const x = () => tensor([[0.5, -1, 2], [1, 0.25, -0.5], [-2, 1.5, 0]]);
  const y = () => tensor(new BigInt64Array([0n, 1n, 1n]));
  async function trained(options: ConstructorParameters<typeof Trainer>[1]): Promise<number[]> {
    manualSeed(5);
    const module = Module.build({ kind: 'mlp', inputDim: 3, hiddenSizes: [4], numClasses: 2 }, { seed: 1 });
    const t = new Trainer(module, options);
    for (let s = 0; s < 3; s++) await t.step(x(), y());
    return module.parameters().flatMap((p) => (p.toArray() as number[][]).flat(2));
  }

  it('no options: Adam, lr 1e-3; adamw: weight decay 0.01', async () => {
    const none = await trained({});
    expect(none).toEqual(await trained({ optimizer: { type: 'adam', lr: 1e-3, weightDecay: 0, betas: [0.9, 0.999], eps: 1e-8 } }));
    expect(none).not.toEqual(await trained({ optimizer: { type: 'sgd', lr: 1e-3 } }));
    const adamw = await trained({ optimizer: { type: 'adamw' } });
    expect(adamw).toEqual(await trained({ optimizer: { type: 'adamw', weightDecay: 0.01 } }));
    expect(adamw).not.toEqual(await trained({ optimizer: { type: 'adamw', weightDecay: 0 } }));
  });
});

describe('errors keep the wording', () => {
  const base = JSON.parse(fs.readFileSync(path.join(EXAMPLES, 'mnist.json'), 'utf8')) as Record<string, unknown>;
  const config = (sets: string[]) => () => parseRunConfig(base, sets);

  it('run configurations: config.<field>: expected ..., got ...', () => {
    expect(config(['attack.k=0'])).toThrow(/^config\.attack\.k: expected a value >= 1, got 0$/);
    expect(config(['attack.k=1001'])).toThrow(/^config\.attack\.k: expected a value <= 1000, got 1001$/);
    expect(config(['attack.method=fgm', 'attack.k=2'])).toThrow(/^config\.attack\.k: must be 1 for fgm, got 2$/);
    expect(config(['attack.groups[0].p=2'])).toThrow(/^config\.attack\.groups\[0\]\.p: expected a value <= 1, got 2$/);
    expect(config(['attack.groups[1]={"targets":"conv2.weight"}'])).toThrow(/^config\.attack\.groups\[1\]\.epsilon: is required for method 'dropattack'$/);
    expect(config(['attack.bogus=1'])).toThrow(/^config\.attack\.bogus: unknown field \(known: method, groups, k, alpha, rho, eta, seed\)$/);
    expect(config(['optimizer.type=rmsprop'])).toThrow(/^config\.optimizer\.type: expected one of 'sgd', 'adam', 'adamw', got string 'rmsprop'$/);
    expect(config(['loss.type=hinge'])).toThrow(/^config\.loss\.type: expected one of/);
    expect(config(['compare.methods=[{"label":"a","method":"pgd","groups":[{"targets":"x","epsilon":1}]}]'])).toThrow(/^config\.compare\.methods\[0\]\.alpha: is required for method 'pgd'$/);
    expect(config(['$schema=3'])).toThrow(/^config\.\$schema: expected a string, got number 3$/);
  });

  it('the API: Trainer: <where>: <option> must be ..., got ...', () => {
    const module = Module.build({ kind: 'mlp', inputDim: 3, hiddenSizes: [4], numClasses: 2 }, { seed: 1 });
    const groups = [{ targets: 'fc*', epsilon: 1 }];
    expect(() => new Trainer(module, { attack: { method: 'dropattack', k: 1001, groups } })).toThrow(
      new RangeError('Trainer: attack: k must be an integer in [1, 1000], got number 1001'),
    );
    expect(() => new Trainer(module, { optimizer: { eps: 0 } })).toThrow(new RangeError('Trainer: optimizer: eps must be in (0, ∞), got number 0'));
    expect(() => new Trainer(module, { attack: { method: 'dropattack', groups: [{ targets: [], epsilon: 1 }] } })).toThrow(
      new TypeError('Trainer: attack.groups[0]: targets must be a name or a non-empty array of names, got an array of length 0'),
    );
    expect(() => new Trainer(module, { attack: { method: 'sam', seed: 2n ** 64n } })).toThrow(RangeError);
    expect(new Trainer(module, { attack: { method: 'sam', seed: 2n ** 63n } }).method).toBe('sam');
    expect(() => new Trainer(module, { loss: { classWeights: [1, 2] as never } })).toThrow(/Trainer: loss: classWeights must be a Tensor/);
    expect(() => resolveTrainerOptions({ optimizer: { type: 'sgd', momentum: -1 } })).toThrow(/^Trainer: optimizer: momentum must be in \[0, ∞\), got number -1$/);
    expect(fillDefaults(trainerSchema(), {})).toEqual(resolveTrainerOptions({}));
  });
});
