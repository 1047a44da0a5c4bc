// `npm run bench`: the project's DropAttack training side by side with the PyTorch
// references in bench/python/ on the same LibTorch, then the perturbation op alone, then
// BENCHMARKS.md (bench/report.ts).
//
//   node dist/bench/run.js [--threads N] [--rounds-a R] [--full]
//
// Every (configuration, method, side) runs in its own process, so that each peak RSS is
// that run's alone. The sides alternate (the order rotates from one method and round to
// the next) because the machine is shared. Python runs with Debian's /usr/bin/python3
// (torch 1.13, the same LibTorch build as the addon); both sides get the same thread count
// through set_num_threads / setNumThreads and the same OMP_NUM_THREADS / MKL_NUM_THREADS.
//
// Config (b) is the notebooks' size: its packed-LSTM backward takes ~20 s per pass on one
// core, so by default it runs plain and DropAttack-1 for one measured step each, without a
// warm-up step (one-time costs are small next to a 20-60 s step); --full also runs
// DropAttack-3 there, with the configured warm-up and steps.
//
// Then the perturbation op alone (bench/perturb-op.ts) and data-parallel scaling over 1
// and 2 processes (bench/scaling.ts).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { loadSpec } from './data';

const ROOT = path.join(__dirname, '..', '..');
const RESULTS = path.join(ROOT, 'bench', 'results');
const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';

interface Job { config: string; method: string; side: 'project' | 'project-sparse' | 'python-careful' | 'python-careful-sparse' | 'python-notebook'; sparse?: 'off'; round: number; warmup?: number; steps?: number }

function argv(): { threads: number; roundsA: number; full: boolean } {
  const a = process.argv.slice(2);
  const get = (k: string, d: number) => (a.includes(k) ? Number(a[a.indexOf(k) + 1]) : d);
  return { threads: get('--threads', Number(process.env.BENCH_THREADS ?? 1)), roundsA: get('--rounds-a', 2), full: a.includes('--full') };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, label: string): void {
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'] });
  const s = ((Date.now() - t0) / 1000).toFixed(1);
  if (r.status !== 0) throw new Error(`bench: ${label} failed (status ${r.status}, signal ${r.signal})`);
  console.log(`bench: ${label} (${s} s, load ${os.loadavg()[0].toFixed(2)})`);
}

function main(): void {
  const o = argv();
  const spec = loadSpec();
  fs.mkdirSync(RESULTS, { recursive: true });
  for (const f of fs.readdirSync(RESULTS)) if (f.startsWith('train-') && f.endsWith('.json')) fs.unlinkSync(path.join(RESULTS, f));
  const env = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', OMP_NUM_THREADS: String(o.threads), MKL_NUM_THREADS: String(o.threads) };
  const start = Date.now();
  const loadStart = os.loadavg();

  const jobs: Job[] = [];
  let rot = 0;
  // (c), the embedding-heavy configuration, also runs the sparse embedding path on both
  // sides (the project's sparseEmbedding; PyTorch's nn.Embedding(sparse=True) with
  // SparseAdam) for plain training and DropAttack-1.
  const sidesFor = (config: string, method: string): Job['side'][] => [
    'project', 'python-careful', ...(method === 'plain' ? [] : ['python-notebook' as const]),
    ...(config === 'c' && method !== 'da3' ? ['python-careful-sparse' as const, 'project-sparse' as const] : []),
  ];
  for (const config of Object.keys(spec.configs)) {
    const rounds = config === 'a' ? o.roundsA : 1;
    const methods = config === 'b' && !o.full ? ['plain', 'da1'] : Object.keys(spec.methods);
    const extra = config === 'b' && !o.full ? { warmup: 0, steps: 1 } : {};
    for (let round = 0; round < rounds; round++) {
      for (const method of methods) {
        const sides = sidesFor(config, method);
        const order = sides.map((_, k) => sides[(k + rot) % sides.length]);
        rot++;
        for (const side of order) jobs.push({ config, method, side, round, ...extra });
      }
    }
    // Memory of a dense target: the embedding attacked without the row-sparse path.
    if (config === 'c') jobs.push({ config, method: 'da1', side: 'project', sparse: 'off', round: 0 });
  }

  jobs.forEach((j, k) => {
    const name = `train-${j.config}-${j.method}-${j.side}${j.sparse ? '-dense' : ''}-r${j.round}.json`;
    const out = path.join(RESULTS, name);
    const common = ['--config', j.config, '--method', j.method, '--threads', String(o.threads), '--json', out];
    if (j.warmup !== undefined) common.push('--warmup', String(j.warmup));
    if (j.steps !== undefined) common.push('--steps', String(j.steps));
    const label = `[${k + 1}/${jobs.length}] ${j.config} ${j.method} ${j.side}${j.sparse ? ' (sparse off)' : ''} round ${j.round}`;
    if (j.side === 'project' || j.side === 'project-sparse') {
      const extra = [...(j.sparse ? ['--sparse', j.sparse] : []), ...(j.side === 'project-sparse' ? ['--sparse-embedding', 'on'] : [])];
      run(process.execPath, [path.join(__dirname, 'train.js'), ...common, ...extra], env, label);
    } else {
      run(PYTHON, [path.join(ROOT, 'bench', 'python', 'train.py'), ...common, '--impl', j.side.replace('python-', '')], env, label);
    }
  });

  run(process.execPath, [path.join(__dirname, 'perturb-op.js'), '--threads', String(o.threads), '--json', path.join(RESULTS, 'perturb-op.json')], env, 'perturbation op (bench/perturb-op.ts)');
  // 1 and 2 processes, 1 thread each, whatever --threads says (bench/scaling.ts).
  run(process.execPath, [path.join(__dirname, 'scaling.js'), '--json', path.join(RESULTS, 'scaling.json')], env, 'data-parallel scaling (bench/scaling.ts)');

  const cpu = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const py = spawnSync(PYTHON, ['-c', 'import torch, numpy, platform; print(torch.__version__, numpy.__version__, platform.python_version())'], { encoding: 'utf8' }).stdout.trim().split(' ');
  const machine = {
    cpu,
    cores: os.cpus().length,
    memoryGB: +(os.totalmem() / 2 ** 30).toFixed(1),
    threads: o.threads,
    node: process.version,
    pythonTorch: py[0],
    numpy: py[1],
    python: py[2],
    loadAverageStart: loadStart,
    loadAverageEnd: os.loadavg(),
    totalSeconds: (Date.now() - start) / 1000,
    date: new Date().toISOString(),
    full: o.full,
  };
  fs.writeFileSync(path.join(RESULTS, 'machine.json'), JSON.stringify(machine, null, 1) + '\n');
  run(process.execPath, [path.join(__dirname, 'report.js')], env, 'BENCHMARKS.md (bench/report.ts)');
}

main();
