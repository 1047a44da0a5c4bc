// The loss landscape around a trained model (Li et al., 2018, "Visualizing the Loss
// Landscape of Neural Nets"): the loss on a 2-D grid θ + α·d1 + β·d2 along two random
// directions, each filter normalized so that the picture does not depend on the scale of
// the weights.
import * as fs from 'fs';
import * as path from 'path';

import { ConfigError, readConfigFile } from './config';
import { writeFileSynced } from '../core/files';
import { Module } from '../core/module';
import { Device, Generator, randn, Tensor, zeros } from '../core/tensor';
import { evaluate } from '../train/metrics';
import type { Batch } from '../train/types';
import type { LandscapeResult } from './report';
import { parseRunConfig, placeModel, prepareData, RunConfig } from './run';

/** Options of {@link computeLandscape}. */
export interface LandscapeOptions {
  /** Points per axis (odd, so the trained model is the centre). Default 51. */
  grid?: number;
  /** The grid spans [-range, range] along each direction. Default 1. */
  range?: number;
  /** Seed of the two random directions. Default 0. */
  seed?: number;
  /** Called after each grid point with the number done and the total. */
  onPoint?: (done: number, total: number) => void;
}

/**
 * A random direction shaped like the module's parameters, filter normalized: each filter
 * (slice along the first dimension) of the direction has the norm of the same filter of
 * the weights. One-dimensional parameters (biases, norm layers) get a zero direction, as
 * in Li et al.'s experiments.
 */
export function filterNormalizedDirection(params: Map<string, Tensor>, generator: Generator): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, w] of params) {
    if (w.shape.length <= 1) {
      out.set(name, zeros(w.shape, { dtype: w.dtype, device: w.device }));
      continue;
    }
    const d = randn(w.shape, { dtype: w.dtype, device: w.device, generator });
    const dims = w.shape.slice(1).map((_, k) => k + 1);
    const dn = d.norm(2, { dim: dims, keepdim: true });
    const wn = w.norm(2, { dim: dims, keepdim: true });
    out.set(name, d.mul(wn.div(dn.add(1e-10))));
    for (const t of [d, dn, wn]) t.dispose();
  }
  return out;
}

/**
 * The loss of `model` over `batches` at each point of a grid×grid lattice in
 * [-range, range]² along two filter-normalized random directions. The model's
 * parameters are restored afterwards.
 */
