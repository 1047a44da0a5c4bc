// fit() stops training that cannot make progress and rejects settings that cannot work
// before the first step.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Batch, Generator, Module, Trainer, fit, randn } from '../lib';
import { TrainingError } from '../lib/train/fit';

const x = randn([64, 4], { generator: new Generator(1) });
const y = x.matmul(randn([4, 2], { generator: new Generator(2) })).argmax(1);
const batches = (size: number) => (): Batch[] => {
  const out: Batch[] = [];
  for (let b = 0; b < 64; b += size) out.push({ inputs: [x.narrow(0, b, Math.min(size, 64 - b))], target: y.narrow(0, b, Math.min(size, 64 - b)) });
  return out;
};
// Adam with lr 1e308: the first step applies and overflows the weights; the rest fail.
const trainer = (lr: number, type = 'adam') =>
  new Trainer(Module.build({ kind: 'mlp', inputDim: 4, hiddenSizes: [8], numClasses: 2 }, { seed: 1 }), { optimizer: { type, lr } } as never);

describe('fit: training that makes no progress', () => {
  test('a learning rate of 1e308: the run stops in epoch 1 with a TrainingError, not NaN metrics', async () => {
    const t = trainer(1e308);
    const run = fit(t, { epochs: 3, train: batches(8), validation: batches(32) });
    await expect(run).rejects.toThrow(TrainingError);
    await expect(fit(trainer(1e308), { epochs: 3, train: batches(8), validation: batches(32) })).rejects.toThrow(
      /^fit: epoch 1: 7 of 8 steps failed \(88% > maxSkippedShare 0\.5\); first at batch 2: the clean loss is not finite$/,
    );
  });

  test('maxSkippedShare 1 lets failed steps through, but an epoch with no applied step still stops', async () => {
    const r = fit(trainer(1e308), { epochs: 2, train: batches(8), maxSkippedShare: 1 });
    // Epoch 1 applies its first step (the one that overflows); epoch 2 applies none.
    await expect(r).rejects.toThrow(/^fit: epoch 2 applied no optimizer step in 8 batch\(es\) \(8 failed; first at batch 1: the clean loss is not finite\)$/);
  });

  test('the last checkpoint stays the one before the failing epoch', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-fit-health-'));
    const t = trainer(0.01);
    await fit(t, { epochs: 1, train: batches(8), checkpoint: { dir } });
    const before = fs.readFileSync(path.join(dir, 'last', 'state.json'), 'utf8');
    const model = fs.readFileSync(path.join(dir, 'last', 'model.pt'));
    const again = trainer(0.01);
    await expect(fit(again, { epochs: 3, train: batches(8), checkpoint: { dir }, resume: dir, schedule: () => 1e30 })).rejects.toThrow(TrainingError);
    expect(fs.readFileSync(path.join(dir, 'last', 'model.pt')).equals(model)).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'last', 'state.json'), 'utf8')).toBe(before);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('settings that cannot work are rejected before the first step', async () => {
    const t = trainer(0.1);
    await expect(fit(t, { epochs: 1, train: batches(8), accumulate: 9 })).rejects.toThrow(/accumulate 9 is larger than the 8 batches of epoch 1; no optimizer step would run/);
    await expect(fit(t, { epochs: 1, train: batches(8), checkpoint: { dir: '/nonexistent', monitor: 'val.acc' } })).rejects.toThrow(/unknown metric 'val.acc'/);
    await expect(fit(t, { epochs: 1, train: batches(8), checkpoint: { dir: '/nonexistent', monitor: 'val.loss' } })).rejects.toThrow(
      /checkpoint.monitor 'val.loss' needs validation batches/,
    );
    await expect(fit(t, { epochs: 1, train: batches(8), earlyStopping: { monitor: 'val.accuracy', patience: 1 } })).rejects.toThrow(
      /earlyStopping.monitor 'val.accuracy' needs validation batches/,
    );
    await expect(fit(t, { epochs: 1, train: batches(8), maxSkippedShare: 1.5 })).rejects.toThrow(/maxSkippedShare/);
    expect(t.globalStep).toBe(0);
  });

  test('early stopping reports why it stopped', async () => {
    const r = await fit(trainer(0, 'sgd'), { epochs: 10, train: batches(8), validation: batches(32), earlyStopping: { monitor: 'val.loss', patience: 2 } });
    expect(r.stoppedEarly).toBe(true);
    expect(r.stopReason).toMatch(/^early stopping: val\.loss did not improve for 2 epoch\(s\) \(best \d+\.\d{4} at epoch 1\); stopped after epoch 3 of 10$/);
    const full = await fit(trainer(0.1), { epochs: 2, train: batches(8) });
    expect(full.stopReason).toBeNull();
  });
});
