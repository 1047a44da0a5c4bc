import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

import { Module, Tensor, Trainer, tensor, LossConfig } from '../lib';
import { maxAbsDiff, PYTHON, runReference } from './helpers/reference';

// One SGD step with each loss, against torch.nn.functional in Python on the same model.
const PY = `
import sys, json, numpy as np, torch
import torch.nn.functional as F
model_path, x_path, y_path, spec = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
m = torch.jit.load(model_path); m.train()
x = torch.from_numpy(np.fromfile(x_path, dtype=np.float32).reshape(8, 6))
out = m(x)
if spec["type"] == "crossEntropy":
    y = torch.from_numpy(np.fromfile(y_path, dtype=np.int64))
    w = torch.tensor(spec["classWeights"], dtype=torch.float32) if spec.get("classWeights") else None
    loss = F.cross_entropy(out, y, weight=w, label_smoothing=spec.get("labelSmoothing", 0.0))
else:
    y = torch.from_numpy(np.fromfile(y_path, dtype=np.float32).reshape(8, 3))
    loss = F.binary_cross_entropy_with_logits(out, y) if spec["type"] == "bceWithLogits" else F.mse_loss(out, y)
opt = torch.optim.SGD(m.parameters(), lr=0.5)
opt.zero_grad(); loss.backward(); opt.step()
print(json.dumps({"loss": loss.item(), "params": {n: p.detach().reshape(-1).tolist() for n, p in m.named_parameters()}}))
`;

describe('losses match torch.nn.functional', () => {
  const ref = runReference({ model: 'mlp', seed: 8, steps: 1, batch: 8, optimizer: { type: 'sgd', lr: 0.1 }, attack: { method: 'none' } });
  const modelPath = path.join(ref.dir, 'model.pt');
  const x = ref.read(ref.meta.inputs[0].x);
  const classes = ref.read(ref.meta.inputs[0].y);
  const soft = tensor(Float32Array.from({ length: 24 }, (_, k) => ((k * 7) % 10) / 10), { shape: [8, 3] });

  test.each([
    [{ type: 'crossEntropy' }],
    [{ type: 'crossEntropy', labelSmoothing: 0.1 }],
    [{ type: 'crossEntropy', classWeights: [0.2, 1, 3] }],
    [{ type: 'bceWithLogits' }],
    [{ type: 'mse' }],
  ])('%j', async (spec: { type: string; labelSmoothing?: number; classWeights?: number[] }) => {
    const target = spec.type === 'crossEntropy' ? classes : soft;
    const xPath = path.join(ref.dir, 'lx.bin');
    const yPath = path.join(ref.dir, 'ly.bin');
    fs.writeFileSync(xPath, Buffer.from((x.toTypedArray() as Float32Array).buffer));
    const yData = target.toTypedArray() as Float32Array | BigInt64Array;
    fs.writeFileSync(yPath, Buffer.from(yData.buffer));
    const expected = JSON.parse(execFileSync(PYTHON, ['-c', PY, modelPath, xPath, yPath, JSON.stringify(spec)], { encoding: 'utf8' })) as {
      loss: number;
      params: Record<string, number[]>;
    };
    const module = await Module.load(modelPath);
    const loss: LossConfig = { type: spec.type as LossConfig['type'] };
    if (spec.labelSmoothing !== undefined) loss.labelSmoothing = spec.labelSmoothing;
    if (spec.classWeights !== undefined) loss.classWeights = tensor(Float32Array.from(spec.classWeights));
    const trainer = new Trainer(module, { optimizer: { type: 'sgd', lr: 0.5 }, loss });
    const r = await trainer.step(x, target);
    expect(r.cleanLoss).toBeCloseTo(expected.loss, 6);
    for (const [name, t] of module.namedParameters()) {
      expect(maxAbsDiff(t.flatten(), tensor(Float32Array.from(expected.params[name])))).toBeLessThan(1e-6);
    }
  });
});

describe('gradient accumulation', () => {
  test('two micro-batches with lossScale 0.5 equal one step on the whole batch', async () => {
    const ref = runReference({ model: 'mlp', seed: 9, steps: 1, batch: 8, optimizer: { type: 'sgd', lr: 0.1 }, attack: { method: 'none' } });
    const x = ref.read(ref.meta.inputs[0].x);
    const y = ref.read(ref.meta.inputs[0].y);
    const whole = await Module.load(path.join(ref.dir, 'model.pt'));
    const micro = await Module.load(path.join(ref.dir, 'model.pt'));
    const a = new Trainer(whole, { optimizer: { type: 'sgd', lr: 0.5, momentum: 0.9 } });
    const b = new Trainer(micro, { optimizer: { type: 'sgd', lr: 0.5, momentum: 0.9 } });
    for (let s = 0; s < 2; s++) {
      await a.step(x, y);
      const first = await b.step(x.narrow(0, 0, 4), y.narrow(0, 0, 4), { accumulate: true, lossScale: 0.5 });
      expect(first).toMatchObject({ applied: false, accumulated: true });
      const second = await b.step(x.narrow(0, 4, 4), y.narrow(0, 4, 4), { lossScale: 0.5 });
      expect(second.applied).toBe(true);
    }
    expect(b.globalStep).toBe(2);
    const pa = whole.namedParameters();
    for (const [name, t] of micro.namedParameters()) expect(maxAbsDiff(t, pa.get(name) as Tensor)).toBeLessThan(1e-6);
  });

  test('lr from a schedule is applied and reported; clipping bounds the update', async () => {
    const ref = runReference({ model: 'mlp', seed: 10, steps: 1, batch: 8, optimizer: { type: 'sgd', lr: 0.1 }, attack: { method: 'none' } });
    const module = await Module.load(path.join(ref.dir, 'model.pt'));
    const before = module.stateDict();
    const trainer = new Trainer(module, { optimizer: { type: 'sgd', lr: 0.1 } });
    const r = await trainer.step(ref.read(ref.meta.inputs[0].x), ref.read(ref.meta.inputs[0].y), { lr: 0.25, clipGradNorm: 1e-3, timePhases: true });
    expect(r.lr).toBe(0.25);
    expect(r.gradNorm).toBeGreaterThan(1e-3);
    // With the gradient clipped to norm 1e-3, the whole update has norm lr * 1e-3.
    let sq = 0;
    for (const [name, t] of module.namedParameters()) sq += t.sub(before.get(name) as Tensor).square().sum().item();
    expect(Math.sqrt(sq)).toBeCloseTo(0.25 * 1e-3, 6);
    expect(r.times).toBeDefined();
    expect(r.times!.forward).toBeGreaterThan(0);
    expect(r.times!.backward).toBeGreaterThan(0);
  });
});
