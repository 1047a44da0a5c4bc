// The engine's registry of methods (native/engine/methods/) as TypeScript sees it.
import * as fs from 'fs';
import * as path from 'path';

import { ATTACK_METHODS, attackMethodInfo, Module, Trainer } from '../lib';

// The Python reference's list, read from its source: an independent statement of the methods.
function referenceMethods(): string[] {
  const src = fs.readFileSync(path.join(__dirname, 'python', 'reference.py'), 'utf8');
  const m = /^METHODS = \(([^)]*)\)/m.exec(src);
  if (!m) throw new Error('METHODS not found in test/python/reference.py');
  return m[1].split(',').map((s) => s.trim().replace(/^"|"$/g, '')).filter((s) => s.length > 0);
}

describe('attack methods from the engine', () => {
  test('ATTACK_METHODS is the engine list and matches the Python reference and docs/methods.md', () => {
    expect([...ATTACK_METHODS]).toEqual(referenceMethods());
    const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'methods.md'), 'utf8');
    for (const m of ATTACK_METHODS) expect(doc).toMatch(new RegExp(`^## (.* and )?${m} `, 'm'));
  });

  test('each method states its rules', () => {
    expect(attackMethodInfo('none')).toMatchObject({ groups: 'forbidden', needsGroups: false });
    expect(attackMethodInfo('fgm')).toMatchObject({ maxK: 1, fullP: true, needsGroups: true });
    expect(attackMethodInfo('awp')).toMatchObject({ maxK: 1, oneGroupPerTensor: true });
    expect(attackMethodInfo('pgd')).toMatchObject({ needsAlpha: true, sparse: false, oneGroupPerTensor: false });
    expect(attackMethodInfo('freelb')).toMatchObject({ needsAlpha: true, sparse: false, oneGroupPerTensor: true });
    for (const m of ['sam', 'asam']) expect(attackMethodInfo(m)).toMatchObject({ groups: 'optional', needsEpsilon: false });
    expect(attackMethodInfo('asam')?.fields).toContain('eta');
    expect(attackMethodInfo('nope')).toBeUndefined();
  });

  test('the rules are enforced with messages naming the method', () => {
    const module = Module.build({ kind: 'mlp', inputDim: 4, hiddenSizes: [3], numClasses: 2 }, { seed: 1 });
    const opt = { type: 'sgd' as const, lr: 0.1 };
    const g = [{ targets: ['fc1.weight'], epsilon: 0.1 }];
    expect(() => new Trainer(module, { optimizer: opt, attack: { method: 'awp', k: 2, groups: g } })).toThrow(/k must be 1 for awp/);
    expect(() => new Trainer(module, { optimizer: opt, attack: { method: 'freelb', alpha: 0.1, groups: [...g, ...g] } })).toThrow(
      /already in group 0; freelb moves all groups at once/,
    );
    expect(() => new Trainer(module, { optimizer: opt, attack: { method: 'pgd', alpha: 0.1, groups: [...g, ...g] } })).not.toThrow();
    expect(() => new Trainer(module, { optimizer: opt, attack: { method: 'none', groups: g } })).toThrow(/groups must be empty for method 'none'/);
    expect(() => new Trainer(module, { optimizer: opt, attack: { method: 'dropattack' } })).toThrow(/at least one group for method 'dropattack'/);
    expect(new Trainer(module, { optimizer: opt, attack: { method: 'sam' } }).targets).toEqual([[...module.namedParameters().keys()]]);
  });
});
