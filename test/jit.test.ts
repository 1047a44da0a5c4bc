// TorchScript execution settings (setJitOptions) and bf16 autocast of the forward passes.
import { Module, Tensor, Trainer, getJitOptions, setJitOptions, tensor } from '../lib';

function batch(seed: number): { x: Tensor; y: Tensor } {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  const x = Float32Array.from({ length: 16 * 6 }, next);
  const y = Array.from({ length: 16 }, (_, k) => k % 3);
  return { x: tensor(x, { shape: [16, 6] }), y: tensor(y, { dtype: 'int64' }) };
}

async function train(steps: number, autocast: 'off' | 'bf16' = 'off'): Promise<{ params: Float32Array[]; losses: number[]; group: number[] }> {
  const model = Module.build({ kind: 'mlp', inputDim: 6, hiddenSizes: [16], numClasses: 3 }, { seed: 3 });
  const trainer = new Trainer(model, {
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 },
    attack: { method: 'dropattack', k: 2, seed: 9, groups: [{ targets: ['*weight*'], epsilon: 2, p: 0.7 }] },
    autocast,
  });
  const losses: number[] = [];
  const group: number[] = [];
  for (let s = 0; s < steps; ++s) {
    const { x, y } = batch(s + 1);
    const r = await trainer.step(x, y);
    expect(r.applied).toBe(true);
    losses.push(r.cleanLoss);
    group.push(r.groupLosses[0]);
  }
  const params = [...model.namedParameters().values()].map((t) => {
    expect(t.dtype).toBe('float32');
    return t.toTypedArray() as Float32Array;
  });
  return { params, losses, group };
}

function maxDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  a.forEach((x, i) => x.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][j])))));
  return m;
}

describe('setJitOptions', () => {
  afterEach(() => setJitOptions({ executor: 'simple', fuser: 'none' }));

  test('the default is the simple executor with no fuser', () => {
    expect(getJitOptions()).toEqual({ executor: 'simple', fuser: 'none' });
  });

  test('settings are returned and read back', () => {
    expect(setJitOptions({ executor: 'profiling' })).toEqual({ executor: 'profiling', fuser: 'none' });
    expect(getJitOptions()).toEqual({ executor: 'profiling', fuser: 'none' });
    expect(setJitOptions({ executor: 'legacy' })).toEqual({ executor: 'legacy', fuser: 'none' });
  });

  test('bad settings name the field', () => {
    expect(() => setJitOptions({ executor: 'fast' as never })).toThrow(/executor/);
    expect(() => setJitOptions({ fuser: 'llvm' as never })).toThrow(/fuser/);
    expect(() => setJitOptions({ optimize: true } as never)).toThrow(/unknown option 'optimize'/);
    expect(() => setJitOptions(null as never)).toThrow(TypeError);
    expect(getJitOptions()).toEqual({ executor: 'simple', fuser: 'none' });
  });

  // Past a module's third forward, where the profiling executor optimizes the graph: every
  // executor trains to the same parameters (autodiff subgraphs may round differently).
  test.each(['profiling', 'legacy'] as const)('%s executor trains as the simple one does, past the third forward', async (executor) => {
    const simple = await train(5);
    setJitOptions({ executor });
    const other = await train(5);
    expect(maxDiff(simple.params, other.params)).toBeLessThan(1e-5);
    other.losses.forEach((l, k) => expect(l).toBeCloseTo(simple.losses[k], 5));
  });
});

describe('autocast bf16', () => {
  test('forwards run in bfloat16 while parameters stay float32', async () => {
    const fp32 = await train(3);
    const bf16 = await train(3, 'bf16');
    // bfloat16 has 8 bits of mantissa: the losses move, but only a little.
    expect(bf16.losses[0]).not.toBe(fp32.losses[0]);
    expect(Math.abs(bf16.losses[0] - fp32.losses[0])).toBeLessThan(0.02 * fp32.losses[0]);
    // Each adversarial pass sees the perturbed weights, not a cached cast of the clean ones.
    bf16.group.forEach((g, k) => expect(g).not.toBe(bf16.losses[k]));
    bf16.group.forEach((g, k) => expect(Math.abs(g - fp32.group[k])).toBeLessThan(0.05 * fp32.group[k]));
    expect(maxDiff(fp32.params, bf16.params)).toBeLessThan(0.05);
    expect(maxDiff(fp32.params, bf16.params)).toBeGreaterThan(0);
  });

  test('a bad autocast setting names it', () => {
    const model = Module.build({ kind: 'mlp', inputDim: 6, hiddenSizes: [4], numClasses: 3 }, { seed: 3 });
    expect(() => new Trainer(model, { optimizer: { type: 'sgd', lr: 0.1 }, autocast: 'fp16' as never })).toThrow(/autocast/);
  });
});
