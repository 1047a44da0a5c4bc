import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { Batch, Module, Tensor, Trainer, fit, evaluate, manualSeed, tensor, randn, Generator, LogEvent, cosineLR } from '../lib';
import { maxAbsDiff } from './helpers/reference';

// A synthetic 3-class problem: the label is the argmax of three fixed projections.
function dataset(n: number, seed: number): { x: Tensor; y: Tensor } {
  const x = randn([n, 6], { generator: new Generator(seed) });
  const w = randn([6, 3], { generator: new Generator(424242) }); // the same rule for every split
  return { x, y: x.matmul(w).argmax(1) };
}

function batches(data: { x: Tensor; y: Tensor }, batchSize: number, seed: number | null) {
  return (epoch: number): Batch[] => {
    const n = data.x.shape[0];
    const order = Array.from({ length: n }, (_, i) => i);
    if (seed !== null) {
      let s = (seed * 1000 + epoch) >>> 0;
      for (let i = n - 1; i > 0; i--) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        const j = s % (i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    const out: Batch[] = [];
    for (let b = 0; b < n; b += batchSize) {
      const idx = tensor(BigInt64Array.from(order.slice(b, b + batchSize).map(BigInt)));
      out.push({ inputs: [data.x.indexSelect(0, idx)], target: data.y.indexSelect(0, idx) });
    }
    return out;
  };
}

const newTrainer = (modelSeed: number) => {
  const model = Module.build({ kind: 'mlp', inputDim: 6, hiddenSizes: [32], dropout: 0.2, numClasses: 3 }, { seed: modelSeed });
  return new Trainer(model, {
    optimizer: { type: 'adam', lr: 0.01 },
    attack: { method: 'dropattack', seed: 3, groups: [{ targets: 'fc1.weight', epsilon: 0.3, p: 0.5 }, { targets: 'out.weight', epsilon: 0.1, p: 0.5 }] },
  });
};

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-fit-'));

describe('fit', () => {
  const train = dataset(256, 1);
  const val = dataset(128, 7);

  test('learns, validates, keeps the best model, logs every batch and epoch, and calls back', async () => {
    manualSeed(5);
    const trainer = newTrainer(1);
    const dir = tmp();
    const events: LogEvent[] = [];
    let batchCalls = 0;
    const epochs: number[] = [];
    const result = await fit(trainer, {
      epochs: 6,
      train: batches(train, 32, 11),
      validation: batches(val, 64, null),
      schedule: cosineLR({ lr: 0.02, totalSteps: 48 }),
      checkpoint: { dir },
      loggers: [{ log: (e) => events.push(e), close: () => Promise.resolve() }],
      onBatchEnd: () => {
        batchCalls++;
      },
      onEpochEnd: (r) => {
        epochs.push(r.epoch);
      },
    });
    expect(result.history).toHaveLength(6);
    expect(epochs).toEqual([1, 2, 3, 4, 5, 6]);
    expect(batchCalls).toBe(48);
    expect(events.filter((e) => e.kind === 'batch')).toHaveLength(48);
    expect(events.filter((e) => e.kind === 'epoch')).toHaveLength(6);
    expect(events[0].kind).toBe('run-start');
    expect(events[events.length - 1].kind).toBe('run-end');
    const acc = result.history.map((h) => h.validation!.accuracy);
    expect(acc[5]).toBeGreaterThan(0.8);
    expect(result.history[5].trainLoss).toBeLessThan(result.history[0].trainLoss);
    expect(result.best!.monitor).toBe('val.accuracy');
    expect(result.best!.value).toBe(Math.max(...acc));
    // The best checkpoint holds the best model: evaluating it reproduces its accuracy.
    const best = await Module.load(path.join(dir, 'best', 'model.pt'));
    const m = await evaluate(best, batches(val, 64, null)(0));
    expect(m.accuracy).toBeCloseTo(result.best!.value, 10);
    expect(fs.existsSync(path.join(dir, 'last', 'state.json'))).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('resuming from a checkpoint gives the same final parameters as an uninterrupted run', async () => {
    const run = async (stopAfter: number | null, resumeDir: string | null, dir: string) => {
      manualSeed(9);
      const trainer = newTrainer(resumeDir ? 99 : 1); // a resumed run starts from other weights
      if (resumeDir) manualSeed(12345); // and another RNG state: the checkpoint must restore both
      await fit(trainer, {
        epochs: stopAfter ?? 5,
        train: batches(train, 32, 21),
        checkpoint: { dir },
        ...(resumeDir ? { resume: resumeDir, epochs: 5 } : {}),
      });
      return trainer.module;
    };
    const a = tmp();
    const b = tmp();
    const whole = await run(null, null, a);
    await run(2, null, b); // interrupted after epoch 2
    const resumed = await run(null, b, b);
    const pw = whole.namedParameters();
    for (const [name, t] of resumed.namedParameters()) expect(maxAbsDiff(t, pw.get(name) as Tensor)).toBe(0);
    fs.rmSync(a, { recursive: true, force: true });
    fs.rmSync(b, { recursive: true, force: true });
  });

  test('a replace cut short leaves a complete checkpoint that resume finds', async () => {
    const dir = tmp();
    const trainer = newTrainer(1);
    await fit(trainer, { epochs: 1, train: batches(train, 64, 1), checkpoint: { dir } });
    // As if the process died between moving `last` aside and moving the new one in.
    fs.renameSync(path.join(dir, 'last'), path.join(dir, 'last.old'));
    const again = newTrainer(2);
    const r = await fit(again, { epochs: 2, train: batches(train, 64, 1), resume: dir });
    expect(r.history.map((h) => h.epoch)).toEqual([1, 2]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('early stopping and abort', async () => {
    const trainer = newTrainer(1);
    const frozen = await fit(
      new Trainer(trainer.module, { optimizer: { type: 'sgd', lr: 0 } }),
      { epochs: 10, train: batches(train, 64, 1), validation: batches(val, 64, null), earlyStopping: { monitor: 'val.loss', patience: 2 } },
    );
    expect(frozen.stoppedEarly).toBe(true);
    expect(frozen.history).toHaveLength(3);
    const controller = new AbortController();
    const dir = tmp();
    const r = await fit(newTrainer(1), {
      epochs: 5,
      train: batches(train, 32, 1),
      checkpoint: { dir },
      signal: controller.signal,
      onBatchEnd: ({ epoch, batch }) => {
        if (epoch === 2 && batch === 3) controller.abort();
      },
    });
    expect(r.aborted).toBe(true);
    expect(r.history).toHaveLength(1);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'last', 'state.json'), 'utf8')).epoch).toBe(1);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('bad options name the field', async () => {
    const trainer = newTrainer(1);
    await expect(fit(trainer, { epochs: 0, train: batches(train, 64, 1) })).rejects.toThrow(/epochs must be an integer >= 1/);
    await expect(fit(trainer, { epochs: 1, train: [] as never })).rejects.toThrow(/train must be a function/);
    await expect(fit(trainer, { epochs: 1, train: batches(train, 64, 1), earlyStopping: { monitor: 'val.acc', patience: 1 } })).rejects.toThrow(/unknown metric 'val.acc'/);
    await expect(fit(trainer, { epochs: 1, train: batches(train, 64, 1), resume: '/nonexistent' })).rejects.toThrow(/no checkpoint to resume/);
  });
});

describe('fit under kill -9', () => {
  test('a run killed at random moments always leaves a complete checkpoint to resume from', async () => {
    const { spawn } = await import('child_process');
    const dist = path.join(__dirname, '..', 'dist', 'lib', 'index.js');
    const dir = tmp();
    const script = `
      const da = require(${JSON.stringify(dist)});
      const x = da.randn([512, 6], { generator: new da.Generator(1) });
      const y = x.matmul(da.randn([6, 3], { generator: new da.Generator(2) })).argmax(1);
      const model = da.Module.build({ kind: 'mlp', inputDim: 6, hiddenSizes: [64], numClasses: 3 }, { seed: 1 });
      const trainer = new da.Trainer(model, { optimizer: { type: 'adam', lr: 0.01 } });
      const batches = () => { const out = []; for (let b = 0; b < 512; b += 8) out.push({ inputs: [x.narrow(0, b, 8)], target: y.narrow(0, b, 8) }); return out; };
      const fs = require('fs');
      const resume = fs.existsSync(${JSON.stringify(path.join(dir, 'last'))}) || fs.existsSync(${JSON.stringify(path.join(dir, 'last.old'))});
      da.fit(trainer, { epochs: 1000, train: batches, checkpoint: { dir: ${JSON.stringify(dir)} }, ...(resume ? { resume: ${JSON.stringify(dir)} } : {}) });
    `;
    for (let round = 0; round < 6; round++) {
      const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
      if (round === 0) {
        // The first run is killed only after its first checkpoint is written, however long
        // loading LibTorch takes on a busy machine; the kills after it land anywhere.
        const first = path.join(dir, 'last', 'state.json');
        const until = Date.now() + 30000;
        while (!fs.existsSync(first) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 700 + ((round * 379) % 600)));
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
    }
    const candidates = ['last', 'last.old'].map((n) => path.join(dir, n)).filter((d) => fs.existsSync(path.join(d, 'state.json')));
    expect(candidates.length).toBeGreaterThan(0);
    const state = JSON.parse(fs.readFileSync(path.join(candidates[0], 'state.json'), 'utf8'));
    expect(state.epoch).toBeGreaterThan(0);
    const m = await Module.load(path.join(candidates[0], 'model.pt'));
    expect(m.namedParameters().size).toBe(4);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60000);
});
