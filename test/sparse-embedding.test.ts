// Sparse embedding gradients (model option sparseEmbedding, as nn.Embedding(sparse=True))
// and the row-wise Adam (torch.optim.SparseAdam's update): against PyTorch on the same
// LibTorch, against the dense-gradient attack, through checkpoints, and their errors.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { distributedInfo, freePort, Module, ProcessGroup, Tensor, Trainer, TorchError, tensor, AttackConfig, ModelSpec } from '../lib';
import { parseRunConfig } from '../lib/app/run';
import { maxAbsDiff, PYTHON } from './helpers/reference';

const SCRIPT = path.join(__dirname, 'python', 'sparse_reference.py');
const VOCAB = 200;

interface Batch {
  tokens: number[][];
  lengths: number[];
  labels: number[];
}

// Batches with repeated tokens (duplicate rows in the sparse gradient), padding (row 0)
// and rows that appear in one batch only (where a lazy and a dense Adam differ).
function makeBatches(n: number, seed: number): Batch[] {
  let s = seed;
  const rand = (m: number): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % m;
  };
  const out: Batch[] = [];
  for (let b = 0; b < n; b++) {
    const B = 4, T = 7;
    const tokens: number[][] = [];
    const lengths: number[] = [];
    for (let i = 0; i < B; i++) {
      const len = 3 + rand(T - 2);
      const row: number[] = [];
      for (let t = 0; t < T; t++) row.push(t < len ? (t === 1 ? 5 : 1 + rand(VOCAB / 2 - 1) + (b % 2) * (VOCAB / 2 - 1)) : 0);
      tokens.push(row);
      lengths.push(len);
    }
    out.push({ tokens, lengths, labels: Array.from({ length: B }, () => rand(3)) });
  }
  return out;
}

function inputs(b: Batch): { args: [Tensor, Tensor]; labels: Tensor } {
  const B = b.tokens.length, T = b.tokens[0].length;
  const tokens = tensor(BigInt64Array.from(b.tokens.flat().map(BigInt)), { shape: [B, T] });
  const lengths = tensor(BigInt64Array.from(b.lengths.map(BigInt)));
  const labels = tensor(BigInt64Array.from(b.labels.map(BigInt)));
  return { args: [tokens, lengths], labels };
}

const spec = (sparse: boolean, kind: 'textcnn' | 'textrnn' = 'textcnn'): ModelSpec =>
  kind === 'textcnn'
    ? { kind, vocabSize: VOCAB, embedDim: 16, numFilters: 4, kernelSizes: [2, 3], numClasses: 3, sparseEmbedding: sparse }
    : { kind, vocabSize: VOCAB, embedDim: 16, hiddenSize: 8, numClasses: 3, sparseEmbedding: sparse };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-sparse-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function train(model: Module, trainer: Trainer, batches: Batch[], clip?: number) {
  const results = [];
  for (const b of batches) {
    const { args, labels } = inputs(b);
    results.push(await trainer.step(args, labels, clip !== undefined ? { clipGradNorm: clip } : {}));
  }
  return results;
}

function snapshot(model: Module): Map<string, Tensor> {
  return model.stateDict();
}

function expectBitEqual(a: Map<string, Tensor>, b: Map<string, Tensor>) {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [name, t] of a) {
    const u = b.get(name)!;
    expect({ name, equal: t.eq(u).logicalNot().sum().item() === 0 }).toEqual({ name, equal: true });
  }
}

