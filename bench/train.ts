// The project's side of `npm run bench`: one (configuration, method) per process, so the
// peak resident memory (process.resourceUsage().maxRSS) belongs to that run alone.
//
//   node dist/bench/train.js --config a --method da1 --threads 1 [--warmup W] [--steps N]
//                            [--sparse auto|off] [--sparse-embedding on] [--json out.json]
//
// --sparse-embedding on builds the model with `sparseEmbedding: true` (a sparse embedding
// gradient and Adam's row-wise update, as nn.Embedding(sparse=True) with SparseAdam); its
// result's side is 'project-sparse'.
//
// Reports every measured step's wall time (after warm-up) around `await trainer.step()`,
// the engine's per-phase `times`, the process's CPU time, system time and minor page
// faults per step (getrusage), the machine's load while it runs (/proc/loadavg and the
// runnable tasks of /proc/stat, sampled at each step), and the event loop's delay.
// The update skips the gradient norm (`gradNorm: false`), as the PyTorch loops do not
// compute one.
import * as fs from 'fs';
import * as os from 'os';
import { monitorEventLoopDelay } from 'perf_hooks';

import { backends, cpuCache, getNumThreads, Module, setNumThreads, tensor, Trainer } from '../lib';
import { loadSpec, makeBatches, machineLoad, StepUsage } from './data';

function parse(argv: string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let k = 0; k < argv.length; k += 2) {
    if (!argv[k].startsWith('--') || argv[k + 1] === undefined) throw new TypeError(`bench/train: bad argument ${argv[k]}`);
    o[argv[k].slice(2)] = argv[k + 1];
  }
  return o;
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const spec = loadSpec();
  const cfg = spec.configs[a.config];
  const method = spec.methods[a.method];
  if (!cfg || !method) throw new TypeError(`bench/train: unknown --config ${a.config} or --method ${a.method}`);
  const threads = Number(a.threads ?? getNumThreads());
  const warmup = a.warmup === undefined ? cfg.warmup : Number(a.warmup);
  const steps = a.steps === undefined ? cfg.steps : Number(a.steps);
  const seed = Number(a.seed ?? 1);
  const sparse = (a.sparse ?? 'auto') as 'auto' | 'off';
  const sparseEmbedding = a['sparse-embedding'] === 'on';
  setNumThreads(threads);

  const m = cfg.model;
  const model = m.kind === 'textrnn'
    ? Module.build({ kind: 'textrnn', vocabSize: m.vocabSize, embedDim: m.embedDim, hiddenSize: m.hiddenSize, cell: 'lstm', numClasses: 2, sparseEmbedding }, { seed })
    : Module.build({ kind: 'textcnn', vocabSize: m.vocabSize, embedDim: m.embedDim, numFilters: m.numFilters, kernelSizes: m.kernelSizes, numClasses: 2, sparseEmbedding }, { seed });
  const trainer = new Trainer(model, {
    optimizer: { type: 'adam', lr: 1e-3 },
    loss: { type: 'crossEntropy' },
    attack: method.attack
      ? { method: 'dropattack', k: method.k ?? 1, seed: 42, groups: cfg.groups.map((g) => ({ targets: g.target, epsilon: g.epsilon, p: g.p, sparse })) }
      : { method: 'none' },
  });
  const batches = makeBatches(cfg, seed).map((b) => ({
    tokens: tensor(b.tokens, { shape: [cfg.batch, cfg.length] }),
    lengths: tensor(b.lengths),
    labels: tensor(b.labels),
  }));

  const loop = monitorEventLoopDelay({ resolution: 1 });
  const stepSeconds: number[] = [];
  const phases: Record<string, number>[] = [];
  const usage: StepUsage[] = [];
  const load: { load1: number; running: number }[] = [];
  let sparseTargets: string[] = [];
  for (let s = 0; s < warmup + steps; s++) {
    const b = batches[s % batches.length];
    if (s === warmup) {
      loop.enable();
      cpuCache(true); // the peak of large CPU blocks over the measured steps only
    }
    const u0 = process.resourceUsage();
    const t0 = process.hrtime.bigint();
    const r = await trainer.step([b.tokens, b.lengths], b.labels, { timePhases: true, gradNorm: false });
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    const u1 = process.resourceUsage();
    if (!r.applied) throw new Error(`bench/train: step ${s} not applied: ${r.reason}`);
    if (s >= warmup) {
      stepSeconds.push(dt);
      phases.push({ ...r.times!, extraBackward: 0 });
      usage.push({
        cpuSeconds: (u1.userCPUTime - u0.userCPUTime + u1.systemCPUTime - u0.systemCPUTime) / 1e6,
        systemSeconds: (u1.systemCPUTime - u0.systemCPUTime) / 1e6,
        minorFaults: u1.minorPageFault - u0.minorPageFault,
      });
      load.push(machineLoad());
      sparseTargets = r.sparseTargets;
    }
  }
  loop.disable();
  const out = {
    side: sparseEmbedding ? 'project-sparse' : 'project',
    config: a.config,
    method: a.method,
    sparse,
    sparseTargets,
    threads: getNumThreads(),
    warmup,
    stepSeconds,
    phases,
    usage,
    load,
    cores: os.cpus().length,
    cpuCache: cpuCache(),
    // Peak bytes of CPU blocks of 1 MiB and more in use during the measured steps (the
    // caching allocator counts them; 0 when DROPATTACK_CPU_CACHE_MB=0 turned it off).
    peakLargeBytes: cpuCache().peakLiveBytes,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    eventLoopDelayMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6, samples: loop.count },
    libtorch: backends().libtorch,
    node: process.version,
  };
  const text = JSON.stringify(out, null, 1);
  if (a.json) fs.writeFileSync(a.json, text + '\n');
  else console.log(text);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
