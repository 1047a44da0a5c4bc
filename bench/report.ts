// Writes BENCHMARKS.md and bench/results/summary.json from bench/results/*.json (the runs
// of bench/run.ts). Run by `npm run bench`; on its own: node dist/bench/report.js
import * as fs from 'fs';
import * as path from 'path';

import { loadSpec } from './data';

const ROOT = path.join(__dirname, '..', '..');
const RESULTS = path.join(ROOT, 'bench', 'results');

type Side = 'project' | 'project-sparse' | 'python-careful' | 'python-careful-sparse' | 'python-notebook';
interface Run {
  side: Side; config: string; method: string; sparse?: string; sparseTargets?: string[];
  threads: number; stepSeconds: number[]; phases: Record<string, number>[]; peakRssBytes: number;
  eventLoopDelayMs?: { p50: number; p99: number; max: number; samples: number };
  // Per measured step (runs from before these were recorded have none).
  usage?: { cpuSeconds: number; systemSeconds: number; minorFaults: number }[];
  load?: { load1: number; running: number }[];
  cores?: number;
  peakLargeBytes?: number; // project: peak bytes of large CPU blocks in use (the caching allocator's count)
}

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const f = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');
const mb = (b: number): string => (Number.isFinite(b) ? `${(b / 1e6).toFixed(0)} MB` : 'n/a');
const yes = (ok: boolean | null): string => (ok === null ? 'n/a' : ok ? '**met**' : '**missed**');

interface Cell {
  runs: number; steps: number; stepSeconds: number; stepsPerSecond: number;
  spread: [number, number]; // min and max of the per-run medians
  forward: number; backward: number; extraBackward: number; perturb: number; optimizer: number;
  overheadSeconds: number; overheadShare: number; peakRssBytes: number; peakLargeBytes: number;
  eventLoopP99Ms?: number; eventLoopMaxMs?: number; sparseTargets?: string[];
  cpuSeconds: number; systemSeconds: number; minorFaults: number;
  load1: number; // median 1-minute load average over the measured steps
  underLoad: boolean | null; // load1 above the core count during the run: other work competed for the CPU
}

function cell(runs: Run[]): Cell | null {
  if (runs.length === 0) return null;
  const steps = runs.flatMap((r) => r.stepSeconds);
  const phases = runs.flatMap((r) => r.phases);
  const ph = (k: string) => median(phases.map((p) => p[k] ?? 0));
  // Attack overhead: the step minus its 1 + G·K forward/backward passes and the optimizer
  // step, per measured step (the notebook's extra backward of the summed loss is overhead).
  const overhead = runs.flatMap((r) => r.stepSeconds.map((s, k) => s - r.phases[k].forward - r.phases[k].backward - r.phases[k].optimizer));
  const share = runs.flatMap((r) => r.stepSeconds.map((s, k) => (s - r.phases[k].forward - r.phases[k].backward - r.phases[k].optimizer) / s));
  const meds = runs.map((r) => median(r.stepSeconds));
  const ev = runs.filter((r) => r.eventLoopDelayMs);
  const t = median(steps);
  const usage = runs.flatMap((r) => r.usage ?? []);
  const loads = runs.flatMap((r) => (r.load ?? []).map((l) => l.load1));
  const load1 = median(loads);
  const cores = runs[0].cores;
  return {
    runs: runs.length, steps: steps.length, stepSeconds: t, stepsPerSecond: 1 / t,
    spread: [Math.min(...meds), Math.max(...meds)],
    forward: ph('forward'), backward: ph('backward'), extraBackward: ph('extraBackward'), perturb: ph('perturb'), optimizer: ph('optimizer'),
    overheadSeconds: median(overhead), overheadShare: median(share),
    peakRssBytes: median(runs.map((r) => r.peakRssBytes)),
    peakLargeBytes: median(runs.map((r) => r.peakLargeBytes || NaN)),
    eventLoopP99Ms: ev.length ? median(ev.map((r) => r.eventLoopDelayMs!.p99)) : undefined,
    eventLoopMaxMs: ev.length ? Math.max(...ev.map((r) => r.eventLoopDelayMs!.max)) : undefined,
    sparseTargets: runs[0].sparseTargets,
    cpuSeconds: median(usage.map((u) => u.cpuSeconds)),
    systemSeconds: median(usage.map((u) => u.systemSeconds)),
    minorFaults: median(usage.map((u) => u.minorFaults)),
    load1,
    underLoad: Number.isFinite(load1) && cores ? load1 > cores : null,
  };
}

