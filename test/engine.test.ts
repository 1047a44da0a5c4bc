import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { monitorEventLoopDelay } from 'perf_hooks';

import { Module, Tensor, Trainer, TorchError, getNumThreads, setNumThreads, tensor, AttackConfig, OptimizerConfig } from '../lib';
import { maxAbsDiff, PYTHON, runReference } from './helpers/reference';

type PyOptimizer = { type: string; lr: number; momentum?: number; nesterov?: boolean; weight_decay?: number; betas?: number[]; eps?: number };
type PyAttack = { method: string; k?: number; seed?: number; alpha?: number; rho?: number; eta?: number; groups?: { targets: string[]; epsilon?: number; p?: number; relative?: boolean }[] };

interface Case {
  name: string;
  model: 'mlp' | 'embed';
  optimizer: PyOptimizer;
  attack: PyAttack;
  clip?: number;
  steps?: number;
}

function toOptimizer(o: PyOptimizer): OptimizerConfig {
  return {
    type: o.type as OptimizerConfig['type'],
    lr: o.lr,
    ...(o.momentum !== undefined ? { momentum: o.momentum } : {}),
    ...(o.nesterov !== undefined ? { nesterov: o.nesterov } : {}),
    ...(o.weight_decay !== undefined ? { weightDecay: o.weight_decay } : {}),
    ...(o.betas !== undefined ? { betas: o.betas as [number, number] } : {}),
    ...(o.eps !== undefined ? { eps: o.eps } : {}),
  };
}

function toAttack(a: PyAttack): AttackConfig {
  return {
    method: a.method as AttackConfig['method'],
    ...(a.k !== undefined ? { k: a.k } : {}),
    ...(a.seed !== undefined ? { seed: a.seed } : {}),
    ...(a.alpha !== undefined ? { alpha: a.alpha } : {}),
    ...(a.rho !== undefined ? { rho: a.rho } : {}),
    ...(a.eta !== undefined ? { eta: a.eta } : {}),
    groups: (a.groups ?? []).map((g) => ({
      targets: g.targets,
      epsilon: g.epsilon ?? 0,
      ...(g.p !== undefined ? { p: g.p } : {}),
      ...(g.relative !== undefined ? { relative: g.relative } : {}),
    })),
  };
}

const SGD: PyOptimizer = { type: 'sgd', lr: 0.1, momentum: 0.9 };
const ADAM: PyOptimizer = { type: 'adam', lr: 0.01 };
const TWO_GROUPS = [
  { targets: ['fc1.weight', 'input'], epsilon: 0.5, p: 0.5 },
  { targets: ['fc2.weight'], epsilon: 0.3, p: 0.7, relative: true },
];

const CASES: Case[] = [
  { name: 'plain SGD', model: 'mlp', optimizer: SGD, attack: { method: 'none' } },
  { name: 'DropAttack-1, two groups, SGD', model: 'mlp', optimizer: SGD, attack: { method: 'dropattack', k: 1, seed: 7, groups: TWO_GROUPS } },
  { name: 'DropAttack-3, two groups, Adam', model: 'mlp', optimizer: ADAM, attack: { method: 'dropattack', k: 3, seed: 11, groups: TWO_GROUPS } },
  {
    name: 'DropAttack-3 on an embedding table (row-sparse) and a hidden weight, AdamW, clipping',
    model: 'embed',
    optimizer: { type: 'adamw', lr: 0.01, weight_decay: 0.01 },
    clip: 0.5,
    attack: { method: 'dropattack', k: 3, seed: 3, groups: [{ targets: ['embed.weight'], epsilon: 1, p: 0.5 }, { targets: ['fc1.weight'], epsilon: 0.2, p: 0.5 }] },
  },
  { name: 'FGM', model: 'mlp', optimizer: SGD, attack: { method: 'fgm', groups: [{ targets: ['fc1.weight'], epsilon: 0.5 }] } },
  { name: 'PGD-3', model: 'mlp', optimizer: SGD, attack: { method: 'pgd', k: 3, alpha: 0.2, groups: [{ targets: ['fc1.weight', 'input'], epsilon: 0.5 }, { targets: ['fc2.weight'], epsilon: 0.3 }] } },
  { name: 'FreeLB-3', model: 'mlp', optimizer: ADAM, attack: { method: 'freelb', k: 3, alpha: 0.1, groups: [{ targets: ['input'], epsilon: 0.5 }, { targets: ['fc1.weight'], epsilon: 0.3 }] } },
  { name: 'AWP', model: 'mlp', optimizer: SGD, attack: { method: 'awp', groups: [{ targets: ['fc1.weight', 'fc2.weight'], epsilon: 0.05 }] } },
  { name: 'SAM', model: 'mlp', optimizer: SGD, attack: { method: 'sam', rho: 0.05 } },
  { name: 'ASAM', model: 'mlp', optimizer: SGD, attack: { method: 'asam', rho: 0.5, groups: [{ targets: ['fc1.weight', 'fc1.bias', 'out.weight'] }] } },
  { name: 'DropAttack-1 on the embedding model, SGD', model: 'embed', optimizer: SGD, attack: { method: 'dropattack', k: 1, seed: 5, groups: [{ targets: ['embed.weight', 'fc1.weight'], epsilon: 1, p: 0.5 }] } },
  // The fused CPU Adam step (native/engine/fused_adam.cpp) against torch.optim.Adam, with
  // every option that enters its arithmetic.
  {
    name: 'plain Adam with weight decay, betas and eps on the embedding model (the fused step)',
    model: 'embed',
    optimizer: { type: 'adam', lr: 0.02, weight_decay: 0.05, betas: [0.8, 0.95], eps: 1e-6 },
    attack: { method: 'none' },
    steps: 6,
  },
];