export async function computeLandscape(model: Module, batches: Batch[], options: LandscapeOptions = {}): Promise<Pick<LandscapeResult, 'alphas' | 'betas' | 'loss' | 'grid' | 'range' | 'seed'>> {
  const grid = options.grid ?? 51;
  const range = options.range ?? 1;
  const seed = options.seed ?? 0;
  if (!Number.isInteger(grid) || grid < 3 || grid > 501 || grid % 2 === 0) throw new ConfigError('--grid', `expected an odd integer from 3 to 501, got ${grid}`);
  if (!(range > 0 && Number.isFinite(range))) throw new ConfigError('--range', `expected a positive number, got ${range}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new ConfigError('--seed', `expected an integer >= 0, got ${seed}`);
  const params = model.namedParameters();
  const theta = new Map([...params].map(([k, v]) => [k, v.detach().clone()] as const));
  const generator = new Generator(seed);
  const d1 = filterNormalizedDirection(theta, generator);
  const d2 = filterNormalizedDirection(theta, generator);
  const axis = Array.from({ length: grid }, (_, k) => -range + (2 * range * k) / (grid - 1));
  const loss: number[][] = axis.map(() => new Array<number>(grid).fill(NaN));
  const total = grid * grid;
  let done = 0;
  try {
    for (let i = 0; i < grid; i++) {
      for (let j = 0; j < grid; j++) {
        const state = new Map<string, Tensor>();
        for (const [name, t] of theta) {
          const a = d1.get(name)!.mul(axis[i]);
          const b = d2.get(name)!.mul(axis[j]);
          const ab = a.add(b);
          state.set(name, t.add(ab));
          for (const x of [a, b, ab]) x.dispose();
        }
        model.loadStateDict(state, { strict: false });
        for (const t of state.values()) t.dispose();
        loss[i][j] = (await evaluate(model, batches)).loss;
        options.onPoint?.(++done, total);
      }
    }
  } finally {
    model.loadStateDict(theta, { strict: false });
    for (const m of [theta, d1, d2]) for (const t of m.values()) t.dispose();
  }
  return { alphas: axis, betas: axis, loss, grid, range, seed };
}

/** The run folder of a checkpoint (runs/NAME/LABEL/checkpoints/best → runs/NAME/LABEL). */
function runFolderOf(checkpoint: string): string {
  const abs = path.resolve(checkpoint);
  const parent = path.dirname(abs);
  return path.basename(parent) === 'checkpoints' ? path.dirname(parent) : parent;
}

/** Options of the `dropattack landscape` command. */
export interface LandscapeCommand {
  checkpoint: string;
  config?: string;
  set?: string[];
  grid?: number;
  range?: number;
  seed?: number;
  /** Validation examples the loss is averaged over. Default 1000. */
  examples?: number;
  /** Evaluate on this file (same format and columns as the run's data.path) instead of the run's validation data. */
  data?: string;
  /** Progress output (default stdout). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

const duration = (s: number) => (s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);

/**
 * `dropattack landscape`: the landscape of a checkpoint on (the first `examples` of) its
 * run's validation data, written as `<compare folder>/landscape/<label>.json`; the
 * compare folder's report is rewritten to show it.
 */
export async function landscapeCommand(o: LandscapeCommand): Promise<{ json: string; result: LandscapeResult }> {
  const out = o.stream ?? process.stdout;
  if (!fs.existsSync(o.checkpoint)) throw new ConfigError('--checkpoint', `'${o.checkpoint}': no such file or directory`);
  const modelFile = fs.statSync(o.checkpoint).isDirectory() ? path.join(o.checkpoint, 'model.pt') : o.checkpoint;
  if (!fs.existsSync(modelFile)) throw new ConfigError('--checkpoint', `'${o.checkpoint}' is a directory without model.pt`);
  const runFolder = runFolderOf(path.dirname(modelFile));
  const configFile = o.config ?? path.join(runFolder, 'config.json');
  if (!fs.existsSync(configFile)) throw new ConfigError('--config', `no configuration given and none at '${configFile}' (the run folder of the checkpoint)`);
  const raw = readConfigFile(configFile);
  delete (raw as { compare?: unknown }).compare;
  if (o.data !== undefined) {
    if (!fs.existsSync(o.data)) throw new ConfigError('--data', `'${o.data}': no such file`);
    // The file takes the place of the validation split.
    const d = (raw.data ?? {}) as Record<string, unknown>;
    delete d.validation;
    raw.data = { ...d, validationPath: path.resolve(o.data) };
  }
  const config: RunConfig = parseRunConfig(raw, o.set ?? []);
  if (o.data !== undefined && !['csv', 'tsv', 'jsonl'].includes(config.data.source)) {
    throw new ConfigError('--data', `needs data.source csv, tsv or jsonl (the run has '${config.data.source}')`);
  }
  const examples = o.examples ?? 1000;
  if (!Number.isInteger(examples) || examples < 1) throw new ConfigError('--examples', `expected an integer >= 1, got ${examples}`);
  const fixed = {
    ...(fs.existsSync(path.join(runFolder, 'vocab.json')) ? { vocabFile: path.join(runFolder, 'vocab.json') } : {}),
    ...(fs.existsSync(path.join(runFolder, 'labels.json')) ? { labelsFile: path.join(runFolder, 'labels.json') } : {}),
  };
  const data = await prepareData(config, fixed);
  const batches: Batch[] = [];
  let n = 0;
  for (const b of data.validation(1)) {
    batches.push(b);
    n += b.target ? b.target.shape[0] : 1;
    if (n >= examples) break;
  }
  const model = await Module.load(modelFile, { device: config.training.device as Device });
  placeModel(model, config.training.device);
  // The time of one grid point, measured, gives the estimate before the long loop starts.
  const t0 = Date.now();
  await evaluate(model, batches);
  const perPoint = (Date.now() - t0) / 1000;
  const grid = o.grid ?? 51;
  const total = grid * grid;
  out.write(`landscape: ${grid}×${grid} = ${total} evaluations of ${n} examples, about ${duration(perPoint * total)} (${perPoint.toFixed(3)} s each)\n`);
  const started = Date.now();
  let last = 0;
  const onPoint = (done: number, all: number) => {
    const now = Date.now();
    if (done < all && now - last < (out.isTTY ? 200 : 10_000)) return;
    last = now;
    const elapsed = (now - started) / 1000;
    const left = (elapsed / done) * (all - done);
    const width = 30;
    const bar = '#'.repeat(Math.round((width * done) / all)).padEnd(width, '.');
    const line = `landscape [${bar}] ${done}/${all}  ${duration(elapsed)} elapsed, ${duration(left)} left`;
    out.write(out.isTTY ? `\r${line}${done === all ? '\n' : ''}` : `${line}\n`);
  };
  const r = await computeLandscape(model, batches, { grid, ...(o.range !== undefined ? { range: o.range } : {}), ...(o.seed !== undefined ? { seed: o.seed } : {}), onPoint });
  const label = path.basename(runFolder);
  const result: LandscapeResult = { label, checkpoint: path.resolve(o.checkpoint), examples: n, seconds: (Date.now() - started) / 1000, ...r };
  const compareFolder = path.dirname(runFolder);
  const dir = path.join(compareFolder, 'landscape');
  fs.mkdirSync(dir, { recursive: true });
  const json = path.join(dir, `${label}.json`);
  writeFileSynced('landscape', json, JSON.stringify(result));
  const { renderSvg, reportSpecs } = await import('./report');
  const [chart] = reportSpecs({ title: label, runs: [], config: null, machine: null, seeds: null, landscapes: [result] });
  writeFileSynced('landscape', path.join(dir, `${label}.svg`), await renderSvg(chart.spec));
  return { json, result };
}