/** bench/results/machine.json, as bench/run.ts writes it. */
interface Machine {
  cpu: string;
  cores: number;
  threads: number;
  memoryGB: number;
  pythonTorch: string;
  numpy: string;
  python: string;
  node: string;
  loadAverageStart: number[];
  loadAverageEnd: number[];
  totalSeconds: number;
  date: string;
  full?: boolean;
}

/** bench/results/perturb-op.json, as bench/perturb-op.ts writes it. */
interface OpResult {
  size: { vocab: number; dim: number; megabytes: number; rows: number; uniqueRows: number };
  machine: { threads: number };
  seconds: Record<string, number>;
  bandwidthGBs: Record<string, number>;
  ratios: Record<string, number>;
}

/**
 * bench/results/scaling.json, as bench/scaling.ts writes it; a build without distributed
 * support writes `skipped` alone.
 */
interface ScalingResult {
  skipped?: string;
  models: Record<string, { description: string; parameters: number; batchPerProcess: number; steps: number }>;
  cores: number;
  loadAverageStart: number[];
  runs: {
    model: string; method: string; procs: number; batchPerProcess: number; steps: number; rounds: number;
    examplesPerSecond: number; examplesPerSecondRange: [number, number]; communicationShare: number; cpuMsPerExample: number;
    overlap: boolean; // the all-reduce started during the backward
    independent: boolean; // processes side by side without a process group (the machine's ceiling)
  }[];
  efficiency: Record<string, number>; // `${model}:${method}:${processes}[:after-backward|:independent]`: throughput ÷ that of 1 process
}

// The hand-written notes (bench/NOTES.md): included once, with the date they were written
// (their first line, "Written: ..."), which may be before the run whose numbers precede them.
function notes(runDate: string): string[] {
  const file = path.join(ROOT, 'bench', 'NOTES.md');
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8').trim();
  const m = text.match(/^Written:\s*(.+)$/m);
  const body = text.replace(/^Written:.*\n?/m, '').trim();
  return [
    '## Notes (bench/NOTES.md)', '',
    `Written by hand ${m ? m[1].trim() : '(undated)'}; the numbers above are from the run of ${runDate}. ` +
      'Where the two differ, the notes describe an earlier run.', '',
    body, '',
  ];
}