describe('sparse embedding gradients and the row-wise Adam', () => {
  test.each([
    ['textcnn', undefined],
    ['textcnn, clipped', 0.05],
    ['textrnn', undefined],
  ] as const)('%s: plain training equals nn.Embedding(sparse=True) + SparseAdam (table) + Adam (rest) in PyTorch', async (label, clip) => {
    const kind = label.startsWith('textrnn') ? 'textrnn' : 'textcnn';
    const model = Module.build(spec(true, kind), { seed: 3 });
    const file = path.join(tmp, `${kind}-${clip ?? 'plain'}.pt`);
    await model.save(file);
    const batches = makeBatches(5, 11);
    const lr = 0.01;
    const config = { model: file, table: 'embed.weight', lr, betas: [0.9, 0.999], eps: 1e-8, clip: clip ?? null, batches };
    const configPath = path.join(tmp, `config-${kind}-${clip ?? 'plain'}.json`);
    fs.writeFileSync(configPath, JSON.stringify(config));
    const out = path.join(tmp, `out-${kind}-${clip ?? 'plain'}`);
    execFileSync(PYTHON, [SCRIPT, configPath, out], { stdio: ['ignore', 'pipe', 'pipe'] });
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'meta.json'), 'utf8')) as {
      params: { name: string; shape: number[]; file: string }[];
      losses: number[];
    };

    const before = snapshot(model);
    const trainer = new Trainer(model, { optimizer: { type: 'adam', lr } });
    const results = await train(model, trainer, batches, clip);
    for (let k = 0; k < results.length; k++) {
      expect(results[k].applied).toBe(true);
      expect(results[k].cleanLoss).toBeCloseTo(meta.losses[k], 5);
      expect(Number.isFinite(results[k].gradNorm)).toBe(true);
    }
    const params = model.namedParameters();
    for (const p of meta.params) {
      const buf = fs.readFileSync(path.join(out, p.file));
      const copy = new ArrayBuffer(buf.length);
      new Uint8Array(copy).set(buf);
      const ref = tensor(new Float32Array(copy), { shape: p.shape });
      expect({ name: p.name, diff: maxAbsDiff(params.get(p.name)!, ref) < 1e-6 }).toEqual({ name: p.name, diff: true });
    }
    // Lazy: a row that no batch holds is exactly as it was (and so is the padding row).
    const seen = new Set(batches.flatMap((b) => b.tokens.flat()));
    const unseen = [...Array(VOCAB).keys()].find((r) => !seen.has(r))!;
    const row = (m: Map<string, Tensor>, r: number) => m.get('embed.weight')!.narrow(0, r, 1);
    expect(row(snapshot(model), unseen).eq(row(before, unseen)).logicalNot().sum().item()).toBe(0);
    expect(row(snapshot(model), 0).eq(row(before, 0)).logicalNot().sum().item()).toBe(0);
  }, 60_000);

  test.each([
    ['dropattack', { method: 'dropattack', k: 2, seed: 7, groups: [{ targets: ['embed.weight'], epsilon: 1, p: 0.7 }, { targets: ['fc.weight', 'embed.weight'], epsilon: 0.5, p: 0.5 }] }],
    ['fgm', { method: 'fgm', groups: [{ targets: ['embed.weight'], epsilon: 1 }] }],
  ] as const)('%s on a sparse-gradient table: the losses of the dense-gradient attack, and exact restores', async (_, attack) => {
    const batches = makeBatches(1, 5);
    const { args, labels } = inputs(batches[0]);
    const results = [];
    for (const sparse of [true, false]) {
      const model = Module.build(spec(sparse), { seed: 4 });
      const before = snapshot(model);
      // lr 0: the parameters after the step are the restored ones, bit for bit.
      const trainer = new Trainer(model, { optimizer: { type: 'adam', lr: 0 }, attack: attack as unknown as AttackConfig });
      const r = await trainer.step(args, labels);
      expect(r.applied).toBe(true);
      expect(r.sparseTargets).toEqual(['embed.weight']);
      expectBitEqual(snapshot(model), before);
      results.push(r);
    }
    const [sparse, dense] = results;
    expect(sparse.cleanLoss).toBe(dense.cleanLoss);
    expect(sparse.groupLosses.length).toBe(dense.groupLosses.length);
    for (let g = 0; g < dense.groupLosses.length; g++) expect(Math.abs(sparse.groupLosses[g] - dense.groupLosses[g])).toBeLessThan(1e-6);
    expect(Math.abs(sparse.gradNorm - dense.gradNorm) / dense.gradNorm).toBeLessThan(1e-6);
  });

  test("the attack group's sparse: 'off' takes the dense direction, with the same losses", async () => {
    const { args, labels } = inputs(makeBatches(1, 9)[0]);
    const losses = [];
    for (const sparse of ['auto', 'off'] as const) {
      const model = Module.build(spec(true), { seed: 4 });
      const trainer = new Trainer(model, {
        optimizer: { type: 'adam', lr: 0.01 },
        attack: { method: 'dropattack', seed: 1, groups: [{ targets: ['embed.weight'], epsilon: 1, p: 0.5, sparse }] },
      });
      const r = await trainer.step(args, labels);
      expect(r.sparseTargets).toEqual(sparse === 'off' ? [] : ['embed.weight']);
      losses.push(r.groupLosses[0]);
    }
    expect(losses[0]).toBe(losses[1]);
  });

  test('save and resume (model file + Trainer.saveState) give the parameters of an uninterrupted run', async () => {
    const batches = makeBatches(4, 21);
    const options = (): ConstructorParameters<typeof Trainer>[1] => ({
      optimizer: { type: 'adam', lr: 0.02, groups: [{ params: ['fc.*'], lr: 0.01, weightDecay: 0.1 }] },
      attack: { method: 'dropattack', seed: 2, groups: [{ targets: ['embed.weight'], epsilon: 1, p: 0.5 }] },
    });
    const whole = Module.build(spec(true), { seed: 8 });
    await train(whole, new Trainer(whole, options()), batches);

    const first = Module.build(spec(true), { seed: 8 });
    const t1 = new Trainer(first, options());
    await train(first, t1, batches.slice(0, 2));
    const modelFile = path.join(tmp, 'resume.pt'), stateFile = path.join(tmp, 'resume.state');
    await first.save(modelFile);
    await t1.saveState(stateFile);
    const second = await Module.load(modelFile);
    const t2 = new Trainer(second, options());
    await t2.loadState(stateFile);
    expect(t2.globalStep).toBe(2);
    await train(second, t2, batches.slice(2));
    expectBitEqual(snapshot(second), snapshot(whole));
  });

  test('micro-batches accumulate sparse gradients', async () => {
    const [a, b] = makeBatches(2, 31);
    const model = Module.build(spec(true), { seed: 2 });
    const trainer = new Trainer(model, { optimizer: { type: 'adam', lr: 0.01 } });
    const r1 = await trainer.step(inputs(a).args, inputs(a).labels, { accumulate: true, lossScale: 0.5 });
    expect(r1.accumulated).toBe(true);
    const r2 = await trainer.step(inputs(b).args, inputs(b).labels, { lossScale: 0.5 });
    expect(r2.applied).toBe(true);
    expect(Number.isFinite(r2.gradNorm) && r2.gradNorm > 0).toBe(true);
  });

  test('plain SGD (no momentum, no weight decay) takes a sparse gradient', async () => {
    const { args, labels } = inputs(makeBatches(1, 3)[0]);
    const model = Module.build(spec(true), { seed: 2 });
    const before = snapshot(model);
    const r = await new Trainer(model, { optimizer: { type: 'sgd', lr: 0.1 } }).step(args, labels);
    expect(r.applied).toBe(true);
    expect(maxAbsDiff(snapshot(model).get('embed.weight')!, before.get('embed.weight')!)).toBeGreaterThan(0);
  });

  test.each([
    ['adamw', { type: 'adamw', lr: 0.01 }, /gradient of embed\.weight is sparse .*optimizer\.type 'adamw' cannot update a sparse gradient/],
    ['sgd with momentum', { type: 'sgd', lr: 0.01, momentum: 0.9 }, /embed\.weight is sparse .*'sgd' takes it only without momentum and weight decay.*momentum 0\.9/],
    ['adam with weight decay', { type: 'adam', lr: 0.01, weightDecay: 0.01 }, /embed\.weight is sparse .*no weight decay and no amsgrad: set optimizer\.weightDecay to 0/],
    ['adam with amsgrad', { type: 'adam', lr: 0.01, amsgrad: true }, /embed\.weight is sparse .*amsgrad true/],
  ] as const)('%s: a sparse gradient is refused with a TorchError naming the option, before any change', async (_, optimizer, message) => {
    const { args, labels } = inputs(makeBatches(1, 3)[0]);
    const model = Module.build(spec(true), { seed: 2 });
    const before = snapshot(model);
    const trainer = new Trainer(model, { optimizer });
    const err = await trainer.step(args, labels).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorchError);
    expect((err as Error).message).toMatch(message);
    expectBitEqual(snapshot(model), before);
  });

  test('weight decay on the other parameters only (an optimizer group for the table) is fine', async () => {
    const { args, labels } = inputs(makeBatches(1, 3)[0]);
    const model = Module.build(spec(true), { seed: 2 });
    const trainer = new Trainer(model, { optimizer: { type: 'adam', lr: 0.01, weightDecay: 0.01, groups: [{ params: ['embed.weight'], weightDecay: 0 }] } });
    expect((await trainer.step(args, labels)).applied).toBe(true);
  });

  test('Module.build checks sparseEmbedding', () => {
    expect(() => Module.build({ ...spec(true), sparseEmbedding: 'yes' } as never)).toThrow(/sparseEmbedding/);
    expect(() => Module.build({ kind: 'mlp', inputDim: 3, sparseEmbedding: true } as never)).toThrow(/unknown option 'sparseEmbedding'/);
  });
});