async function runEngine(c: Case, ref: ReturnType<typeof runReference>) {
  const module = await Module.load(path.join(ref.dir, 'model.pt'));
  const trainer = new Trainer(module, { optimizer: toOptimizer(c.optimizer), attack: toAttack(c.attack) });
  const results = [];
  for (const batch of ref.meta.inputs) {
    const x = ref.read(batch.x);
    const y = ref.read(batch.y);
    results.push(await trainer.step(x, y, c.clip !== undefined ? { clipGradNorm: c.clip } : {}));
  }
  return { module, trainer, results };
}

describe('the native step matches the Python reference on the same LibTorch', () => {
  const old = getNumThreads();
  beforeAll(() => setNumThreads(1));
  afterAll(() => setNumThreads(old));

  test.each(CASES)('$name', async (c) => {
    const ref = runReference({
      model: c.model,
      seed: 1,
      steps: c.steps ?? 3,
      batch: 8,
      optimizer: c.optimizer,
      attack: c.attack,
      clip_grad_norm: c.clip ?? null,
    });
    const { module, results } = await runEngine(c, ref);
    // Losses, step by step.
    ref.meta.losses.forEach((expected, s) => {
      expect(results[s].applied).toBe(expected.applied);
      expect(results[s].cleanLoss).toBeCloseTo(expected.clean as number, 5);
      expected.groups.forEach((g, k) => expect(results[s].groupLosses[k]).toBeCloseTo(g as number, 5));
      expect(results[s].skipped).toEqual(expected.skipped);
    });
    // Embedding tables take the row-sparse path by themselves.
    const sparse = c.model === 'embed' && c.attack.method === 'dropattack';
    expect(results[0].sparseTargets).toEqual(sparse ? ['embed.weight'] : []);
    // Final parameters within 1e-6.
    const params = module.namedParameters();
    expect([...params.keys()]).toEqual(ref.meta.params.map((p) => p.name));
    for (const p of ref.meta.params) {
      const diff = maxAbsDiff(params.get(p.name) as Tensor, ref.read(p, 'float32'));
      expect({ name: p.name, diff: diff <= 1e-6 ? 'ok' : diff }).toEqual({ name: p.name, diff: 'ok' });
    }
    // The attack changed the trajectory (the comparison above is not vacuous).
    if (c.attack.method !== 'none') {
      const initial = ref.read(ref.meta.initial_params[0], 'float32');
      expect(maxAbsDiff(params.get(ref.meta.params[0].name) as Tensor, initial)).toBeGreaterThan(1e-4);
    }
  });

  test('DropAttack with p = 0 and lr / (1 + G) equals plain training', async () => {
    const plain = runReference({ model: 'mlp', seed: 2, steps: 3, batch: 8, optimizer: { type: 'sgd', lr: 0.3 }, attack: { method: 'none' } });
    const module = await Module.load(path.join(plain.dir, 'model.pt'));
    const trainer = new Trainer(module, {
      optimizer: { type: 'sgd', lr: 0.3 / 3 },
      attack: { method: 'dropattack', groups: [{ targets: ['fc1.weight'], epsilon: 1, p: 0 }, { targets: ['fc2.weight'], epsilon: 1, p: 0 }] },
    });
    for (const batch of plain.meta.inputs) await trainer.step(plain.read(batch.x), plain.read(batch.y));
    const params = module.namedParameters();
    for (const p of plain.meta.params) expect(maxAbsDiff(params.get(p.name) as Tensor, plain.read(p, 'float32'))).toBeLessThan(1e-6);
  });
});

