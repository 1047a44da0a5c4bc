// Data-parallel scaling: the same model trained by 1 and by 2 local processes (1 thread
// each, Gloo on loopback), each process with its own batch, so that 2 processes do twice
// the work per step. Reports throughput (examples per second over all processes), the
// efficiency (throughput of 2 ÷ throughput of 1) and the share of a step spent waiting for
// the gradients' all-reduce. With 2 processes each configuration runs twice, side by
// side: the all-reduce overlapped with the backward (the default) and started after it
// (`overlap: false`), and a third time as 2 independent processes that never communicate
// (each trains alone): the most 2 processes get out of this machine, so that the
// all-reduce's own cost is the difference between that and the data-parallel runs.
//
// Two models: ResNet-32 on 3x32x32 images (0.47M parameters, ~0.2 s of compute per step
// of 32: compute-bound, the case data parallelism is for) and an MLP 512→1024→1024→10
// (1.6M parameters, 6.3 MB of gradients per ~30 ms step: communication-heavy).
//
//   node dist/bench/scaling.js [--procs 1,2] [--models resnet32,mlp] [--rounds 3] [--json out.json]
//
// Each configuration runs in fresh processes through launchLocal (the launcher of
// `dropattack train --nproc`); rank 0 writes its figures to a temporary file.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { distributedEnv, distributedInfo, launchLocal, Module, ModelSpec, ProcessGroup, randint, randn, setNumThreads, Trainer } from '../lib';

interface Workload {
  spec: ModelSpec & { numClasses: number };
  /** One example's input shape. */
  input: number[];
  batch: number;
  steps: number;
  warmup: number;
  description: string;
}

const WORKLOADS: Record<string, Workload> = {
  resnet32: {
    spec: { kind: 'resnet32', numClasses: 10, dropout: 0 },
    input: [3, 32, 32],
    batch: 32,
    steps: 10,
    warmup: 2,
    description: 'ResNet-32, 3x32x32 images (compute-bound)',
  },
  mlp: {
    spec: { kind: 'mlp', inputDim: 512, hiddenSizes: [1024, 1024], numClasses: 10, dropout: 0 },
    input: [512],
    batch: 256,
    steps: 20,
    warmup: 3,
    description: 'MLP 512→1024→1024→10 (communication-heavy)',
  },
};

interface Options {
  procs: number[];
  models: string[];
  rounds: number;
  json?: string;
}

interface WorkerOptions {
  model: string;
  method: string;
  overlap: boolean;
  independent: boolean;
  out: string;
}

function parse(argv: string[]): Options & { worker?: WorkerOptions } {
  const o: Options & { worker?: WorkerOptions } = { procs: [1, 2], models: Object.keys(WORKLOADS), rounds: 3 };
  const w: Partial<WorkerOptions> = { overlap: true };
  for (let k = 0; k < argv.length; k += 2) {
    const key = argv[k].replace(/^--/, '');
    const value = argv[k + 1];
    if (value === undefined) throw new TypeError(`scaling: --${key} needs a value`);
    if (key === 'json') o.json = value;
    else if (key === 'procs') o.procs = value.split(',').map(Number);
    else if (key === 'models') o.models = value.split(',');
    else if (key === 'rounds') o.rounds = Number(value);
    else if (key === 'worker') w.out = value;
    else if (key === 'model') w.model = value;
    else if (key === 'method') w.method = value;
    else if (key === 'overlap') w.overlap = value !== 'off';
    else if (key === 'independent') w.independent = value === 'on';
    else throw new TypeError(`scaling: unknown option --${key}`);
  }
  for (const m of [...o.models, ...(w.model ? [w.model] : [])]) {
    if (!(m in WORKLOADS)) throw new TypeError(`scaling: unknown model '${m}' (${Object.keys(WORKLOADS).join(', ')})`);
  }
  if (w.out !== undefined) o.worker = { model: w.model ?? 'resnet32', method: w.method ?? 'none', overlap: w.overlap ?? true, independent: w.independent ?? false, out: w.out };
  return o;
}

interface WorkerResult {
  model: string;
  procs: number;
  method: string;
  /** The all-reduce started during the backward (false: after it, or one process). */
  overlap: boolean;
  /** The processes trained side by side without a process group. */
  independent: boolean;
  batchPerProcess: number;
  steps: number;
  seconds: number;
  communicationSeconds: number;
  /** CPU time (user + system) of rank 0's process over the measured steps: less sensitive to other load than the wall time. */
  cpuSeconds: number;
}