test("a dense-gradient run's optimizer state loads into a sparse-gradient trainer", async () => {
  const { args, labels } = inputs(makeBatches(1, 41)[0]);
  const dense = Module.build(spec(false), { seed: 6 });
  const t1 = new Trainer(dense, { optimizer: { type: 'adam', lr: 0.01 } });
  await t1.step(args, labels);
  const file = path.join(tmp, 'dense.state');
  await t1.saveState(file);
  const sparse = Module.build(spec(true), { seed: 6 });
  sparse.loadStateDict(dense.stateDict());
  const t2 = new Trainer(sparse, { optimizer: { type: 'adam', lr: 0.01 } });
  await t2.loadState(file);
  expect((await t2.step(args, labels)).applied).toBe(true);
});

test('a run configuration with sparseEmbedding and an optimizer that cannot take it fails when read', () => {
  const base = { data: { source: 'csv', path: 'x.csv' }, model: { kind: 'textcnn', sparseEmbedding: true } };
  expect(() => parseRunConfig({ ...base, optimizer: { type: 'adamw' } })).toThrow(/config\.model\.sparseEmbedding: needs optimizer\.type 'adam'.*'adamw' cannot/);
  expect(() => parseRunConfig({ ...base, optimizer: { type: 'adam', weightDecay: 0.1 } })).toThrow(/config\.model\.sparseEmbedding: .*no weight decay/);
  expect(() => parseRunConfig({ ...base, optimizer: { type: 'adam', weightDecay: 0.1, groups: [{ params: ['embed.*'], weightDecay: 0 }] } })).not.toThrow();
  expect(() => parseRunConfig({ ...base, optimizer: { type: 'sgd', momentum: 0.9 } })).toThrow(/'sgd' takes a sparse gradient only without momentum/);
  expect(() => parseRunConfig({ ...base, model: { kind: 'torchscript', path: 'm.pt', sparseEmbedding: true } })).toThrow(/is for the built-in text models/);
  expect(() => parseRunConfig({ ...base, model: { kind: 'textcnn', sparseEmbedding: 1 } })).toThrow(/sparseEmbedding/);
});

const distIt = distributedInfo().available ? test : test.skip;
distIt('distributed training refuses a sparse gradient with a clear TorchError, the parameters unchanged', async () => {
  const g = await ProcessGroup.init({ rank: 0, worldSize: 1, masterPort: await freePort(), timeoutMs: 5000 });
  try {
    const { args, labels } = inputs(makeBatches(1, 3)[0]);
    const model = Module.build(spec(true), { seed: 2 });
    const trainer = new Trainer(model, { optimizer: { type: 'adam', lr: 0.01 }, distributed: { group: g } });
    await trainer.ready;
    const before = snapshot(model);
    const err = await trainer.step(args, labels).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TorchError);
    expect((err as Error).message).toMatch(/distributed training does not support sparse gradients: the gradient of embed\.weight is sparse .*sparseEmbedding: false/);
    expectBitEqual(snapshot(model), before);
  } finally {
    g.close();
  }
});
