// The lifecycle of native objects: dispose() and [Symbol.dispose] (with `using`), what a
// disposed object says when used, disposal while a step runs, and the memory() reports
// checked against sums computed here from shapes and element sizes.
import {
  cpuCache,
  DType,
  Generator,
  Module,
  Perturbation,
  Tensor,
  TorchError,
  Trainer,
  memory,
  perturb,
  rand,
  randint,
  randn,
  tensor,
  zeros,
} from '../lib';
import { cachedBackupBytes, releaseCachedBackups } from '../lib/ops';

const ELEMENT_BYTES: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  uint8: 1,
  bool: 1,
};
/** numel × element size, from the shape and dtype alone. */
const bytesOf = (t: Tensor) => t.shape.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[t.dtype];
const sum = (ts: Tensor[]) => ts.reduce((a, t) => a + bytesOf(t), 0);
/** Same values, element for element. */
const same = (a: Tensor, b: Tensor) => a.ne(b).sum().item() === 0;

function mlp(seed = 1): Module {
  return Module.build({ kind: 'mlp', inputDim: 6, hiddenSizes: [16, 8], numClasses: 3 }, { seed });
}
/** A model with buffers (batch-norm statistics, an int64 counter among them). */
function resnet(): Module {
  return Module.build({ kind: 'resnet32', width: 4, blocksPerStage: 1, numClasses: 3 }, { seed: 2 });
}
function batch(n = 8): [Tensor, Tensor] {
  return [randn([n, 6]), randint(0, 3, [n])];
}
function buffersOf(m: Module): Tensor[] {
  const params = new Set(m.namedParameters().keys());
  return [...m.stateDict()].filter(([name]) => !params.has(name)).map(([, t]) => t);
}

describe('Symbol.dispose', () => {
  it('is defined, and every class disposes through it', () => {
    expect(typeof Symbol.dispose).toBe('symbol');
    for (const cls of [Tensor, Module, Trainer, Generator, Perturbation]) {
      expect(typeof cls.prototype[Symbol.dispose]).toBe('function');
    }
  });

  it('`using` disposes at the end of the block, by an exception too', () => {
    let t: Tensor | undefined;
    let g: Generator | undefined;
    let m: Module | undefined;
    {
      using t1 = zeros([3]);
      using g1 = new Generator(1);
      using m1 = mlp();
      t = t1;
      g = g1;
      m = m1;
      expect(t.isDisposed || g.isDisposed || m.isDisposed).toBe(false);
    }
    expect([t.isDisposed, g.isDisposed, m.isDisposed]).toEqual([true, true, true]);
    let kept: Tensor | undefined;
    expect(() => {
      using t2 = zeros([3]);
      kept = t2;
      throw new Error('boom');
    }).toThrow('boom');
    expect(kept?.isDisposed).toBe(true);
  });
});