describe('TorchScript round trip', () => {
  test('a Python model trained here with DropAttack, saved, and reloaded in Python gives the outputs Node gives', async () => {
    const ref = runReference({ model: 'mlp', seed: 4, steps: 1, batch: 8, optimizer: SGD, attack: { method: 'none' } });
    const module = await Module.load(path.join(ref.dir, 'model.pt'));
    const trainer = new Trainer(module, { optimizer: { type: 'sgd', lr: 0.1 }, attack: { method: 'dropattack', seed: 1, groups: [{ targets: ['fc1.weight'], epsilon: 0.5, p: 0.5 }] } });
    const x = ref.read(ref.meta.inputs[0].x);
    const y = ref.read(ref.meta.inputs[0].y);
    for (let s = 0; s < 3; s++) expect((await trainer.step(x, y)).applied).toBe(true);
    const out = (await module.eval().forward(x)) as Tensor;
    const saved = path.join(ref.dir, 'trained.pt');
    await module.save(saved);
    const xFile = path.join(ref.dir, 'x.bin');
    fs.writeFileSync(xFile, Buffer.from((x.toTypedArray() as Float32Array).buffer));
    const script = [
      'import sys, json, numpy as np, torch',
      'm = torch.jit.load(sys.argv[1]); m.eval()',
      `x = torch.from_numpy(np.fromfile(sys.argv[2], dtype=np.float32).reshape(${JSON.stringify(x.shape)}))`,
      'y = m(x)',
      'y.sum().backward() if False else None',
      'print(json.dumps(y.detach().reshape(-1).tolist()))',
    ].join('\n');
    const python = JSON.parse(execFileSync(PYTHON, ['-c', script, saved, xFile], { encoding: 'utf8' })) as number[];
    const node = Array.from(out.toTypedArray() as Float32Array);
    expect(python).toHaveLength(node.length);
    python.forEach((v, k) => expect(Math.abs(v - node[k])).toBeLessThanOrEqual(1e-5));
  });
});

