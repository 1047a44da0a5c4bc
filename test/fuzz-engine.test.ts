// Fuzzes the engine's entry points with a real module and trainer: random option
// objects for trainerNew, random batches and options for trainerStep, random arguments
// for the module functions. Every call must return, or throw / reject with a
// TypeError, RangeError or TorchError; the process must survive; the module must end
// usable and not busy. (moduleSave is left out: random paths would write files.)
import * as path from 'path';

import { mulberry32 } from '../lib/data/random';
import { badThrow } from './helpers/errors';
import { native, NativeModule, NativeTensor } from '../lib/core/native';
import { runReference } from './helpers/reference';

type Fn = (...args: unknown[]) => unknown;
const binding = native as unknown as Record<string, Fn>;

const bad = badThrow;


const SEED = Number(process.env.FUZZ_SEED ?? 0xfa11);

describe('engine fuzz', () => {
  let module: NativeModule;
  const rnd = mulberry32(SEED);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const t = (shape: number[], dtype = 'float32'): NativeTensor =>
    dtype === 'int64' ? native.full(shape, 1, 'int64', 'cpu') : native.randn(shape, dtype, 'cpu', null);

  beforeAll(async () => {
    const ref = runReference({ model: 'mlp', seed: 9, steps: 1, batch: 4, optimizer: { type: 'sgd', lr: 0.1 }, attack: { method: 'none' } });
    module = await native.moduleLoad(path.join(ref.dir, 'model.pt'));
  });

  const values = (): unknown[] => [
    undefined, null, true, 0, -1, 0.5, 1, 3, 1e308, NaN, Infinity, -Infinity, 2 ** 53, 5n, -1n, 2n ** 70n, '', 'sgd', 'adam',
    'adamw', 'dropattack', 'fgm', 'pgd', 'freelb', 'awp', 'sam', 'asam', 'none', 'on', 'off', 'auto', 'input', 'fc1.weight',
    'fc*', '/fc[12]\\.weight/', '/[/', [], [0.9, 0.999], [2, 2], ['fc1.weight'], ['input', 'out.bias'], [1, 'x'], {}, { targets: ['fc1.weight'], epsilon: 1 },
    { targets: 'fc1.weight' }, t([2]), t([4, 6]), t([4], 'int64'),
  ];

  const randomObject = (keys: readonly string[]): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    for (const k of keys) if (rnd() < 0.4) o[k] = pick(values());
    return o;
  };

  const OPTIMIZER_KEYS = ['type', 'lr', 'momentum', 'nesterov', 'dampening', 'weightDecay', 'betas', 'eps', 'amsgrad', 'bogus'];
  const ATTACK_KEYS = ['method', 'groups', 'k', 'alpha', 'rho', 'eta', 'seed'];
  const GROUP_KEYS = ['targets', 'epsilon', 'p', 'relative', 'sparse'];
  const LOSS_KEYS = ['type', 'labelSmoothing', 'classWeights'];
  const STEP_KEYS = ['lr', 'clipGradNorm', 'accumulate', 'lossScale', 'timePhases', 'tokenIds'];

  test('trainerNew / trainerStep / module calls with random arguments', async () => {
    const failures: string[] = [];
    const check = async (label: string, f: () => unknown) => {
      try {
        const r = f();
        if (r instanceof Promise || (r !== null && typeof r === 'object' && typeof (r as Promise<unknown>).then === 'function')) {
          await (r as Promise<unknown>).catch((e) => {
            const why = bad(e);
            if (why) failures.push(`${label} rejected: ${why}`);
          });
        }
      } catch (e) {
        const why = bad(e);
        if (why) failures.push(`${label} threw: ${why}`);
      }
    };
    let trainers = 0;
    for (let i = 0; i < 600; i++) {
      // Half the configurations are valid ones with one field replaced at random, so the
      // steps run often; the rest are random objects.
      let attack: Record<string, unknown>;
      let optimizer: Record<string, unknown>;
      let loss: Record<string, unknown>;
      if (rnd() < 0.5) {
        const method = pick(['dropattack', 'fgm', 'pgd', 'freelb', 'awp', 'sam', 'asam', 'none']);
        const group: Record<string, unknown> = { targets: [pick(['fc1.weight', 'input', 'fc*', 'out.bias'])], epsilon: 0.5, p: 0.5 };
        attack = { method, k: method === 'fgm' || method === 'awp' ? 1 : 2, alpha: 0.1, seed: 3, groups: method === 'none' ? [] : [group] };
        optimizer = { type: pick(['sgd', 'adam', 'adamw']), lr: 0.01 };
        loss = { type: 'cross_entropy' };
        const victim = pick([attack, optimizer, loss, group]);
        const keys = victim === attack ? ATTACK_KEYS : victim === optimizer ? OPTIMIZER_KEYS : victim === loss ? LOSS_KEYS : GROUP_KEYS;
        if (rnd() < 0.7) victim[pick(keys)] = pick(values());
      } else {
        attack = randomObject(ATTACK_KEYS);
        if (rnd() < 0.6) attack.groups = [Object.assign(randomObject(GROUP_KEYS), { targets: [pick(['fc1.weight', 'input', 'fc*', 'out.bias'])] })];
        optimizer = Object.assign(randomObject(OPTIMIZER_KEYS), rnd() < 0.7 ? { type: pick(['sgd', 'adam', 'adamw']), lr: 0.01 } : {});
        loss = randomObject(LOSS_KEYS);
      }
      let trainer: unknown = null;
      const show = (o: unknown) => JSON.stringify(o, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
      await check(`trainerNew(${show(optimizer)}, ${show(attack)})`, () => {
        trainer = native.trainerNew(module, optimizer, attack, loss);
        return trainer;
      });
      if (trainer === null) continue;
      trainers++;
      for (let s = 0; s < 3; s++) {
        const inputs = rnd() < 0.8 ? [pick([t([4, 6]), t([4, 6]), t([4, 6]), t([4, 5]), t([4], 'int64'), t([4, 6], 'float64')])] : pick(values());
        const target = rnd() < 0.7 ? native.full([4], 2, 'int64', 'cpu') : pick([t([4]), t([5], 'int64'), pick(values())]);
        const options = rnd() < 0.5 ? {} : randomObject(STEP_KEYS);
        await check('trainerStep', () => native.trainerStep(trainer as never, inputs as never, target as never, options));
      }
      await check('trainerInfo', () => native.trainerInfo(trainer as never));
      await check('trainerSetGlobalStep', () => native.trainerSetGlobalStep(trainer as never, pick(values()) as never));
    }
    for (let i = 0; i < 300; i++) {
      const f = pick(['moduleForward', 'moduleLoadStateDict', 'moduleTo', 'moduleTrain', 'moduleNamedParameters', 'moduleStateDict', 'moduleIsTraining', 'moduleIsBusy']);
      const args = [rnd() < 0.9 ? module : pick(values()), ...Array.from({ length: Math.floor(rnd() * 4) }, () => pick(values()))];
      if (f === 'moduleTo' && typeof args[1] === 'string' && args[1].startsWith('cuda')) continue;
      await check(f, () => binding[f](...args));
    }
    expect(failures.slice(0, 20)).toEqual([]);
    expect(trainers).toBeGreaterThan(20);
    // Still usable, not busy, in training mode after a last train(true).
    native.moduleTo(module, 'cpu', 'float32');
    native.moduleTrain(module, true);
    expect(native.moduleIsBusy(module)).toBe(false);
    const trainer = native.trainerNew(module, { type: 'sgd', lr: 0.01 }, { method: 'none' }, { type: 'cross_entropy' });
    const r = await native.trainerStep(trainer, [t([4, 6])], native.full([4], 1, 'int64', 'cpu'), {});
    expect(r.applied).toBe(true);
  }, 120000);
});