async function worker(w: WorkerOptions): Promise<void> {
  setNumThreads(1);
  const wl = WORKLOADS[w.model];
  const env = distributedEnv();
  // Independent processes join a group too, only for the barriers around the measured
  // steps (so that both are measured over the same time); their Trainers do not use it.
  const group = env !== null && env.worldSize > 1 ? await ProcessGroup.init({ timeoutMs: 120000 }) : null;
  const model = Module.build(wl.spec, { seed: 1 });
  const attack = w.method === 'dropattack' ? { method: 'dropattack' as const, k: 1, groups: [{ targets: ['*weight'], epsilon: 0.1, p: 0.7 }] } : { method: 'none' as const };
  const trainer = new Trainer(model, { optimizer: { type: 'sgd', lr: 0.01 }, attack, ...(group && !w.independent ? { distributed: { group, overlap: w.overlap } } : {}) });
  await trainer.ready;
  const x = randn([wl.batch, ...wl.input]);
  const y = randint(0, wl.spec.numClasses, [wl.batch]);
  for (let s = 0; s < wl.warmup; s++) await trainer.step(x, y);
  // Start together: the clock of each configuration covers the same steps on every rank.
  if (group) await group.barrier();
  let comm = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let s = 0; s < wl.steps; s++) {
    const r = await trainer.step(x, y, { timePhases: true });
    comm += r.times?.communication ?? 0;
  }
  if (group) await group.barrier();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  // The communication share of the slowest rank would be as fair; rank 0's is reported.
  if ((env?.rank ?? 0) === 0) {
    const result: WorkerResult = {
      model: w.model,
      procs: env?.worldSize ?? 1,
      method: w.method,
      overlap: group !== null && !w.independent && w.overlap,
      independent: w.independent,
      batchPerProcess: wl.batch,
      steps: wl.steps,
      seconds,
      communicationSeconds: comm,
      cpuSeconds,
    };
    fs.writeFileSync(w.out, JSON.stringify(result));
  }
  group?.close();
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  if (o.worker !== undefined) return worker(o.worker);
  if (!distributedInfo().available) {
    console.log('scaling: this build has no distributed support (libgloo-dev); skipped');
    if (o.json) fs.writeFileSync(o.json, JSON.stringify({ skipped: 'no distributed support in this build' }) + '\n');
    return;
  }
  const loadStart = os.loadavg();
  const models: Record<string, { description: string; parameters: number; batchPerProcess: number; steps: number }> = {};
  interface Config { model: string; method: string; procs: number; overlap: boolean; independent: boolean; results: WorkerResult[] }
  const configs: Config[] = [];
  for (const name of o.models) {
    const wl = WORKLOADS[name];
    models[name] = {
      description: wl.description,
      parameters: Module.build(wl.spec, { seed: 1 }).parameters().reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0),
      batchPerProcess: wl.batch,
      steps: wl.steps,
    };
    for (const method of ['none', 'dropattack']) {
      for (const n of o.procs) {
        for (const overlap of n > 1 ? [true, false] : [false]) configs.push({ model: name, method, procs: n, overlap, independent: false, results: [] });
        if (n > 1) configs.push({ model: name, method, procs: n, overlap: false, independent: true, results: [] });
      }
    }
  }
  // Rounds: every configuration once per round, so that a slow spell of the machine is
  // spread over all of them; each configuration's figure is its median over the rounds.
  const when = (c: { procs: number; overlap: boolean; independent: boolean }) =>
    c.procs === 1 ? '' : c.independent ? 'independent' : c.overlap ? 'overlapped' : 'after the backward';
  const label = (c: Config) => `${c.model} ${c.method} ${c.procs} process(es)${c.procs > 1 ? `, ${when(c)}` : ''}`;
  for (let round = 0; round < o.rounds; round++) {
    for (const c of configs) {
      const out = path.join(os.tmpdir(), `dropattack-scaling-${process.pid}.json`);
      const args = [__filename, '--worker', out, '--model', c.model, '--method', c.method, '--overlap', c.overlap ? 'on' : 'off', '--independent', c.independent ? 'on' : 'off'];
      const r = await launchLocal(c.procs, args, { env: { OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } });
      if (r.code !== 0) throw new Error(`scaling: ${label(c)}: a worker failed (${JSON.stringify(r.failed)})`);
      const w = JSON.parse(fs.readFileSync(out, 'utf8')) as WorkerResult;
      fs.unlinkSync(out);
      c.results.push(w);
      console.log(
        `scaling: round ${round + 1}/${o.rounds} ${label(c)}: ${((w.procs * w.batchPerProcess * w.steps) / w.seconds).toFixed(0)} examples/s, ` +
          `communication ${((100 * w.communicationSeconds) / w.seconds).toFixed(1)}% (load ${os.loadavg()[0].toFixed(2)})`,
      );
    }
  }
  const median = (v: number[]) => {
    const s = [...v].sort((x, y) => x - y);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const runs = configs.map((c) => {
    const eps = c.results.map((w) => (w.procs * w.batchPerProcess * w.steps) / w.seconds);
    const w0 = c.results[0];
    return {
      model: c.model,
      method: c.method,
      procs: c.procs,
      overlap: c.overlap,
      independent: c.independent,
      batchPerProcess: w0.batchPerProcess,
      steps: w0.steps,
      rounds: c.results.length,
      examplesPerSecond: median(eps),
      examplesPerSecondRange: [Math.min(...eps), Math.max(...eps)],
      communicationShare: median(c.results.map((w) => w.communicationSeconds / w.seconds)),
      cpuMsPerExample: median(c.results.map((w) => (1000 * w.cpuSeconds) / (w.batchPerProcess * w.steps))),
    };
  });
  const efficiency: Record<string, number> = {};
  for (const r of runs) {
    const one = runs.find((x) => x.model === r.model && x.method === r.method && x.procs === 1);
    if (r.procs === 1 || !one) continue;
    const key = `${r.model}:${r.method}:${r.procs}${r.independent ? ':independent' : r.overlap ? '' : ':after-backward'}`;
    efficiency[key] = r.examplesPerSecond / one.examplesPerSecond;
    console.log(`scaling: ${key}: ${efficiency[key].toFixed(2)}× the throughput of 1 process (medians of ${o.rounds} rounds)`);
  }
  const result = {
    models,
    threadsPerProcess: 1,
    cores: os.cpus().length,
    runs,
    efficiency,
    loadAverageStart: loadStart,
    loadAverageEnd: os.loadavg(),
    date: new Date().toISOString(),
  };
  if (o.json) fs.writeFileSync(o.json, JSON.stringify(result, null, 1) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`scaling: ${(e as Error).message}\n`);
  process.exit(1);
});