describe('engine: bad input and failures', () => {
  let dir: string;
  let modelPath: string;
  beforeAll(() => {
    const ref = runReference({ model: 'mlp', seed: 5, steps: 1, batch: 4, optimizer: { type: 'sgd', lr: 0.1 }, attack: { method: 'none' } });
    dir = ref.dir;
    modelPath = path.join(dir, 'model.pt');
  });
  const batch = () => ({ x: tensor(new Float32Array(24).fill(0.5), { shape: [4, 6] }), y: tensor(new BigInt64Array([0n, 1n, 2n, 0n])) });

  test('a missing file and a truncated or corrupt file are TorchErrors', async () => {
    await expect(Module.load(path.join(dir, 'nope.pt'))).rejects.toThrow(TorchError);
    await expect(Module.load(path.join(dir, 'nope.pt'))).rejects.toThrow(/cannot open/);
    const bytes = fs.readFileSync(modelPath);
    const truncated = path.join(dir, 'truncated.pt');
    fs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(Module.load(truncated)).rejects.toThrow(/is not a TorchScript file/);
    const corrupt = path.join(dir, 'corrupt.pt');
    fs.writeFileSync(corrupt, Buffer.from('this is not a model'));
    await expect(Module.load(corrupt)).rejects.toThrow(TorchError);
  });

  test('an unknown target lists the parameters that exist', async () => {
    const module = await Module.load(modelPath);
    expect(() => new Trainer(module, { optimizer: { type: 'sgd', lr: 0.1 }, attack: { method: 'dropattack', groups: [{ targets: ['fc9.weight'], epsilon: 1 }] } })).toThrow(
      /target 'fc9.weight' matches no parameter; the parameters are: fc1.weight, fc1.bias, fc2.weight, fc2.bias, out.weight, out.bias/,
    );
  });

  test('ill-typed configurations name the field', async () => {
    const module = await Module.load(modelPath);
    const opt = { type: 'sgd' as const, lr: 0.1 };
    expect(() => new Trainer(module, { optimizer: { type: 'rmsprop' as never, lr: 1 } })).toThrow(/optimizer: type must be one of/);
    expect(() => new Trainer(module, { optimizer: { type: 'sgd', lr: -1 } })).toThrow(/lr must be in/);
    expect(() => new Trainer(module, { optimizer: opt, attack: { method: 'dropatack' as never } })).toThrow(/method must be one of/);
    expect(() => new Trainer(module, { optimizer: opt, attack: { method: 'dropattack', groups: [{ targets: ['fc1.weight'], epsilon: 1, p: 2 }] } })).toThrow(/groups\[0\]: p must be in \[0, 1\]/);
    expect(() => new Trainer(module, { optimizer: opt, attack: { method: 'pgd', groups: [{ targets: ['fc1.weight'], epsilon: 1 }] } })).toThrow(/alpha/);
    expect(() => new Trainer(module, { optimizer: opt, attack: { method: 'fgm', k: 3, groups: [{ targets: ['fc1.weight'], epsilon: 1 }] } })).toThrow(/k must be 1 for fgm/);
    expect(() => new Trainer(module, { optimizer: opt, attack: { method: 'dropattack', groups: [{ targets: ['/[/'], epsilon: 1 }] } })).toThrow(/not a valid regular expression/);
    expect(() => new Trainer(module, { optimizer: opt, bogus: 1 } as never)).toThrow(/unknown option 'bogus'/);
  });

  test('a batch the model rejects is a TorchError and leaves the module usable', async () => {
    const module = await Module.load(modelPath);
    const trainer = new Trainer(module, { optimizer: { type: 'sgd', lr: 0.1 }, attack: { method: 'dropattack', groups: [{ targets: ['fc1.weight'], epsilon: 1, p: 0.5 }] } });
    const before = module.stateDict();
    await expect(trainer.step(tensor(new Float32Array(20), { shape: [4, 5] }), batch().y)).rejects.toThrow(TorchError);
    await expect(trainer.step(batch().x.to('float64'), batch().y)).rejects.toThrow(TorchError);
    await expect(trainer.step(batch().x, tensor(new BigInt64Array([0n, 1n, 7n, 0n])))).rejects.toThrow(/label 7 is out of range for 3 classes/);
    const after = module.stateDict();
    for (const [name, t] of before) expect(maxAbsDiff(t, after.get(name) as Tensor)).toBe(0);
    expect(module.busy).toBe(false);
    expect((await trainer.step(batch().x, batch().y)).applied).toBe(true);
  });

  test('a NaN loss is reported, not applied, and corrupts nothing', async () => {
    const module = await Module.load(modelPath);
    const trainer = new Trainer(module, { optimizer: { type: 'sgd', lr: 0.1 }, attack: { method: 'dropattack', groups: [{ targets: ['fc1.weight', 'input'], epsilon: 1, p: 0.5 }] } });
    const before = module.stateDict();
    const x = tensor(new Float32Array(24).fill(0.5), { shape: [4, 6] });
    const bad = x.clone();
    bad.narrow(0, 0, 1).fill_(NaN);
    const r = await trainer.step(bad, batch().y);
    expect(r.applied).toBe(false);
    expect(r.reason).toMatch(/not finite/);
    expect(trainer.globalStep).toBe(0);
    const after = module.stateDict();
    for (const [name, t] of before) expect(maxAbsDiff(t, after.get(name) as Tensor)).toBe(0);
    expect((await trainer.step(x, batch().y)).applied).toBe(true);
    expect(trainer.globalStep).toBe(1);
  });

  test('a second concurrent call on a busy module is refused, never raced', async () => {
    const module = await Module.load(modelPath);
    const trainer = new Trainer(module, { optimizer: { type: 'sgd', lr: 0.1 } });
    const first = trainer.step(batch().x, batch().y);
    expect(module.busy).toBe(true);
    await expect(trainer.step(batch().x, batch().y)).rejects.toThrow(/busy/);
    await expect(module.forward(batch().x)).rejects.toThrow(/busy/);
    expect(() => module.namedParameters()).toThrow(/busy/);
    expect((await first).applied).toBe(true);
    expect(module.busy).toBe(false);
  });

  test('stateDict / loadStateDict round trip and strictness', async () => {
    const a = await Module.load(modelPath);
    const b = await Module.load(modelPath);
    const trainer = new Trainer(a, { optimizer: { type: 'sgd', lr: 0.5 } });
    await trainer.step(batch().x, batch().y);
    b.loadStateDict(a.stateDict());
    const x = batch().x;
    expect(maxAbsDiff((await a.forward(x)) as Tensor, (await b.forward(x)) as Tensor)).toBe(0);
    const partial = new Map([...a.stateDict()].slice(1));
    expect(() => b.loadStateDict(partial)).toThrow(/missing key 'fc1.weight'/);
    expect(() => b.loadStateDict(new Map([['nope', x]]), { strict: false })).not.toThrow();
    expect(() => b.loadStateDict(new Map([['fc1.weight', x]]), { strict: false })).toThrow(/has shape \[4, 6\] but the module's is \[16, 6\]/);
  });
});

describe('off the event loop', () => {
  test('the event loop stays responsive while steps run (p99 delay under 50 ms)', async () => {
    const ref = runReference({ model: 'mlp', seed: 6, steps: 1, batch: 8, optimizer: SGD, attack: { method: 'none' } });
    const module = await Module.load(path.join(ref.dir, 'model.pt'));
    const trainer = new Trainer(module, { optimizer: { type: 'sgd', lr: 0.01 }, attack: { method: 'dropattack', k: 3, groups: [{ targets: ['fc1.weight', 'fc2.weight', 'input'], epsilon: 0.1, p: 0.5 }] } });
    const x = tensor(new Float32Array(4096 * 6).fill(0.1), { shape: [4096, 6] });
    const y = tensor(new BigInt64Array(4096));
    const histogram = monitorEventLoopDelay({ resolution: 5 });
    histogram.enable();
    const started = Date.now();
    let steps = 0;
    while (Date.now() - started < 3000) {
      await trainer.step(x, y);
      steps++;
    }
    histogram.disable();
    const p99 = histogram.percentile(99) / 1e6;
    expect(steps).toBeGreaterThan(0);
    expect(p99).toBeLessThan(50);
  });
});

afterAll(() => {
  // Temporary directories are left for inspection only when a test failed.
  void os.tmpdir();
});

describe('traced TorchScript', () => {
  test('a torch.jit.trace model loads, runs and trains like a scripted one', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-trace-'));
    const script = [
      'import sys, json, torch',
      'torch.manual_seed(0)',
      'm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))',
      'x = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 10',
      't = torch.jit.trace(m, x); t.save(sys.argv[1])',
      'print(json.dumps(t(x).reshape(-1).tolist()))',
    ].join('\n');
    const file = path.join(dir, 'traced.pt');
    const expected = JSON.parse(execFileSync(PYTHON, ['-c', script, file], { encoding: 'utf8' })) as number[];
    const module = await Module.load(file);
    expect([...module.namedParameters().keys()]).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    const x = tensor(Float32Array.from({ length: 12 }, (_, k) => k / 10), { shape: [3, 4] });
    const out = Array.from(((await module.forward(x)) as Tensor).toTypedArray() as Float32Array);
    expected.forEach((v, k) => expect(Math.abs(v - out[k])).toBeLessThan(1e-6));
    const trainer = new Trainer(module, { optimizer: { type: 'sgd', lr: 0.1 }, attack: { method: 'dropattack', groups: [{ targets: '0.weight', epsilon: 0.1, p: 0.5 }] } });
    const r = await trainer.step(x, tensor(new BigInt64Array([0n, 1n, 0n])));
    expect(r.applied).toBe(true);
    expect(r.groupLosses[0]).toBeGreaterThan(0);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
