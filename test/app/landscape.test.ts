// The loss landscape: filter-normalized directions (checked per filter in plain
// JavaScript), the grid's centre is the trained model's loss, the parameters come back.
import { computeLandscape, filterNormalizedDirection } from '../../lib/app/landscape';
import { Module } from '../../lib/core/module';
import { Generator, randn, tensor } from '../../lib/core/tensor';
import { evaluate } from '../../lib/train/metrics';
import type { Batch } from '../../lib/train/types';

function rowNorms(t: { shape: number[]; toTypedArray(): unknown }): number[] {
  const data = Array.from(t.toTypedArray() as Float32Array);
  const rows = t.shape[0];
  const width = data.length / rows;
  return Array.from({ length: rows }, (_, r) => Math.sqrt(data.slice(r * width, (r + 1) * width).reduce((a, x) => a + x * x, 0)));
}

const model = () => Module.build({ kind: 'mlp', inputDim: 5, hiddenSizes: [7], numClasses: 3 }, { seed: 4 });
const batches = (): Batch[] => {
  const x = randn([40, 5], { generator: new Generator(9) });
  const y = tensor(BigInt64Array.from({ length: 40 }, (_, k) => BigInt(k % 3)));
  return [{ inputs: [x], target: y }];
};

test('each filter of a direction has the norm of the weights\' filter; 1-D parameters get none', () => {
  const m = model();
  const params = m.namedParameters();
  const d = filterNormalizedDirection(params, new Generator(1));
  expect([...d.keys()]).toEqual([...params.keys()]);
  for (const [name, w] of params) {
    const dir = d.get(name)!;
    expect(dir.shape).toEqual(w.shape);
    if (w.shape.length === 1) {
      expect(Array.from(dir.toTypedArray() as Float32Array).every((v) => v === 0)).toBe(true);
      continue;
    }
    const a = rowNorms(dir);
    const b = rowNorms(w);
    a.forEach((v, k) => expect(v).toBeCloseTo(b[k], 4));
    // Random, not the weights themselves.
    expect(Array.from(dir.toTypedArray() as Float32Array)).not.toEqual(Array.from(w.toTypedArray() as Float32Array));
  }
  // Seeded.
  const again = filterNormalizedDirection(params, new Generator(1));
  for (const [name, t] of d) expect(Array.from(again.get(name)!.toTypedArray() as Float32Array)).toEqual(Array.from(t.toTypedArray() as Float32Array));
});

test('the grid: its centre is the model\'s loss, seeded, parameters restored bit for bit', async () => {
  const m = model();
  const b = batches();
  const before = new Map([...m.namedParameters()].map(([k, v]) => [k, Array.from(v.toTypedArray() as Float32Array)]));
  const reference = (await evaluate(m, b)).loss;
  const seen: number[] = [];
  const r = await computeLandscape(m, b, { grid: 5, range: 0.5, seed: 3, onPoint: (done) => seen.push(done) });
  expect(r.alphas).toEqual([-0.5, -0.25, 0, 0.25, 0.5]);
  expect(r.loss).toHaveLength(5);
  expect(r.loss[2][2]).toBeCloseTo(reference, 6);
  expect(seen).toEqual(Array.from({ length: 25 }, (_, k) => k + 1));
  // Away from the trained point the loss differs (the directions move the weights).
  expect(Math.abs(r.loss[0][0] - reference)).toBeGreaterThan(1e-4);
  for (const [k, v] of m.namedParameters()) expect(Array.from(v.toTypedArray() as Float32Array)).toEqual(before.get(k));
  const again = await computeLandscape(m, b, { grid: 5, range: 0.5, seed: 3 });
  expect(again.loss).toEqual(r.loss);
  const other = await computeLandscape(m, b, { grid: 5, range: 0.5, seed: 4 });
  expect(other.loss[0][0]).not.toBe(r.loss[0][0]);
  await expect(computeLandscape(m, b, { grid: 4 })).rejects.toThrow(/--grid: expected an odd integer/);
  await expect(computeLandscape(m, b, { range: 0 })).rejects.toThrow(/--range: expected a positive number/);
});