function main(): void {
  const spec = loadSpec();
  const files = fs.readdirSync(RESULTS).filter((x) => x.startsWith('train-') && x.endsWith('.json'));
  const runs = files.map((x) => JSON.parse(fs.readFileSync(path.join(RESULTS, x), 'utf8')) as Run);
  const machine = JSON.parse(fs.readFileSync(path.join(RESULTS, 'machine.json'), 'utf8')) as Machine;
  const op = fs.existsSync(path.join(RESULTS, 'perturb-op.json')) ? (JSON.parse(fs.readFileSync(path.join(RESULTS, 'perturb-op.json'), 'utf8')) as OpResult) : null;
  const libtorch = runs.find((r) => r.side === 'project') as unknown as { libtorch?: string } | undefined;

  const get = (config: string, method: string, side: Side, dense = false): Cell | null =>
    cell(runs.filter((r) => r.config === config && r.side === side && (r.method === method) && (dense ? r.sparse === 'off' : r.sparse !== 'off')));
  // Plain training is the same code in both Python variants: one run stands for both.
  const py = (config: string, method: string, side: Side): Cell | null =>
    method === 'plain' ? get(config, method, 'python-careful') : get(config, method, side);

  const summary: Record<string, unknown> = { machine, configs: {}, perturbOp: op, targets: [] };
  const targets: { name: string; value: string; ok: boolean | null }[] = [];
  const L: string[] = [];
  L.push('# Benchmarks', '');
  L.push('Generated by `npm run bench` (bench/run.ts, bench/report.ts) from the raw results in `bench/results/`. ' +
    'Do not edit by hand: run `npm run bench` again.', '');
  L.push('This project\'s DropAttack training (`Trainer.step`, one native call per batch) against a PyTorch reference of the ' +
    'same algorithm in `bench/python/train.py`, on the same LibTorch, with the same model architecture, the same synthetic ' +
    'token ids, lengths and labels (one 32-bit LCG on both sides), Adam (lr 1e-3), the same thread count and the same ' +
    '`OMP_NUM_THREADS`. Two Python variants:', '');
  L.push('- **notebook**: as the original notebooks do it (`../shared/SEED.md`): a numpy mask the size of the weight drawn on the ' +
    'host and copied in, retained graphs, gradients reset to the clean copy between attacked layers, and one more backward ' +
    'of the summed loss for the update;');
  L.push('- **careful**: on-device `bernoulli_` masks, one backward per pass, gradients accumulated in place, dense perturbation.', '');
  L.push('Every (configuration, method, side) runs in its own process; sides alternate. Times are wall-clock per step after ' +
    'warm-up steps, median over all measured steps of all runs; "spread" is the range of the per-run medians.', '');

  L.push('## Machine', '');
  L.push('| | |', '|---|---|');
  L.push(`| CPU | ${machine.cpu} |`);
  L.push(`| cores | ${machine.cores} |`);
  L.push(`| threads used (both sides) | ${machine.threads} |`);
  L.push(`| memory | ${machine.memoryGB} GiB |`);
  L.push(`| LibTorch | ${libtorch?.libtorch ?? 'n/a'} (Debian libtorch-dev, CPU); Python torch ${machine.pythonTorch}, numpy ${machine.numpy}, Python ${machine.python} |`);
  L.push(`| Node | ${machine.node} |`);
  L.push(`| load average (1, 5, 15 min) at start / end | ${machine.loadAverageStart.map((x: number) => x.toFixed(2)).join(', ')} / ${machine.loadAverageEnd.map((x: number) => x.toFixed(2)).join(', ')} |`);
  {
    const sampled = runs.filter((r) => r.load && r.load.length);
    const loaded = sampled.filter((r) => median(r.load!.map((l) => l.load1)) > (r.cores ?? machine.cores));
    const all = sampled.flatMap((r) => r.load!.map((l) => l.load1));
    L.push(`| load average (1 min) at the measured steps | ${all.length ? `${f(Math.min(...all))}–${f(Math.max(...all))}, median ${f(median(all))}` : 'n/a'} |`);
    L.push(`| runs under load (median load > ${machine.cores} cores; marked †) | ${sampled.length ? `${loaded.length} of ${sampled.length}` : 'n/a'} |`);
  }
  L.push(`| total bench time | ${(machine.totalSeconds / 60).toFixed(1)} min (${machine.date}) |`, '');

  L.push('## Configurations', '');
  for (const [key, c] of Object.entries(spec.configs)) {
    L.push(`- ${c.title}. Attacked groups (ε, p): ${c.groups.map((g) => `\`${g.target}\` (${g.epsilon}, ${g.p})`).join(' and ')}. ` +
      `Lengths uniform in [${Math.floor(c.length / 4)}, ${c.length}].` + (key === 'b' && !machine.full ? ' Plain and DropAttack-1 only (a DropAttack-3 step takes minutes here; `bench/run.ts --full` runs it).' : '') +
      (() => { const r = runs.filter((x) => x.config === key); return r.length ? ` ${(r[0] as unknown as { warmup: number }).warmup} warm-up + ${r[0].stepSeconds.length} measured step(s) per run.` : ' (not run)'; })());
  }
  L.push('');

  L.push('## Training steps', '');
  L.push('| config | method | project steps/s | careful steps/s | notebook steps/s | project ÷ careful | project ÷ notebook | project spread (s/step) | careful spread | notebook spread |');
  L.push('|---|---|---|---|---|---|---|---|---|---|');
  const configs: Record<string, unknown> = {};
  for (const config of Object.keys(spec.configs)) {
    const methods: Record<string, unknown> = {};
    for (const method of Object.keys(spec.methods)) {
      const p = get(config, method, 'project');
      const c = py(config, method, 'python-careful');
      const n = py(config, method, 'python-notebook');
      if (!p && !c && !n) continue;
      const rc = p && c ? p.stepsPerSecond / c.stepsPerSecond : NaN;
      const rn = p && n ? p.stepsPerSecond / n.stepsPerSecond : NaN;
      methods[method] = { project: p, careful: c, notebook: n, projectOverCareful: rc, projectOverNotebook: rn };
      const sp = (x: Cell | null) => (x ? `${f(x.spread[0])}–${f(x.spread[1])} (${x.runs}×${x.steps / x.runs})${x.underLoad ? ' †' : ''}` : 'n/a');
      L.push(`| ${config} | ${spec.methods[method].label} | ${f(p?.stepsPerSecond ?? NaN, 3)} | ${f(c?.stepsPerSecond ?? NaN, 3)} | ${f(n?.stepsPerSecond ?? NaN, 3)} | ${f(rc)} | ${f(rn)} | ${sp(p)} | ${sp(c)} | ${method === 'plain' ? '(= careful)' : sp(n)} |`);
      if (method !== 'plain') {
        if (config === 'c') targets.push({ name: `(c) ${spec.methods[method].label}: project ≥ 3× careful`, value: f(rc), ok: Number.isFinite(rc) ? rc >= 3 : null });
        else {
          targets.push({ name: `(${config}) ${spec.methods[method].label}: project ≥ careful (≥ 1.0 within noise, 5%)`, value: f(rc), ok: Number.isFinite(rc) ? rc >= 0.95 : null });
          targets.push({ name: `(${config}) ${spec.methods[method].label}: project ≥ 1.8× notebook`, value: f(rn), ok: Number.isFinite(rn) ? rn >= 1.8 : null });
        }
      }
    }
    configs[config] = methods;
  }
  summary.configs = configs;
  L.push('', 'For plain training the two Python variants are the same code; one run stands for both. ' +
    '† marks runs taken under load: the median 1-minute load average over their measured steps exceeded the core count, ' +
    'so other work competed for the CPU and their wall times (and ratios) are less certain than the CPU times below.', '');

  {
    const rows: string[] = [];
    for (const config of Object.keys(spec.configs)) {
      for (const method of Object.keys(spec.methods)) {
        const p = get(config, method, 'project'), s = get(config, method, 'python-careful-sparse');
        if (!p || !s) continue;
        rows.push(`| ${config} | ${spec.methods[method].label} | ${f(p.stepsPerSecond, 3)} | ${f(s.stepsPerSecond, 3)} | ${f(p.stepsPerSecond / s.stepsPerSecond)} | ${f(s.cpuSeconds / p.cpuSeconds)} |`);
      }
    }
    const sparseRows: string[] = [];
    for (const config of Object.keys(spec.configs)) {
      for (const method of Object.keys(spec.methods)) {
        const ps = get(config, method, 'project-sparse');
        if (!ps) continue;
        const c = py(config, method, 'python-careful'), s = get(config, method, 'python-careful-sparse');
        const rc = c ? ps.stepsPerSecond / c.stepsPerSecond : NaN, rs = s ? ps.stepsPerSecond / s.stepsPerSecond : NaN;
        const cc = c ? c.cpuSeconds / ps.cpuSeconds : NaN, cs = s ? s.cpuSeconds / ps.cpuSeconds : NaN;
        sparseRows.push(`| ${config} | ${spec.methods[method].label} | ${f(ps.stepsPerSecond, 3)}${ps.underLoad ? ' †' : ''} | ${f(rc)} | ${f(rs)} | ${f(cc)} | ${f(cs)} |`);
        if (method !== 'plain') {
          targets.push({ name: `(${config}) ${spec.methods[method].label}, sparse embedding: project ≥ 3× careful (dense)`, value: f(rc), ok: Number.isFinite(rc) ? rc >= 3 : null });
          targets.push({ name: `(${config}) ${spec.methods[method].label}, sparse embedding: project ≥ 1.3× careful-sparse`, value: f(rs), ok: Number.isFinite(rs) ? rs >= 1.3 : null });
        }
      }
    }
    if (sparseRows.length) {
      L.push('## The project with a sparse embedding gradient', '');
      L.push('*project-sparse*: the project\'s model built with `sparseEmbedding: true` (the table\'s gradient holds the batch\'s ' +
        'rows; Adam updates them row-wise as `torch.optim.SparseAdam`; DropAttack reads the direction from the sparse gradient), ' +
        'against the careful reference as users write it (dense) and against careful-sparse. Wall-clock and CPU-time ratios.', '');
      L.push('| config | method | project-sparse steps/s | ÷ careful | ÷ careful-sparse | CPU: careful ÷ project-sparse | CPU: careful-sparse ÷ project-sparse |', '|---|---|---|---|---|---|---|');
      L.push(...sparseRows, '');
    }
    if (rows.length) {
      L.push('## Against PyTorch\'s sparse embedding path', '');
      L.push('*careful-sparse*: the careful reference with `nn.Embedding(sparse=True)` and `torch.optim.SparseAdam` for the table ' +
        '(Adam for the rest), the row-wise update PyTorch offers for large tables; its attack densifies the embedding\'s direction.', '');
      L.push('| config | method | project steps/s | careful-sparse steps/s | project ÷ careful-sparse | CPU: careful-sparse ÷ project |', '|---|---|---|---|---|---|');
      L.push(...rows, '');
    }
  }

  L.push('## CPU time, system time and page faults per step', '');
  L.push('getrusage of each run\'s own process around each measured step (all its threads; median over steps): CPU = user + system. ' +
    'CPU time is far less affected than wall time by other work on the machine, so the CPU ratio is the steadier comparison ' +
    'under load. "load" is the median 1-minute load average over the measured steps.', '');
  L.push('| config | method | side | wall s | CPU s | system s | minor faults | load | CPU: careful ÷ project |');
  L.push('|---|---|---|---|---|---|---|---|---|');
  const cpu: Record<string, unknown> = {};
  for (const config of Object.keys(spec.configs)) {
    for (const method of Object.keys(spec.methods)) {
      const p = get(config, method, 'project');
      for (const side of ['project', 'project-sparse', 'python-careful', 'python-careful-sparse', 'python-notebook'] as Side[]) {
        if (method === 'plain' && side === 'python-notebook') continue;
        const x = get(config, method, side);
        if (!x || !Number.isFinite(x.cpuSeconds)) continue;
        const ratio = side === 'python-careful' && p ? x.cpuSeconds / p.cpuSeconds : NaN;
        cpu[`${config}.${method}.${side}`] = { cpuSeconds: x.cpuSeconds, systemSeconds: x.systemSeconds, minorFaults: x.minorFaults, load1: x.load1, underLoad: x.underLoad };
        L.push(`| ${config} | ${spec.methods[method].label} | ${side.replace('python-', '')} | ${f(x.stepSeconds, 3)}${x.underLoad ? ' †' : ''} | ${f(x.cpuSeconds, 3)} | ${f(x.systemSeconds, 3)} | ${Number.isFinite(x.minorFaults) ? x.minorFaults.toFixed(0) : 'n/a'} | ${f(x.load1)} | ${Number.isFinite(ratio) ? f(ratio) : ''} |`);
      }
    }
  }
  summary.cpu = cpu;
  L.push('');

  L.push('## Where a step goes (median seconds per step)', '');
  L.push('Attack overhead = step − (its 1 + G·K forward and backward passes) − optimizer step (zeroing the gradients included). ' +
    'The project\'s phases are the engine\'s `times` (`timePhases: true`), and its step is timed around `await trainer.step()`; ' +
    'Python times its phases the same way with `time.perf_counter()`. For the notebook the extra backward of the summed loss ' +
    'is overhead (it is beyond the 1 + G·K passes); its own column shows it.', '');
  L.push('| config | method | side | step | forward | backward | notebook extra backward | perturb | optimizer | overhead | overhead share |');
  L.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const config of Object.keys(spec.configs)) {
    for (const method of Object.keys(spec.methods)) {
      for (const side of ['project', 'python-careful', 'python-notebook'] as Side[]) {
        if (method === 'plain' && side === 'python-notebook') continue;
        const x = get(config, method, side);
        if (!x) continue;
        L.push(`| ${config} | ${spec.methods[method].label} | ${side.replace('python-', '')} | ${f(x.stepSeconds, 3)} | ${f(x.forward, 3)} | ${f(x.backward, 3)} | ${side === 'python-notebook' ? f(x.extraBackward, 3) : '–'} | ${f(x.perturb, 3)} | ${f(x.optimizer, 3)} | ${f(x.overheadSeconds, 3)} | ${pct(x.overheadShare)} |`);
        if (side === 'project' && method !== 'plain') {
          targets.push({ name: `(${config}) ${spec.methods[method].label}: project attack overhead ≤ 5% of the step`, value: pct(x.overheadShare), ok: x.overheadShare <= 0.05 });
        }
      }
    }
  }
  L.push('');

  if (op) {
    L.push('## The perturbation op alone (bench/perturb-op.ts)', '');
    L.push(`A ${op.size.vocab} × ${op.size.dim} float32 table (${op.size.megabytes} MB), ${op.machine.threads} thread(s); ` +
      `row-sparse: ${op.size.rows} row ids (${op.size.uniqueRows} unique). Dense perturb moves 5 tensor-sizes (norm pass reads d; ` +
      'fused pass reads w and d, writes w and the backup); a copy moves 2.', '');
    L.push('| what | seconds | GB/s |', '|---|---|---|');
    L.push(`| plain copy | ${f(op.seconds.copy, 4)} | ${f(op.bandwidthGBs.copy, 1)} |`);
    L.push(`| dense perturb (fused) | ${f(op.seconds.densePerturb, 4)} | ${f(op.bandwidthGBs.densePerturb, 1)} |`);
    L.push(`| dense restore | ${f(op.seconds.denseRestore, 4)} | ${f(op.bandwidthGBs.denseRestore, 1)} |`);
    L.push(`| dense perturb + restore | ${f(op.seconds.densePerturbRestore, 4)} | |`);
    L.push(`| the same in plain LibTorch ops (clone, norm, rand mask, mul, add, copy back) | ${f(op.seconds.libtorchOpsPerturbRestore, 4)} | |`);
    L.push(`| row-sparse perturb + restore | ${f(op.seconds.sparsePerturbRestore, 4)} | |`, '');
    L.push(`Dense perturb bandwidth ÷ copy bandwidth: ${pct(op.ratios.densePerturbBandwidthOverCopy)}; plain LibTorch ops ÷ fused: ` +
      `${f(op.ratios.libtorchOpsOverFused, 1)}×; dense ÷ row-sparse: ${f(op.ratios.denseOverSparse, 1)}×.`, '');
    targets.push({ name: 'dense perturbation op ≥ 70% of copy bandwidth', value: pct(op.ratios.densePerturbBandwidthOverCopy), ok: op.ratios.densePerturbBandwidthOverCopy >= 0.7 });
  }

  const scalingFile = path.join(RESULTS, 'scaling.json');
  const sc = fs.existsSync(scalingFile) ? (JSON.parse(fs.readFileSync(scalingFile, 'utf8')) as ScalingResult) : null;
  if (sc && !sc.skipped) {
    L.push('## Data-parallel scaling (bench/scaling.ts)', '');
    L.push(`1 thread per process, Gloo on loopback, ${sc.cores} cores, load average ` +
      `${sc.loadAverageStart.map((v) => v.toFixed(2)).join(' ')} at the start. Each process trains on its own batch, so 2 processes ` +
      'do twice the work per step. Throughput counts the examples of every process; "all-reduce" says whether the ' +
      'gradients\' all-reduce started during the last backward pass (overlapped, the default) or after it; communication ' +
      'is the time the step waited for it (waiting for the other rank included) as a share of the wall time; CPU per ' +
      'example is rank 0\'s process time (its Gloo threads included) over its own examples. "none (independent)" is 2 processes ' +
      'training side by side without a process group: the most 2 processes get out of this machine, the ceiling of the ' +
      'data-parallel rows. Figures are medians over the ' +
      'rounds (every configuration once per round); "range" is the lowest and highest throughput and the number of rounds.', '');
    for (const [name, m] of Object.entries(sc.models)) {
      L.push(`**${m.description}**: ${m.parameters} parameters, batch ${m.batchPerProcess} per process, ${m.steps} measured steps.`, '');
      L.push('| method | processes | all-reduce | examples/s | range | × 1 process | communication | CPU ms per example |', '|---|---|---|---|---|---|---|---|');
      for (const r of sc.runs.filter((x) => x.model === name)) {
        const one = sc.runs.find((x) => x.model === name && x.method === r.method && x.procs === 1);
        const when = r.procs === 1 ? '' : r.independent ? 'none (independent)' : r.overlap ? 'overlapped' : 'after the backward';
        L.push(`| ${r.method} | ${r.procs} | ${when} | ${f(r.examplesPerSecond, 0)} | ${f(r.examplesPerSecondRange[0], 0)}–${f(r.examplesPerSecondRange[1], 0)} (${r.rounds}) | ` +
          `${one ? f(r.examplesPerSecond / one.examplesPerSecond, 2) : ''} | ${pct(r.communicationShare)} | ${f(r.cpuMsPerExample, 2)} |`);
      }
      L.push('');
    }
    for (const method of ['none', 'dropattack']) {
      const two = sc.efficiency[`resnet32:${method}:2`];
      const label = method === 'none' ? 'plain training' : 'DropAttack-1';
      if (two !== undefined) targets.push({ name: `throughput of 2 processes ≥ 1.8× of 1 (${label}, compute-bound model: ResNet-32)`, value: `${f(two, 2)}×`, ok: two >= 1.8 });
    }
  }

  L.push('## Peak resident memory', '');
  L.push('VmHWM (Python) and `process.resourceUsage().maxRSS` (Node) of each run\'s own process; "extra" is DropAttack minus ' +
    'plain training on the same side (each side\'s own interpreter and libraries cancel out).', '');
  L.push('| config | method | project | extra | careful | extra | notebook | extra |', '|---|---|---|---|---|---|---|---|');
  const mem: Record<string, unknown> = {};
  for (const config of Object.keys(spec.configs)) {
    const pp = get(config, 'plain', 'project'), cp = get(config, 'plain', 'python-careful');
    for (const method of Object.keys(spec.methods)) {
      const p = get(config, method, 'project'), c = py(config, method, 'python-careful'), n = py(config, method, 'python-notebook');
      if (!p && !c) continue;
      const ex = (x: Cell | null, base: Cell | null) => (x && base ? x.peakRssBytes - base.peakRssBytes : NaN);
      mem[`${config}.${method}`] = { project: p?.peakRssBytes, projectExtra: ex(p, pp), careful: c?.peakRssBytes, carefulExtra: ex(c, cp), notebook: n?.peakRssBytes, notebookExtra: ex(n, cp) };
      L.push(`| ${config} | ${spec.methods[method].label} | ${mb(p?.peakRssBytes ?? NaN)} | ${method === 'plain' ? '' : mb(ex(p, pp))} | ${mb(c?.peakRssBytes ?? NaN)} | ${method === 'plain' ? '' : mb(ex(c, cp))} | ${method === 'plain' ? '(= careful)' : mb(n?.peakRssBytes ?? NaN)} | ${method === 'plain' ? '' : mb(ex(n, cp))} |`);
    }
    const dense = get(config, 'da1', 'project', true);
    if (dense && pp) {
      const cfg = spec.configs[config];
      const embed = cfg.model.vocabSize * cfg.model.embedDim * 4;
      const extra = dense.peakRssBytes - pp.peakRssBytes;
      // The allocator's own count of large blocks in use, where recorded: exact bytes, free
      // of the interpreter's heap and of blocks kept for reuse that RSS includes.
      const largeExtra = dense.peakLargeBytes - pp.peakLargeBytes;
      const exact = Number.isFinite(largeExtra);
      L.push(`| ${config} | DropAttack-1, embedding dense (\`sparse: 'off'\`) | ${mb(dense.peakRssBytes)} | ${mb(extra)} | | | | |`);
      mem[`${config}.da1.dense`] = { project: dense.peakRssBytes, projectExtra: extra, peakLargeBytes: dense.peakLargeBytes, largeExtra, targetBytes: embed, stepSeconds: dense.stepSeconds };
      if (exact) {
        L.push('', `Peak bytes of large CPU blocks in use during the measured steps (the caching allocator's count; no interpreter heap, ` +
          `no kept blocks): plain ${mb(pp.peakLargeBytes)}, DropAttack-1 dense ${mb(dense.peakLargeBytes)}: ` +
          `extra ${mb(largeExtra)} = ${f(largeExtra / embed)}× the ${mb(embed)} table.`);
      }
      const used = exact ? largeExtra : extra;
      targets.push({ name: `(${config}) extra peak memory, dense embedding target (${mb(embed)}) ≤ 1.1× its size${exact ? ' (allocator peak)' : ' (RSS)'}`, value: `${mb(used)} = ${f(used / embed)}×`, ok: used <= 1.1 * embed });
      L.push('', `With the row-sparse path off, the project's DropAttack-1 step on (${config}) takes ${f(dense.stepSeconds, 3)} s ` +
        `(${f(1 / dense.stepSeconds, 3)} steps/s; overhead share ${pct(dense.overheadShare)}).`);
    }
  }
  summary.memory = mem;
  L.push('');

  L.push('## Event loop while the project trains', '');
  L.push('`perf_hooks.monitorEventLoopDelay({ resolution: 1 })`, enabled over the measured steps (the histogram includes the 1 ms timer period).', '');
  L.push('| config | method | p99 delay | max delay |', '|---|---|---|---|');
  const loop: Record<string, unknown> = {};
  for (const config of Object.keys(spec.configs)) {
    for (const method of Object.keys(spec.methods)) {
      const p = get(config, method, 'project');
      if (!p || p.eventLoopP99Ms === undefined) continue;
      loop[`${config}.${method}`] = { p99Ms: p.eventLoopP99Ms, maxMs: p.eventLoopMaxMs };
      L.push(`| ${config} | ${spec.methods[method].label} | ${f(p.eventLoopP99Ms)} ms | ${f(p.eventLoopMaxMs ?? NaN)} ms |`);
    }
  }
  summary.eventLoop = loop;
  L.push('');

  L.push('## Targets (issue 5)', '');
  L.push('| target | measured | |', '|---|---|---|');
  for (const t of targets) L.push(`| ${t.name} | ${t.value} | ${yes(t.ok)} |`);
  L.push('');
  summary.targets = targets;

  L.push(...notes(machine.date));

  fs.writeFileSync(path.join(ROOT, 'BENCHMARKS.md'), L.join('\n'));
  fs.writeFileSync(path.join(RESULTS, 'summary.json'), JSON.stringify(summary, null, 1) + '\n');
  console.log(L.join('\n'));
}

main();
