import { execFileSync } from 'child_process';
import * as path from 'path';

import { cpuCache, full, getNumThreads, Module, releaseCpuCache, setNumThreads, tensor, Trainer, zeros } from '../lib';
import { cachedBackupBytes, perturb } from '../lib/ops';

const MiB = 1 << 20;

describe('the caching CPU allocator', () => {
  test('is installed at load and reuses a freed block for the next tensor of its size', () => {
    const before = cpuCache();
    expect(before.installed).toBe(true);
    expect(before.limitBytes).toBeGreaterThan(0);
    const a = full([MiB], 7); // 4 MiB
    const afterAlloc = cpuCache();
    a.dispose();
    const b = zeros([MiB]);
    const afterReuse = cpuCache();
    expect(afterReuse.hits).toBe(afterAlloc.hits + 1);
    expect(afterReuse.misses).toBe(afterAlloc.misses);
    // A reused block holds what the new tensor says, not the old values.
    expect(b.abs().sum().item()).toBe(0);
    b.dispose();
    expect(cpuCache().cachedBytes).toBeLessThanOrEqual(cpuCache().limitBytes);
  });

  test('releaseCpuCache unmaps every kept block', () => {
    full([MiB], 1).dispose();
    expect(cpuCache().cachedBytes).toBeGreaterThan(0);
    releaseCpuCache();
    expect(cpuCache().cachedBytes).toBe(0);
  });

  test('counts live bytes and their peak (cpuCache(true) restarts the peak)', () => {
    const base = cpuCache(true).liveBytes;
    const a = full([2 * MiB], 1); // 8 MiB
    const b = full([MiB], 1); // 4 MiB
    expect(cpuCache().liveBytes - base).toBe(12 * MiB);
    a.dispose();
    b.dispose();
    const s = cpuCache();
    expect(s.liveBytes).toBe(base);
    expect(s.peakLiveBytes - base).toBe(12 * MiB);
    expect(() => cpuCache('yes' as unknown as boolean)).toThrow(TypeError);
  });

  test('DROPATTACK_CPU_CACHE_MB=0 keeps LibTorch\'s allocator, and training works with either', () => {
    const script = `
      const { cpuCache, Module, Trainer, tensor } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'lib'))});
      (async () => {
        const m = Module.build({ kind: 'mlp', inputDim: 512, hiddenSizes: [1024], numClasses: 3 }, { seed: 1 });
        const t = new Trainer(m, { optimizer: { type: 'adam', lr: 0.01 }, attack: { method: 'none' } });
        const x = tensor(Float32Array.from({ length: 4 * 512 }, (_, k) => Math.sin(k)), { shape: [4, 512] });
        const y = tensor(BigInt64Array.from([0n, 1n, 2n, 1n]));
        const r = await t.step(x, y);
        console.log(JSON.stringify({ installed: cpuCache().installed, loss: r.cleanLoss }));
      })();`;
    const run = (env: Record<string, string>) =>
      JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' }).trim());
    const off = run({ DROPATTACK_CPU_CACHE_MB: '0' });
    const on = run({ DROPATTACK_CPU_CACHE_MB: '64' });
    expect(off.installed).toBe(false);
    expect(on.installed).toBe(true);
    expect(on.loss).toBe(off.loss);
  });
});

describe('extra memory of a dense attacked tensor', () => {
  const old = getNumThreads();
  beforeAll(() => setNumThreads(1));
  afterAll(() => setNumThreads(old));

  test('the dense op backs up the target once and, restored, keeps nothing in its own pool', () => {
    const w = full([MiB], 1);
    const d = full([MiB], 0.5);
    const p = perturb(w, d, { epsilon: 1, p: 0.5, seed: 1, counter: 0 });
    expect(p.backupBytes).toBe(4 * MiB);
    p.restore();
    // The freed backup goes back to the allocator, where the optimizer's tensors can reuse it.
    expect(cachedBackupBytes()).toBe(0);
  });

  // A 16384 x 64 float32 table (4 MiB) attacked densely: the step's extra peak of large
  // blocks over plain training is its backup, and nothing else of its size.
  test('a DropAttack-1 step adds at most 1.1x the table to the peak of plain training', async () => {
    const vocab = 16384, dim = 64, table = vocab * dim * 4;
    const spec = { kind: 'textcnn' as const, vocabSize: vocab, embedDim: dim, numFilters: 8, kernelSizes: [3], numClasses: 2 };
    const B = 8, T = 32;
    const ids = BigInt64Array.from({ length: B * T }, (_, k) => BigInt(1 + ((k * 7919) % (vocab - 1))));
    const tokens = tensor(ids, { shape: [B, T] });
    const lengths = tensor(BigInt64Array.from({ length: B }, () => BigInt(T)));
    const labels = tensor(BigInt64Array.from({ length: B }, (_, k) => BigInt(k % 2)));
    const peakOfStep = async (attack: boolean): Promise<number> => {
      const m = Module.build(spec, { seed: 1 });
      const t = new Trainer(m, {
        optimizer: { type: 'adam', lr: 1e-3 },
        attack: attack
          ? { method: 'dropattack', k: 1, seed: 3, groups: [{ targets: ['embed.weight'], epsilon: 1, p: 0.5, sparse: 'off' }] }
          : { method: 'none' },
      });
      // Two steps first: the optimizer's moments and the kept gradients exist from then on.
      for (let s = 0; s < 2; s++) await t.step([tokens, lengths], labels);
      const base = cpuCache(true).liveBytes;
      const r = await t.step([tokens, lengths], labels);
      expect(r.applied).toBe(true);
      expect(r.sparseTargets).toEqual([]);
      const peak = cpuCache().peakLiveBytes - base;
      return peak;
    };
    const plain = await peakOfStep(false);
    const attacked = await peakOfStep(true);
    const extra = attacked - plain;
    expect(extra / table).toBeGreaterThanOrEqual(0.9); // the backup is there (the count sees it)
    expect(extra / table).toBeLessThanOrEqual(1.1);
  });
});
