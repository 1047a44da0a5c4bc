// The perturbation op alone, side by side with a plain copy of the same size and with
// the same perturbation written as ordinary LibTorch ops (clone for the backup, norm,
// a Bernoulli mask, mul/add), in one process on one LibTorch.
//
//   node dist/bench/perturb-op.js [--vocab 250000] [--dim 300] [--rows 8192] [--threads N] [--json out.json]
import * as fs from 'fs';

import { backends, getNumThreads, perturb, rand, randint, setNumThreads, tensor, Tensor, zeros } from '../lib';

interface Options {
  vocab: number;
  dim: number;
  rows: number;
  threads: number;
  repeats: number;
  json?: string;
}

function parse(argv: string[]): Options {
  const o: Options = { vocab: 250_000, dim: 300, rows: 8192, threads: getNumThreads(), repeats: 5 };
  for (let k = 0; k < argv.length; k += 2) {
    const key = argv[k].replace(/^--/, '');
    const value = argv[k + 1];
    if (key === 'json') o.json = value;
    else if (key in o) (o as unknown as Record<string, number>)[key] = Number(value);
    else throw new TypeError(`perturb-op: unknown option --${key}`);
  }
  return o;
}

function time(repeats: number, fn: () => void): number {
  fn(); // warm-up
  const samples: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

function main(): void {
  const o = parse(process.argv.slice(2));
  setNumThreads(o.threads);
  const n = o.vocab * o.dim;
  const bytes = n * 4;
  const w = rand([o.vocab, o.dim]);
  const d = rand([o.vocab, o.dim]).sub(0.5);
  const scratch = zeros([o.vocab, o.dim]);

  // Plain copy: reads n floats, writes n floats.
  const copy = time(o.repeats, () => {
    scratch.copy_(w);
  });

  // Fused op, dense, timed apart from its restore: the norm pass reads d, the fused pass
  // reads w and d and writes w and the backup (5 tensor-sizes of traffic).
  const perturbTimes: number[] = [];
  const restoreTimes: number[] = [];
  for (let r = 0; r <= o.repeats; r++) {
    const t0 = process.hrtime.bigint();
    const p = perturb(w, d, { epsilon: 1, p: 0.5, seed: 1, counter: r });
    const t1 = process.hrtime.bigint();
    p.restore();
    const t2 = process.hrtime.bigint();
    if (r > 0) {
      perturbTimes.push(Number(t1 - t0) / 1e9);
      restoreTimes.push(Number(t2 - t1) / 1e9);
    }
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const denseOnly = median(perturbTimes);
  const restoreOnly = median(restoreTimes);
  const dense = denseOnly + restoreOnly;

  // The same in ordinary LibTorch ops.
  const ops = time(o.repeats, () => {
    const backup = w.clone();
    const scale = 1 / d.norm().item();
    const mask = rand(w.shape).lt(0.5);
    w.add_(d.mul(mask).mul(scale));
    w.copy_(backup);
  });

  // Row-sparse: the rows a batch touched, with a direction that is zero elsewhere (as an
  // embedding gradient is; the op's contract).
  const rowIds = randint(0, o.vocab, [o.rows]);
  const ids = rowIds.toTypedArray() as BigInt64Array;
  const unique = new Set(Array.from(ids)).size;
  const touched = new Float32Array(o.vocab);
  for (const r of ids) touched[Number(r)] = 1;
  const dSparse = d.mul(tensor(touched, { shape: [o.vocab, 1] }));
  const sparse = time(o.repeats, () => {
    const r = perturb(w, dSparse, { epsilon: 1, p: 0.5, seed: 1, counter: 2, rows: rowIds });
    r.restore();
  });

  const gb = (b: number, s: number) => b / s / 1e9;
  const result = {
    machine: { libtorch: backends().libtorch, threads: getNumThreads() },
    size: { vocab: o.vocab, dim: o.dim, megabytes: bytes / 1e6, rows: o.rows, uniqueRows: unique },
    seconds: {
      copy,
      densePerturb: denseOnly,
      denseRestore: restoreOnly,
      densePerturbRestore: dense,
      libtorchOpsPerturbRestore: ops,
      sparsePerturbRestore: sparse,
    },
    bandwidthGBs: {
      copy: gb(2 * bytes, copy),
      densePerturb: gb(5 * bytes, denseOnly),
      denseRestore: gb(2 * bytes, restoreOnly),
    },
    ratios: {
      densePerturbBandwidthOverCopy: gb(5 * bytes, denseOnly) / gb(2 * bytes, copy),
      libtorchOpsOverFused: ops / dense,
      denseOverSparse: dense / sparse,
    },
  };
  console.log(JSON.stringify(result, null, 2));
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(result, null, 2) + '\n');
  [w, d, scratch, dSparse].forEach((t: Tensor) => t.dispose());
}

main();
