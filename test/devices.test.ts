// Devices: every test here runs on each device backends() reports (the CPU always, and
// cuda:0..N-1 on a CUDA build with GPUs), against the CPU as the reference.
import { Device, Module, Tensor, Trainer, backends, dropMask, tensor } from '../lib';
import { ConfigError } from '../lib/app/config';
import { evaluate } from '../lib/train/fit';
import { checkDevice, parseRunConfig } from '../lib/app/run';

const info = backends();
const DEVICES: Device[] = ['cpu', ...Array.from({ length: info.cuda ? info.cudaDeviceCount : 0 }, (_, k) => `cuda:${k}` as Device)];

function batch(seed: number): { x: Tensor; y: Tensor } {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  return {
    x: tensor(Float32Array.from({ length: 8 * 5 }, next), { shape: [8, 5] }),
    y: tensor(Array.from({ length: 8 }, (_, k) => (k * 7) % 3), { dtype: 'int64' }),
  };
}

async function trainOn(device: Device, method: 'none' | 'dropattack' | 'pgd'): Promise<{ params: Float32Array[]; losses: number[] }> {
  const model = Module.build({ kind: 'mlp', inputDim: 5, hiddenSizes: [12], numClasses: 3 }, { seed: 4 });
  model.to(device);
  const attack =
    method === 'none'
      ? { method }
      : method === 'pgd'
        ? { method, k: 3, alpha: 0.2, seed: 2, groups: [{ targets: ['*weight*'], epsilon: 0.5 }] }
        : { method, k: 2, seed: 2, groups: [{ targets: ['*weight*', 'input'], epsilon: 1, p: 0.6 }] };
  const trainer = new Trainer(model, { optimizer: { type: 'adam', lr: 0.01 }, attack });
  const losses: number[] = [];
  for (let s = 0; s < 4; ++s) {
    const { x, y } = batch(s + 10); // batches come from the host; the trainer moves them
    const r = await trainer.step(x, y);
    expect(r.applied).toBe(true);
    losses.push(r.cleanLoss);
  }
  const params = [...model.namedParameters().values()].map((t) => {
    expect(t.device).toBe(device === 'cuda' ? 'cuda:0' : device);
    return t.to('cpu').toTypedArray() as Float32Array;
  });
  return { params, losses };
}

describe.each(DEVICES)('on %s', (device) => {
  test.each(['none', 'dropattack', 'pgd'] as const)('%s training matches the CPU (1e-5) with batches given on the host', async (method) => {
    const ref = await trainOn('cpu', method);
    const got = await trainOn(device, method);
    got.params.forEach((p, i) => p.forEach((v, j) => expect(Math.abs(v - ref.params[i][j])).toBeLessThan(1e-5)));
    got.losses.forEach((l, k) => expect(l).toBeCloseTo(ref.losses[k], 5));
  });

  test('evaluate() runs where the model is and reads the metrics on the host', async () => {
    const model = Module.build({ kind: 'mlp', inputDim: 5, hiddenSizes: [6], numClasses: 3 }, { seed: 8 });
    const ref = await evaluate(model, [{ inputs: [batch(1).x], target: batch(1).y }]);
    model.to(device);
    const got = await evaluate(model, [{ inputs: [batch(1).x], target: batch(1).y }]);
    expect(got.accuracy).toBe(ref.accuracy);
    expect(got.loss).toBeCloseTo(ref.loss, 5);
  });

  test('a label out of range is a clear error, with the target given on the host or on the device', async () => {
    const model = Module.build({ kind: 'mlp', inputDim: 5, hiddenSizes: [6], numClasses: 3 }, { seed: 8 });
    model.to(device);
    const trainer = new Trainer(model, { optimizer: { type: 'sgd', lr: 0.1 } });
    const { x } = batch(2);
    const bad = tensor([0, 1, 2, 3, 0, 1, 2, 0], { dtype: 'int64' });
    await expect(trainer.step(x, bad)).rejects.toThrow(/label 3 is out of range for 3 classes/);
    const neg = tensor([0, 1, 2, -1, 0, 1, 2, 0], { dtype: 'int64' });
    await expect(trainer.step(x, neg.to(device))).rejects.toThrow(/label -1 is out of range for 3 classes/);
    // The module is usable afterwards.
    expect((await trainer.step(x, batch(2).y)).applied).toBe(true);
  });

  test('dropMask on this device equals the CPU mask', () => {
    const cpu = dropMask(10_001, { p: 0.25, seed: 3n, counter: 1n });
    const here = dropMask(10_001, { p: 0.25, seed: 3n, counter: 1n, device });
    expect(Buffer.from((here.to('cpu').toTypedArray() as Uint8Array).buffer).equals(Buffer.from((cpu.toTypedArray() as Uint8Array).buffer))).toBe(true);
  });
});

describe('device configuration', () => {
  const base = { name: 'x', data: { source: 'mnist' }, model: { kind: 'cnn28' }, optimizer: { type: 'sgd', lr: 0.1 }, attack: { method: 'none' } };

  test('training.device defaults to cpu and takes cuda and cuda:N', () => {
    expect(parseRunConfig(base).training.device).toBe('cpu');
    expect(parseRunConfig(base, ['training.device=cuda:1']).training.device).toBe('cuda:1');
  });

  test.each(['gpu', 'cuda:', 'cuda:x', 'CPU', 'cuda:1234'])('training.device %s is refused, naming the field', (d) => {
    expect(() => parseRunConfig(base, [`training.device=${d}`])).toThrow(ConfigError);
    expect(() => parseRunConfig(base, [`training.device=${d}`])).toThrow(/config\.training\.device/);
  });

  test('a device that is not there fails before training, saying why', () => {
    expect(() => checkDevice('cpu')).not.toThrow();
    const beyond = `cuda:${info.cudaDeviceCount}`;
    expect(() => checkDevice(beyond)).toThrow(info.cudaKernels ? /is not present: this machine has \d+ CUDA device/ : /needs a CUDA build of the addon/);
    if (!info.cudaKernels) expect(() => checkDevice('cuda')).toThrow(/needs a CUDA build of the addon/);
  });

  test('training.autocast and training.jit are checked', () => {
    expect(parseRunConfig(base).training.autocast).toBe('off');
    expect(parseRunConfig(base).training.jit).toEqual({ executor: 'simple', fuser: 'none' });
    expect(() => parseRunConfig(base, ['training.autocast=fp8'])).toThrow(/config\.training\.autocast/);
    expect(() => parseRunConfig(base, ['training.jit.executor=fast'])).toThrow(/config\.training\.jit\.executor/);
  });
});

describe('Module.load onto a device', () => {
  test('loads onto the CPU explicitly, refuses a missing device and a malformed one', async () => {
    const fs = await import('fs');
    const os = await import('os');
    const path = await import('path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-dev-'));
    try {
      const file = path.join(dir, 'm.pt');
      const model = Module.build({ kind: 'mlp', inputDim: 5, hiddenSizes: [6], numClasses: 3 }, { seed: 8 });
      await model.save(file);
      const back = await Module.load(file, { device: 'cpu' });
      const a = [...model.namedParameters().values()].map((t) => Array.from(t.toTypedArray() as Float32Array));
      const b = [...back.namedParameters().values()].map((t) => {
        expect(t.device).toBe('cpu');
        return Array.from(t.toTypedArray() as Float32Array);
      });
      expect(b).toEqual(a);
      await expect(Module.load(file, { device: 'gpu' as never })).rejects.toThrow(TypeError);
      await expect(Module.load(file, { device: `cuda:${info.cudaDeviceCount + 1}` as Device })).rejects.toThrow();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
