// Shared by the Node side of `npm run bench`: the configurations (bench/configs.json) and
// the synthetic batches, drawn with the same 32-bit LCG as bench/python/common.py so both
// sides train on identical token ids, lengths and labels.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface BenchGroup { target: string; epsilon: number; p: number }
export interface BenchConfig {
  title: string;
  model: { kind: 'textrnn' | 'textcnn'; vocabSize: number; embedDim: number; hiddenSize?: number; numFilters?: number; kernelSizes?: number[] };
  batch: number;
  length: number;
  batches: number;
  warmup: number;
  steps: number;
  groups: BenchGroup[];
}
export interface BenchMethod { attack: boolean; k?: number; label: string }
export interface BenchSpec { configs: Record<string, BenchConfig>; methods: Record<string, BenchMethod> }

/** CPU time, system time and minor page faults of one measured step (getrusage). */
export interface StepUsage { cpuSeconds: number; systemSeconds: number; minorFaults: number }

/**
 * The machine's load now: the 1-minute load average and the tasks runnable at this
 * instant (procs_running of /proc/stat, this process's own included); NaN off Linux.
 */
export function machineLoad(): { load1: number; running: number } {
  let running = NaN;
  try {
    const m = fs.readFileSync('/proc/stat', 'utf8').match(/^procs_running\s+(\d+)/m);
    if (m) running = Number(m[1]);
  } catch {
    // not Linux
  }
  return { load1: os.loadavg()[0], running };
}

/** bench/configs.json, found from dist/bench or bench. */
export function loadSpec(): BenchSpec {
  for (const dir of [path.join(__dirname, '..', '..', 'bench'), __dirname]) {
    const file = path.join(dir, 'configs.json');
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as BenchSpec;
  }
  throw new Error('bench: configs.json not found');
}

export interface RawBatch { tokens: BigInt64Array; lengths: BigInt64Array; labels: BigInt64Array }

export function makeBatches(cfg: BenchConfig, seed: number): RawBatch[] {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(1664525, s) + 1013904223) >>> 0;
    return s;
  };
  const B = cfg.batch, T = cfg.length, V = cfg.model.vocabSize;
  const lo = Math.floor(T / 4);
  const out: RawBatch[] = [];
  for (let b = 0; b < cfg.batches; b++) {
    const tokens = new BigInt64Array(B * T);
    const lengths = new BigInt64Array(B);
    const labels = new BigInt64Array(B);
    for (let i = 0; i < B; i++) {
      const n = lo + (next() % (T - lo + 1));
      lengths[i] = BigInt(n);
      for (let j = 0; j < n; j++) tokens[i * T + j] = BigInt(1 + (next() % (V - 1)));
      labels[i] = BigInt(next() % 2);
    }
    out.push({ tokens, lengths, labels });
  }
  return out;
}