describe('disposed objects', () => {
  it('Module: calls throw a TorchError naming it; dispose twice is fine', async () => {
    const m = mlp();
    m.dispose();
    m.dispose();
    expect(m.isDisposed).toBe(true);
    const [x] = batch();
    await expect(m.forward(x)).rejects.toThrow(TorchError);
    await expect(m.forward(x)).rejects.toThrow('Module.forward: the Module has been disposed');
    expect(() => m.parameters()).toThrow(/Module has been disposed/);
    expect(() => m.train()).toThrow(/Module has been disposed/);
    expect(() => m.memory()).toThrow(/Module has been disposed/);
    await expect(m.save('/tmp/never-written.pt')).rejects.toThrow(/Module has been disposed/);
    expect(() => new Trainer(m, { optimizer: { type: 'sgd', lr: 0.1 } })).toThrow(/Module has been disposed/);
  });

  it('Trainer: calls throw a TorchError naming it; its module stays usable', async () => {
    const m = mlp();
    const trainer = new Trainer(m, { optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    const [x, y] = batch();
    await trainer.step(x, y);
    trainer.dispose();
    trainer.dispose();
    expect(trainer.isDisposed).toBe(true);
    await expect(trainer.step(x, y)).rejects.toThrow(TorchError);
    await expect(trainer.step(x, y)).rejects.toThrow('Trainer.step: the Trainer has been disposed');
    expect(() => trainer.globalStep).toThrow(/Trainer has been disposed/);
    expect(() => trainer.memory()).toThrow(/Trainer has been disposed/);
    await expect(trainer.saveState('/tmp/never-written.pt')).rejects.toThrow(/Trainer has been disposed/);
    expect(m.isDisposed).toBe(false);
    const out = (await m.forward(x)) as Tensor;
    expect(out.shape).toEqual([8, 3]);
    // A new trainer on the same module works.
    const again = new Trainer(m, { optimizer: { type: 'sgd', lr: 0.1 } });
    expect((await again.step(x, y)).applied).toBe(true);
  });

  it("disposing a Module releases its trainers, which then name the module", async () => {
    const m = mlp();
    const a = new Trainer(m, { optimizer: { type: 'adam', lr: 1e-3 } });
    const b = new Trainer(m, { optimizer: { type: 'sgd', lr: 0.1 } });
    const [x, y] = batch();
    await a.step(x, y);
    m.dispose();
    expect([a.isDisposed, b.isDisposed]).toEqual([true, true]);
    await expect(a.step(x, y)).rejects.toThrow("Trainer.step: the Trainer's Module has been disposed");
    expect(() => b.method).toThrow(/Module has been disposed/);
    a.dispose(); // still fine
  });

  it('Generator: calls throw a TorchError naming it', () => {
    const g = new Generator(7);
    g.dispose();
    g.dispose();
    expect(g.isDisposed).toBe(true);
    expect(() => rand([2], { generator: g })).toThrow(TorchError);
    expect(() => rand([2], { generator: g })).toThrow(/Generator has been disposed/);
    expect(() => g.getState()).toThrow(/Generator has been disposed/);
    expect(() => g.seed).toThrow(/Generator has been disposed/);
  });

  it('Perturbation: dispose restores the target bit for bit; later calls throw', () => {
    const w = randn([64, 5]);
    const original = w.clone();
    const p = perturb(w, randn([64, 5]), { epsilon: 0.5, p: 0.7, seed: 3 });
    expect(w.sub(original).abs().max().item()).toBeGreaterThan(0);
    p.dispose();
    expect(same(w, original)).toBe(true);
    p.dispose();
    expect(p.isDisposed).toBe(true);
    expect(() => p.restore()).toThrow(TorchError);
    expect(() => p.restore()).toThrow(/Perturbation has been disposed/);
    expect(() => p.restored).toThrow(/Perturbation has been disposed/);
  });

  it('Perturbation: `using` scopes it, an exception included; a restored one is left as is', () => {
    const w = randn([32]);
    const original = w.clone();
    expect(() => {
      using _p = perturb(w, randn([32]), { epsilon: 1 });
      expect(same(w, original)).toBe(false);
      throw new Error('inside');
    }).toThrow('inside');
    expect(same(w, original)).toBe(true);
    const q = perturb(w, randn([32]), { epsilon: 1 });
    q.restore();
    w.add_(1);
    q.dispose(); // restores nothing a second time
    expect(w.sub(original).sub(1).abs().max().item()).toBeLessThan(1e-5);
  });
});

describe('dispose while a step runs', () => {
  it('is refused with a TorchError (the step finishes; disposal works after it)', async () => {
    const m = mlp();
    const trainer = new Trainer(m, { optimizer: { type: 'sgd', lr: 0.1 }, attack: { method: 'dropattack', groups: [{ targets: '*', epsilon: 0.1, p: 0.5 }], k: 3 } });
    const [x, y] = batch(64);
    const step = trainer.step(x, y);
    expect(m.busy).toBe(true);
    expect(() => m.dispose()).toThrow(TorchError);
    expect(() => m.dispose()).toThrow(/Module.dispose: the module is busy \(a training step is running\)/);
    expect(() => trainer.dispose()).toThrow(/Trainer.dispose: the module is busy/);
    expect(m.isDisposed).toBe(false);
    expect((await step).applied).toBe(true);
    trainer.dispose();
    m.dispose();
    expect([m.isDisposed, trainer.isDisposed]).toEqual([true, true]);
  });

  it('memory() reads around a running step; the per-object reports wait for it', async () => {
    const m = mlp();
    const trainer = new Trainer(m, { optimizer: { type: 'adam', lr: 1e-3 } });
    const [x, y] = batch(64);
    await trainer.step(x, y);
    const optimizerBytes = trainer.memory().optimizerState;
    const step = trainer.step(x, y);
    expect(() => m.memory()).toThrow(/Module.memory: the module is busy/);
    expect(() => trainer.memory()).toThrow(/Trainer.memory: the module is busy/);
    const during = memory();
    expect(during.counts.modules).toBeGreaterThanOrEqual(1);
    expect(during.optimizerState).toBeGreaterThanOrEqual(optimizerBytes);
    await step;
    expect(trainer.memory().optimizerState).toBe(optimizerBytes);
    m.dispose();
  });

  it('a forward in flight also holds off Module.dispose', async () => {
    const m = mlp();
    const [x] = batch(256);
    const out = m.forward(x);
    expect(() => m.dispose()).toThrow(/module is busy \(forward is running\)/);
    await out;
    m.dispose();
  });
});

describe('memory()', () => {
  it('Module.memory: parameters, buffers and gradients against sums of numel × element size', async () => {
    const m = resnet();
    const params = m.parameters();
    const buffers = buffersOf(m);
    expect(buffers.length).toBeGreaterThan(0);
    expect(buffers.some((b) => b.dtype === 'int64')).toBe(true); // num_batches_tracked
    const before = m.memory();
    expect(before.parameters).toBe(sum(params));
    expect(before.buffers).toBe(sum(buffers));
    expect(before.gradients).toBe(0);
    expect(before.total).toBe(sum(params) + sum(buffers));
    expect(before.devices).toEqual({ cpu: { parameters: before.parameters, buffers: before.buffers, gradients: 0, total: before.total } });
    const trainer = new Trainer(m, { optimizer: { type: 'sgd', lr: 0.01 } });
    await trainer.step(randn([4, 3, 32, 32]), randint(0, 3, [4]));
    const grads = m.parameters().map((p) => p.grad).filter((g): g is Tensor => g !== null);
    expect(grads.length).toBeGreaterThan(0);
    const after = m.memory();
    expect(after.gradients).toBe(sum(grads));
    expect(after.parameters).toBe(before.parameters);
    expect(after.total).toBe(after.parameters + after.buffers + after.gradients);
    m.to('float64');
    expect(m.memory().parameters).toBe(2 * before.parameters);
  });

  it('Trainer.memory: the optimizer state of SGD with momentum, Adam and AMSGrad, and class weights', async () => {
    const m = mlp();
    const paramBytes = sum(m.parameters());
    const [x, y] = batch();
    const cases: [object, number][] = [
      [{ type: 'sgd', lr: 0.1 }, 0],
      [{ type: 'sgd', lr: 0.1, momentum: 0.9 }, 1],
      [{ type: 'adam', lr: 1e-3 }, 2],
      [{ type: 'adamw', lr: 1e-3 }, 2],
      [{ type: 'adam', lr: 1e-3, amsgrad: true }, 3],
    ];
    for (const [optimizer, copies] of cases) {
      const trainer = new Trainer(m, { optimizer, loss: { type: 'crossEntropy', classWeights: tensor([1, 2, 3], { dtype: 'float32' }) } });
      expect(trainer.memory().optimizerState).toBe(0); // state appears with the first step
      expect(trainer.memory().lossState).toBe(3 * 4);
      await trainer.step(x, y);
      const r = trainer.memory();
      expect([optimizer, r.optimizerState]).toEqual([optimizer, copies * paramBytes]);
      expect(r.total).toBe(r.optimizerState + 12);
      expect(r.devices.cpu.total).toBe(r.total);
      trainer.dispose();
    }
  });

  it('memory(): each kind moves by what was made and freed, each storage counted once', async () => {
    releaseCachedBackups();
    const base = memory();
    expect(base.cachedBackups).toBe(0);
    expect(base.total).toBe(base.modules + base.optimizerState + base.backups + base.cachedBackups + base.tensors);

    // Tensors: a new storage, then a view of it (counted once), then disposal.
    const t = zeros([1000]);
    const view = t.reshape([10, 100]);
    let now = memory();
    expect(now.tensors - base.tensors).toBe(4000);
    expect(now.counts.tensors - base.counts.tensors).toBe(2);
    expect(now.devices.cpu.tensors - (base.devices.cpu?.tensors ?? 0)).toBe(4000);
    view.dispose();
    t.dispose();
    now = memory();
    expect(now.tensors).toBe(base.tensors);
    expect(now.counts.tensors).toBe(base.counts.tensors);

    // A module and its trainer; parameter handles from namedParameters() share the
    // module's storages and add nothing. (Compared without an await in between, so no
    // finalizer of an earlier test's objects runs meanwhile.)
    const m = mlp();
    const handles = m.parameters();
    const trainer = new Trainer(m, { optimizer: { type: 'adam', lr: 1e-3 } });
    const [x, y] = batch();
    await trainer.step(x, y);
    const held = memory();
    const moduleBytes = m.memory().total;
    const trainerBytes = trainer.memory().total;
    expect(trainerBytes).toBe(2 * sum(handles));
    trainer.dispose();
    now = memory();
    expect(held.optimizerState - now.optimizerState).toBe(trainerBytes);
    expect(held.counts.trainers - now.counts.trainers).toBe(1);
    expect(now.modules).toBe(held.modules);
    m.dispose();
    const after = memory();
    expect(now.modules - after.modules).toBe(moduleBytes);
    expect(now.counts.modules - after.counts.modules).toBe(1);
    // The parameter handles still hold the parameters' memory: it shows as tensors now.
    expect(after.tensors - now.tensors).toBe(sum(handles));
    handles.forEach((h) => h.dispose());
    expect(memory().tensors).toBe(now.tensors);

    // A perturbation's backup, then the pool it returns to.
    const w = randn([256, 16]);
    const d = randn([256, 16]);
    const p = perturb(w, d, { epsilon: 1 });
    now = memory();
    expect(now.backups - base.backups).toBe(p.backupBytes);
    expect(p.backupBytes).toBe(bytesOf(w));
    expect(now.counts.perturbations - base.counts.perturbations).toBe(1);
    p.restore();
    now = memory();
    expect(now.backups).toBe(base.backups);
    expect(now.cachedBackups).toBe(cachedBackupBytes());
    // With the caching CPU allocator a restored CPU backup goes back to it, not to the pool.
    if (cpuCache().installed) expect(now.cachedBackups).toBe(base.cachedBackups);
    else expect(now.cachedBackups).toBeGreaterThanOrEqual(bytesOf(w));
    releaseCachedBackups();
    expect(memory().cachedBackups).toBe(0);
  });
});
