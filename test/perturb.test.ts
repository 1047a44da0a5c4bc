import {
  backends,
  dropMask,
  getNumThreads,
  perturb,
  setNumThreads,
  tensor,
  Tensor,
  TorchError,
  where,
  zeros,
  DType,
} from '../lib';
import { bytes, count, f32, lcg, u8 } from './helpers/util';

function randomTensor(shape: number[], seed: number, dtype: DType = 'float32'): Tensor {
  const next = lcg(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(n);
  for (let k = 0; k < n; k++) data[k] = next() * 3;
  return tensor(data, { shape, dtype: 'float64' }).to(dtype).contiguous();
}

/** The perturbation from plain LibTorch ops: where(M, w + scale * d, w), computed in float for half types. */
function reference(w: Tensor, d: Tensor, scale: number, p: number, seed: number | bigint, counter: number | bigint): Tensor {
  const mask = dropMask(w.numel, { p, seed, counter }).reshape(w.shape);
  const acc = w.dtype === 'float64' ? 'float64' : 'float32';
  const moved = w.to(acc).add(d.to(acc).mul(scale)).to(w.dtype);
  return where(mask, moved, w);
}

describe('perturb (dense)', () => {
  test.each(['float32', 'float64', 'float16', 'bfloat16'] as DType[])(
    '%s equals the formula built from LibTorch ops with the same mask, bit for bit',
    (dtype) => {
      const w = randomTensor([37, 11], 1, dtype);
      const d = randomTensor([37, 11], 2, dtype);
      const original = w.clone();
      const opts = { epsilon: 0.7, p: 0.5, seed: 1234, counter: 5 };
      const r = perturb(w, d, opts);
      expect(r.skipped).toBe(false);
      // The norm and the applied scale agree with LibTorch's norm.
      const libNorm = d.to('float64').norm().item();
      expect(r.norm).toBeCloseTo(libNorm, 10);
      expect(r.scale).toBeCloseTo(0.7 / libNorm, 12);
      const expected = reference(original, d, r.scale, opts.p, opts.seed, opts.counter);
      expect(bytes(w).equals(bytes(expected))).toBe(true);
      // Masked entries moved, the others kept their exact bits.
      const mask = u8(dropMask(w.numel, { p: opts.p, seed: opts.seed, counter: opts.counter }));
      const moved = u8(w.ne(original).flatten());
      expect(count(moved)).toBeGreaterThan(0);
      for (let k = 0; k < mask.length; k++) if (moved[k]) expect(mask[k]).toBe(1);
      r.restore();
      expect(bytes(w).equals(bytes(original))).toBe(true);
      expect(r.restored).toBe(true);
    },
  );

  test.each([1, 0.5])('the target may be its own direction (p = %p)', (p) => {
    const w = randomTensor([9, 13], 60);
    const original = w.clone();
    const r = perturb(w, w, { epsilon: 0.9, p, seed: 8, counter: 1 });
    const expected = reference(original, original, r.scale, p, 8, 1);
    expect(bytes(w).equals(bytes(expected))).toBe(true);
    r.restore();
    expect(bytes(w).equals(bytes(original))).toBe(true);
  });

  test('the step has L2 norm epsilon when p = 1 (FGM)', () => {
    const w = randomTensor([64, 33], 3, 'float64');
    const d = randomTensor([64, 33], 4, 'float64');
    const before = w.clone();
    const r = perturb(w, d, { epsilon: 2.5, p: 1 });
    expect(w.sub(before).norm().item()).toBeCloseTo(2.5, 10);
    expect(bytes(w).equals(bytes(before.add(d.mul(r.scale))))).toBe(true);
    r.restore();
  });

  test('restore is bit-exact for -0, NaN, subnormals and extremes', () => {
    const data = new Float32Array([-0, 0, NaN, 1e-45, -1e-40, 3.4e38, -3.4e38, Infinity, -Infinity, 1, 2, 3]);
    const w = tensor(data.slice());
    const d = tensor(new Float32Array(12).fill(1));
    const before = Buffer.from(bytes(w));
    const r = perturb(w, d, { epsilon: 1, p: 1 });
    expect(bytes(w).equals(before)).toBe(false);
    r.restore();
    expect(bytes(w).equals(before)).toBe(true);
  });

  test('p = 0 and epsilon = 0 change nothing and keep no backup', () => {
    const w = randomTensor([10, 10], 5);
    const d = randomTensor([10, 10], 6);
    const before = Buffer.from(bytes(w));
    for (const opts of [{ epsilon: 1, p: 0 }, { epsilon: 0, p: 0.5 }]) {
      const r = perturb(w, d, opts);
      expect(r.skipped).toBe(false);
      expect(r.backupBytes).toBe(0);
      expect(bytes(w).equals(before)).toBe(true);
      r.restore();
    }
  });

  test.each([
    ['zero', 0],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
  ])('a %s in the direction skips the attack and changes nothing', (_name, bad) => {
    const w = randomTensor([5, 7], 7);
    const dData = new Float32Array(35);
    if (bad !== 0) {
      dData.fill(0.5);
      dData[17] = bad;
    }
    const before = Buffer.from(bytes(w));
    const r = perturb(w, tensor(dData, { shape: [5, 7] }), { epsilon: 1, p: 0.5, seed: 3 });
    expect(r.skipped).toBe(true);
    expect(r.scale).toBe(0);
    expect(bytes(w).equals(before)).toBe(true);
    r.restore();
    expect(bytes(w).equals(before)).toBe(true);
  });

  test('the share of attacked elements lies within binomial bounds', () => {
    const n = 400_000;
    const p = 0.3;
    const w = zeros([n]);
    const r = perturb(w, tensor(new Float32Array(n).fill(1)), { epsilon: 1, p, seed: 77, counter: 9 });
    const attacked = count(u8(w.ne(0)));
    expect(Math.abs(attacked - n * p)).toBeLessThan(6 * Math.sqrt(n * p * (1 - p)));
    r.restore();
  });

  test('the same seed and counter give the same result; another counter another mask', () => {
    const w = randomTensor([300], 8);
    const d = randomTensor([300], 9);
    const run = (counter: number) => {
      const r = perturb(w, d, { epsilon: 1, p: 0.5, seed: 11, counter });
      const out = Buffer.from(bytes(w));
      r.restore();
      return out;
    };
    expect(run(1).equals(run(1))).toBe(true);
    expect(run(1).equals(run(2))).toBe(false);
  });

  test('1 thread and 2 threads give identical results', () => {
    const old = getNumThreads();
    const d = randomTensor([3_000_003], 10);
    const results: Buffer[] = [];
    const norms: number[] = [];
    try {
      for (const threads of [1, 2]) {
        setNumThreads(threads);
        expect(getNumThreads()).toBe(threads);
        const w = randomTensor([3_000_003], 11);
        const r = perturb(w, d, { epsilon: 3, p: 0.5, seed: 5, counter: 6 });
        norms.push(r.norm);
        results.push(Buffer.from(bytes(w)));
      }
    } finally {
      setNumThreads(old);
    }
    expect(norms[0]).toBe(norms[1]);
    expect(results[0].equals(results[1])).toBe(true);
  });
});

describe('perturb (row-sparse)', () => {
  /** An embedding-like direction: random in `rows`, zero elsewhere. */
  function embeddingGrad(vocab: number, dim: number, rows: number[], seed: number, dtype: DType = 'float32'): Tensor {
    const next = lcg(seed);
    const data = new Float64Array(vocab * dim);
    for (const r of rows) for (let k = 0; k < dim; k++) data[r * dim + k] = next();
    return tensor(data, { shape: [vocab, dim], dtype: 'float64' }).to(dtype);
  }

  test.each([
    [50, 7, [3, 17, 17, 40, 0, 49], 'float32'],
    [2000, 33, [0, 1, 496, 497, 498, 1000, 1999, 1500, 12], 'float32'],
    [600, 300, [599, 5, 54, 55, 56, 300, 5], 'float64'],
    [300, 5, [1, 2, 3, 299], 'float16'],
    [300, 6, [7, 100], 'bfloat16'],
  ] as [number, number, number[], DType][])(
    'vocab %i x %i rows %j (%s): equals the dense op bit for bit',
    (vocab, dim, rows, dtype) => {
      const base = randomTensor([vocab, dim], 20, dtype);
      const d = embeddingGrad(vocab, dim, rows, 21, dtype);
      const dense = base.clone();
      const sparse = base.clone();
      const opts = { epsilon: 1.3, p: 0.6, seed: 99n, counter: 3 };
      const rd = perturb(dense, d, opts);
      const rs = perturb(sparse, d, { ...opts, rows: tensor(BigInt64Array.from(rows.map(BigInt))) });
      expect(rs.sparse).toBe(true);
      expect(rs.norm).toBe(rd.norm);
      expect(bytes(sparse).equals(bytes(dense))).toBe(true);
      // Only the touched rows were backed up.
      const unique = new Set(rows).size;
      const elementBytes = dtype === 'float64' ? 8 : dtype === 'float32' ? 4 : 2;
      expect(rs.backupBytes).toBe(unique * dim * elementBytes);
      expect(rd.backupBytes).toBe(vocab * dim * elementBytes);
      rs.restore();
      rd.restore();
      expect(bytes(sparse).equals(bytes(base))).toBe(true);
      expect(bytes(dense).equals(bytes(base))).toBe(true);
    },
  );

  test('rows as int32 work; an empty rows tensor skips', () => {
    const base = randomTensor([20, 4], 30);
    const d = embeddingGrad(20, 4, [2, 5], 31);
    const a = base.clone();
    const r = perturb(a, d, { epsilon: 1, rows: tensor(new Int32Array([5, 2])) });
    expect(r.skipped).toBe(false);
    expect(bytes(a).equals(bytes(base))).toBe(false);
    r.restore();
    const e = perturb(a, d, { epsilon: 1, rows: tensor(new BigInt64Array(0)) });
    expect(e.skipped).toBe(true);
    expect(bytes(a).equals(bytes(base))).toBe(true);
  });

  test('1 thread and 2 threads give identical sparse results', () => {
    const old = getNumThreads();
    const rows = Array.from({ length: 3000 }, (_, k) => (k * 37) % 20000);
    const d = embeddingGrad(20000, 64, rows, 40);
    const rowsT = tensor(BigInt64Array.from(rows.map(BigInt)));
    const out: Buffer[] = [];
    try {
      for (const threads of [1, 2]) {
        setNumThreads(threads);
        const w = randomTensor([20000, 64], 41);
        perturb(w, d, { epsilon: 2, p: 0.5, seed: 1, counter: 2, rows: rowsT });
        out.push(Buffer.from(bytes(w)));
      }
    } finally {
      setNumThreads(old);
    }
    expect(out[0].equals(out[1])).toBe(true);
  });
});

describe('perturb: bad input', () => {
  const w = () => randomTensor([4, 3], 50);
  const d = () => randomTensor([4, 3], 51);

  test('dtype mismatch is a TorchError naming both dtypes', () => {
    expect(() => perturb(w(), d().to('float64'), { epsilon: 1 })).toThrow(TorchError);
    expect(() => perturb(w(), d().to('float64'), { epsilon: 1 })).toThrow(/direction dtype Double does not match target dtype Float/);
  });
  test('shape mismatch is a TorchError naming both shapes', () => {
    expect(() => perturb(w(), randomTensor([3, 4], 52), { epsilon: 1 })).toThrow(/direction shape \[3, 4\] does not match target shape \[4, 3\]/);
  });
  test('integer targets are refused', () => {
    const t = tensor([1, 2, 3], { dtype: 'int64' });
    expect(() => perturb(t, t, { epsilon: 1 })).toThrow(/target must be float32, float64, float16 or bfloat16/);
  });
  test('a non-contiguous target is refused (it is updated in place)', () => {
    const t = randomTensor([3, 4], 53).transpose(0, 1);
    expect(() => perturb(t, randomTensor([4, 3], 54), { epsilon: 1 })).toThrow(/target must be contiguous/);
  });
  const cuda = backends().cuda;
  (cuda ? test.skip : test)('a CUDA device is refused clearly on a build or machine without CUDA', () => {
    expect(() => dropMask(4, { p: 0.5, device: 'cuda' })).toThrow(TorchError);
    expect(() => dropMask(4, { p: 0.5, device: 'cuda:1' })).toThrow(TorchError);
  });
  (cuda ? test : test.skip)('dropMask on cuda:N equals the CPU mask bit for bit', () => {
    const n = 1_000_003;
    const cpu = dropMask(n, { p: 0.37, seed: 11n, counter: 5n });
    for (let k = 0; k < backends().cudaDeviceCount; ++k) {
      const dev = dropMask(n, { p: 0.37, seed: 11n, counter: 5n, device: `cuda:${k}` });
      expect(dev.device).toBe(`cuda:${k}`);
      expect(Buffer.from(dev.to('cpu').toTypedArray().buffer).equals(Buffer.from(cpu.toTypedArray().buffer))).toBe(true);
    }
  });
  test('dropMask names a malformed device', () => {
    expect(() => dropMask(4, { p: 0.5, device: 'gpu' as never })).toThrow(/device/);
    expect(() => dropMask(4, { p: 0.5, device: 'cuda:x' as never })).toThrow(/device/);
  });
  test.each([
    [{ epsilon: -1 }, RangeError, /epsilon/],
    [{ epsilon: NaN }, TypeError, /epsilon/],
    [{ epsilon: Infinity }, RangeError, /epsilon/],
    [{ epsilon: 1, p: 1.5 }, RangeError, /p must be in \[0, 1\]/],
    [{ epsilon: 1, p: -0.1 }, RangeError, /p must be in \[0, 1\]/],
    [{ epsilon: 1, seed: -3 }, RangeError, /seed/],
    [{ epsilon: 1, seed: 2n ** 64n }, RangeError, /seed/],
    [{ epsilon: 1, counter: 0.5 }, RangeError, /counter/],
    [{ epsilon: 1, counter: '1' }, TypeError, /counter/],
    [{ epsilon: '1' }, TypeError, /epsilon/],
    [{ epsilon: 1, rows: [1, 2] }, TypeError, /rows/],
    [{ epsilon: 1, bogus: 1 }, TypeError, /unknown option 'bogus'/],
    [{}, TypeError, /epsilon/],
  ])('options %p -> %p', (opts, cls, message) => {
    expect(() => perturb(w(), d(), opts as never)).toThrow(cls);
    expect(() => perturb(w(), d(), opts as never)).toThrow(message);
  });
  test('wrong argument kinds are TypeErrors naming the argument', () => {
    expect(() => perturb(f32(w()) as never, d(), { epsilon: 1 })).toThrow(/target must be a Tensor/);
    expect(() => perturb(w(), null as never, { epsilon: 1 })).toThrow(/direction must be a Tensor/);
    expect(() => perturb(w(), d(), undefined as never)).toThrow(TypeError);
  });
  test('a disposed tensor is a TorchError naming it', () => {
    const t = w();
    t.dispose();
    expect(() => perturb(t, d(), { epsilon: 1 })).toThrow(TorchError);
    expect(() => perturb(t, d(), { epsilon: 1 })).toThrow(/target is a disposed Tensor/);
    const dd = d();
    dd.dispose();
    expect(() => perturb(w(), dd, { epsilon: 1 })).toThrow(/direction is a disposed Tensor/);
  });
  test('rows out of range, of the wrong dtype or rank are TorchErrors', () => {
    expect(() => perturb(w(), d(), { epsilon: 1, rows: tensor(new BigInt64Array([4n])) })).toThrow(/rows holds index 4, out of range for a target with 4 rows/);
    expect(() => perturb(w(), d(), { epsilon: 1, rows: tensor(new BigInt64Array([-1n])) })).toThrow(/rows holds index -1/);
    expect(() => perturb(w(), d(), { epsilon: 1, rows: tensor([0.5]) })).toThrow(/rows must be int64 or int32/);
    expect(() => perturb(w(), d(), { epsilon: 1, rows: tensor([[1, 2]], { dtype: 'int64' }) })).toThrow(/rows must be one-dimensional/);
  });
  test('restoring twice is a TorchError; the target survives its handle', () => {
    const t = w();
    const before = Buffer.from(bytes(t));
    const view = t.view([12]);
    const r = perturb(t, d(), { epsilon: 1 });
    t.dispose();
    r.restore();
    expect(bytes(view).equals(before)).toBe(true);
    expect(() => r.restore()).toThrow(/already restored/);
  });
});
