// Data-parallel scaling: the same compute-bound model trained by 1 and by 2 local
// processes (1 thread each, Gloo on loopback), each process with its own batch, so that
// 2 processes do twice the work per step. Reports throughput (examples per second over
// all processes), the efficiency (throughput of 2 ÷ throughput of 1) and the share of a
// step spent in the gradients' all-reduce.
//
//   node dist/bench/scaling.js [--procs 1,2] [--batch 256] [--steps 20] [--warmup 3] [--json out.json]
//
// Each configuration runs in fresh processes through launchLocal (the launcher of
// `dropattack train --nproc`); rank 0 writes its figures to a temporary file.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { distributedEnv, distributedInfo, launchLocal, Module, ProcessGroup, randint, randn, setNumThreads, Trainer } from '../lib';

interface Options {
  procs: number[];
  batch: number;
  steps: number;
  warmup: number;
  method: string;
  json?: string;
}

const MODEL = { kind: 'mlp' as const, inputDim: 512, hiddenSizes: [1024, 1024], numClasses: 10, dropout: 0 };

function parse(argv: string[]): Options & { worker?: string } {
  const o: Options & { worker?: string } = { procs: [1, 2], batch: 256, steps: 20, warmup: 3, method: 'none' };
  for (let k = 0; k < argv.length; k += 2) {
    const key = argv[k].replace(/^--/, '');
    const value = argv[k + 1];
    if (key === 'json') o.json = value;
    else if (key === 'worker') o.worker = value;
    else if (key === 'method') o.method = value;
    else if (key === 'procs') o.procs = value.split(',').map(Number);
    else if (key === 'batch' || key === 'steps' || key === 'warmup') o[key] = Number(value);
    else throw new TypeError(`scaling: unknown option --${key}`);
  }
  return o;
}

interface WorkerResult {
  procs: number;
  method: string;
  batchPerProcess: number;
  steps: number;
  seconds: number;
  communicationSeconds: number;
  /** CPU time (user + system) of rank 0's process over the measured steps: less sensitive to other load than the wall time. */
  cpuSeconds: number;
}

async function worker(o: Options, out: string): Promise<void> {
  setNumThreads(1);
  const env = distributedEnv();
  const group = env !== null && env.worldSize > 1 ? await ProcessGroup.init({ timeoutMs: 120000 }) : null;
  const model = Module.build(MODEL, { seed: 1 });
  const attack = o.method === 'dropattack' ? { method: 'dropattack' as const, k: 1, groups: [{ targets: ['*weight'], epsilon: 0.1, p: 0.7 }] } : { method: 'none' as const };
  const trainer = new Trainer(model, { optimizer: { type: 'sgd', lr: 0.01 }, attack, ...(group ? { distributed: { group } } : {}) });
  await trainer.ready;
  const x = randn([o.batch, MODEL.inputDim]);
  const y = randint(0, MODEL.numClasses, [o.batch]);
  for (let s = 0; s < o.warmup; s++) await trainer.step(x, y);
  // Start together: the clock of each configuration covers the same steps on every rank.
  if (group) await group.barrier();
  let comm = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let s = 0; s < o.steps; s++) {
    const r = await trainer.step(x, y, { timePhases: true });
    comm += r.times?.communication ?? 0;
  }
  if (group) await group.barrier();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  // The communication share of the slowest rank would be as fair; rank 0's is reported.
  if ((env?.rank ?? 0) === 0) {
    const result: WorkerResult = { procs: env?.worldSize ?? 1, method: o.method, batchPerProcess: o.batch, steps: o.steps, seconds, communicationSeconds: comm, cpuSeconds };
    fs.writeFileSync(out, JSON.stringify(result));
  }
  group?.close();
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  if (o.worker !== undefined) return worker(o, o.worker);
  if (!distributedInfo().available) {
    console.log('scaling: this build has no distributed support (libgloo-dev); skipped');
    if (o.json) fs.writeFileSync(o.json, JSON.stringify({ skipped: 'no distributed support in this build' }) + '\n');
    return;
  }
  const loadStart = os.loadavg();
  const runs: (WorkerResult & { examplesPerSecond: number; communicationShare: number })[] = [];
  for (const method of ['none', 'dropattack']) {
    for (const n of o.procs) {
      const out = path.join(os.tmpdir(), `dropattack-scaling-${process.pid}-${method}-${n}.json`);
      const args = [__filename, '--worker', out, '--method', method, '--batch', String(o.batch), '--steps', String(o.steps), '--warmup', String(o.warmup)];
      const r = await launchLocal(n, args, { env: { OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } });
      if (r.code !== 0) throw new Error(`scaling: ${n} process(es), ${method}: a worker failed (${JSON.stringify(r.failed)})`);
      const w = JSON.parse(fs.readFileSync(out, 'utf8')) as WorkerResult;
      fs.unlinkSync(out);
      const examplesPerSecond = (w.procs * w.batchPerProcess * w.steps) / w.seconds;
      runs.push({ ...w, examplesPerSecond, communicationShare: w.communicationSeconds / w.seconds });
      console.log(
        `scaling: ${method} ${n} process(es): ${examplesPerSecond.toFixed(0)} examples/s, ` +
          `communication ${(100 * w.communicationSeconds / w.seconds).toFixed(1)}% of the time, ` +
          `rank 0 CPU ${((1000 * w.cpuSeconds) / (w.batchPerProcess * w.steps)).toFixed(2)} ms per example of its own (load ${os.loadavg()[0].toFixed(2)})`,
      );
    }
  }
  const efficiency: Record<string, number> = {};
  for (const method of ['none', 'dropattack']) {
    const one = runs.find((r) => r.method === method && r.procs === 1);
    for (const r of runs.filter((x) => x.method === method && x.procs > 1)) {
      if (one) efficiency[`${method}:${r.procs}`] = r.examplesPerSecond / one.examplesPerSecond;
    }
  }
  for (const [k, v] of Object.entries(efficiency)) console.log(`scaling: ${k} processes: ${v.toFixed(2)}× the throughput of 1`);
  const result = {
    model: MODEL,
    parameters: Module.build(MODEL, { seed: 1 }).parameters().reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0),
    batchPerProcess: o.batch,
    steps: o.steps,
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
