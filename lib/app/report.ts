// The report of a run folder: one self-contained HTML file (no script, no network: the
// charts are inline SVG rendered here by Vega-Lite and Vega's headless SVG renderer) and
// the same charts as separate SVG files.
import * as fs from 'fs';
import * as path from 'path';

import * as vega from 'vega';
import { compile, TopLevelSpec } from 'vega-lite';

import { ConfigError } from './config';
import { fsReason, writeFileSynced } from '../core/files';
import type { EpochRecord, Metrics } from '../train/types';

/** One method's run as the report reads it from its folder. */
export interface ReportRun {
  label: string;
  method: string;
  dir: string;
  epochs: number;
  best: { epoch: number; value: number; monitor: string } | null;
  final: Metrics;
  trainLoss: number;
  seconds: number;
  secondsPerEpoch: number;
  /** Optimizer steps per second over the whole run (all epochs' applied steps / seconds). */
  stepsPerSecond: number;
  history: EpochRecord[];
  /** Clean training loss per optimizer step (from log.jsonl's batch events). */
  steps: { step: number; loss: number }[];
}

/** Per-seed statistics written by `compare --seeds` (seeds.json). */
export interface SeedStats {
  seeds: number[];
  trainFraction: number;
  metric: string;
  /** Plain training's label (the reference of the paired differences), or null when not compared. */
  reference: string | null;
  methods: {
    label: string;
    trainFraction: number;
    values: { seed: number; value: number }[];
    mean: number;
    sd: number;
    /** Mean paired difference to the reference (same seeds), with a 95% t interval. */
    paired: { mean: number; low: number; high: number; n: number } | null;
  }[];
}

/** A loss landscape written by `dropattack landscape` (landscape.json). */
export interface LandscapeResult {
  label: string;
  checkpoint: string;
  grid: number;
  range: number;
  seed: number;
  examples: number;
  alphas: number[];
  betas: number[];
  /** loss[i][j] at (alphas[i], betas[j]). */
  loss: number[][];
  seconds: number;
}

/** What {@link writeReport} wrote. */
export interface ReportFiles {
  html: string;
  svgs: string[];
}

const fail = (message: string) => new ConfigError('report', message);

function readJson<T>(file: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw fail(`cannot read '${file}': ${fsReason(e)}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw fail(`'${file}' is not valid JSON: ${(e as Error).message}`);
  }
}

/** The clean training loss of every batch event in a run's log.jsonl (NaN entries dropped). */
export function readStepLosses(file: string): { step: number; loss: number }[] {
  if (!fs.existsSync(file)) return [];
  const out: { step: number; loss: number }[] = [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, k) => {
    if (line.trim() === '') return;
    let e: { kind?: string; step?: number; values?: Record<string, unknown> };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      // A run stopped mid-write leaves a partial last line; any other bad line is an error.
      if (k >= lines.length - 2) return;
      throw fail(`'${file}' line ${k + 1} is not JSON`);
    }
    if (e.kind === 'batch' && typeof e.step === 'number' && typeof e.values?.loss === 'number') out.push({ step: e.step, loss: e.values.loss });
  });
  return out;
}

function readRun(dir: string, fallbackLabel: string): ReportRun {
  const s = readJson<Omit<ReportRun, 'stepsPerSecond' | 'steps' | 'dir'>>(path.join(dir, 'summary.json'));
  if (!Array.isArray(s.history) || typeof s.final !== 'object') throw fail(`'${path.join(dir, 'summary.json')}' is not a run summary (no history or final metrics)`);
  const steps = s.history.reduce((a, h) => a + (h.steps ?? 0), 0);
  return {
    ...s,
    label: s.label ?? fallbackLabel,
    dir,
    stepsPerSecond: s.seconds > 0 ? steps / s.seconds : NaN,
    steps: readStepLosses(path.join(dir, 'log.jsonl')),
  };
}

/** Everything a report shows, read from a run folder. */
export interface ReportData {
  title: string;
  runs: ReportRun[];
  config: unknown;
  machine: unknown;
  seeds: SeedStats | null;
  landscapes: LandscapeResult[];
}

const safeLabel = (label: string) => label.replace(/[^A-Za-z0-9._-]+/g, '_');

/**
 * Reads a run folder: a `compare` folder (comparison.json and one sub-folder per method)
 * or one run's folder (summary.json). Its seeds.json, machine.json and landscape JSON
 * files are read when present.
 */
export function readReportData(runDir: string): ReportData {
  if (!fs.existsSync(runDir) || !fs.statSync(runDir).isDirectory()) throw fail(`'${runDir}' is not a directory`);
  let runs: ReportRun[];
  let config: unknown = null;
  const comparison = path.join(runDir, 'comparison.json');
  if (fs.existsSync(comparison)) {
    const list = readJson<{ label: string }[]>(comparison);
    if (!Array.isArray(list)) throw fail(`'${comparison}' is not a list of runs`);
    runs = list.map((r) => readRun(path.join(runDir, safeLabel(r.label)), r.label));
  } else if (fs.existsSync(path.join(runDir, 'summary.json'))) {
    runs = [readRun(runDir, path.basename(runDir))];
  } else {
    throw fail(`'${runDir}' has neither comparison.json (a compare folder) nor summary.json (a run folder)`);
  }
  const configFile = runs.map((r) => path.join(r.dir, 'config.json')).find((f) => fs.existsSync(f));
  if (configFile) {
    const { attack: _a, ...rest } = readJson<Record<string, unknown>>(configFile);
    config = rest;
  }
  const machineFile = path.join(runDir, 'machine.json');
  const seedsFile = path.join(runDir, 'seeds.json');
  const landscapes: LandscapeResult[] = [];
  const landscapeDir = path.join(runDir, 'landscape');
  if (fs.existsSync(landscapeDir)) {
    for (const f of fs.readdirSync(landscapeDir).filter((n) => n.endsWith('.json')).sort()) landscapes.push(readJson<LandscapeResult>(path.join(landscapeDir, f)));
  }
  return {
    title: path.basename(path.resolve(runDir)),
    runs,
    config,
    machine: fs.existsSync(machineFile) ? readJson(machineFile) : null,
    seeds: fs.existsSync(seedsFile) ? readJson<SeedStats>(seedsFile) : null,
    landscapes,
  };
}

/** Renders a Vega-Lite specification to SVG text with Vega's headless renderer (no canvas, no browser). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const WIDTH = 460;
/** Dash legends drawn as line samples (the default symbol is a dot, which hides the dash). */
const DASH_LEGEND = { symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 300, encode: { symbols: { update: { stroke: { value: '#555' } } } } } as const;
const HEIGHT = 240;
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The Vega-Lite specifications of the report's charts, by file name (without .svg). */
export function reportSpecs(data: ReportData): { name: string; title: string; spec: TopLevelSpec; series: string[] }[] {
  const labels = data.runs.map((r) => r.label);
  const color = { field: 'method', type: 'nominal', title: 'method', scale: { domain: labels }, legend: { labelLimit: 320 } } as const;
  const charts: { name: string; title: string; spec: TopLevelSpec; series: string[] }[] = [];
  const steps = data.runs.flatMap((r) => r.steps.filter((s) => finite(s.loss)).map((s) => ({ method: r.label, step: s.step, loss: s.loss })));
  if (steps.length > 0) {
    charts.push({
      name: 'train-loss-steps',
      title: 'Training loss per step (clean loss of each batch)',
      series: labels.filter((l) => steps.some((s) => s.method === l)),
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        width: WIDTH,
        height: HEIGHT,
        data: { values: steps },
        mark: { type: 'line', strokeWidth: 1, opacity: 0.85 },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'optimizer step' },
          y: { field: 'loss', type: 'quantitative', title: 'training loss' },
          color,
        },
      },
    });
  }
  const epochNumbers = [...new Set(data.runs.flatMap((r) => r.history.map((h) => h.epoch)))].sort((a, b) => a - b);
  // Whole epochs only: explicit ticks when they fit, else integer labels.
  const epochAxis = epochNumbers.length <= 16 ? { values: epochNumbers, format: 'd' } : { tickMinStep: 1, format: 'd' };
  const epochs = data.runs.flatMap((r) =>
    r.history.flatMap((h) => [
      ...(finite(h.trainLoss) ? [{ method: r.label, epoch: h.epoch, split: 'training', loss: h.trainLoss }] : []),
      ...(finite(h.validation?.loss) ? [{ method: r.label, epoch: h.epoch, split: 'validation', loss: h.validation.loss }] : []),
    ]),
  );
  if (epochs.length > 0) {
    charts.push({
      name: 'loss-epochs',
      title: 'Training and validation loss per epoch',
      series: labels,
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        width: WIDTH,
        height: HEIGHT,
        data: { values: epochs },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: epochAxis },
          y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
          color,
          strokeDash: { field: 'split', type: 'nominal', title: 'data', legend: DASH_LEGEND },
        },
      },
    });
  }
  const acc = data.runs.flatMap((r) =>
    r.history.flatMap((h) =>
      h.validation && finite(h.validation.accuracy)
        ? [
            { method: r.label, epoch: h.epoch, metric: 'accuracy', value: h.validation.accuracy },
            ...(finite(h.validation.macroF1) ? [{ method: r.label, epoch: h.epoch, metric: 'macro-F1', value: h.validation.macroF1 }] : []),
          ]
        : [],
    ),
  );
  if (acc.length > 0) {
    charts.push({
      name: 'val-accuracy-epochs',
      title: 'Validation accuracy and macro-F1 per epoch',
      series: labels,
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        width: WIDTH,
        height: HEIGHT,
        data: { values: acc },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: epochAxis },
          y: { field: 'value', type: 'quantitative', title: 'validation score', scale: { zero: false } },
          color,
          strokeDash: { field: 'metric', type: 'nominal', title: 'metric', legend: DASH_LEGEND },
        },
      },
    });
  }
  if (data.seeds) {
    const s = data.seeds;
    const points = s.methods.flatMap((m) => m.values.filter((v) => finite(v.value)).map((v) => ({ method: m.label, seed: String(v.seed), value: v.value })));
    const means = s.methods.filter((m) => finite(m.mean)).map((m) => ({ method: m.label, mean: m.mean, low: m.mean - m.sd, high: m.mean + m.sd }));
    const order = s.methods.map((m) => m.label);
    charts.push({
      name: 'seeds',
      title: `${s.metric} per seed (dots), mean ± standard deviation (bars)`,
      series: order,
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        width: WIDTH,
        height: Math.max(120, 36 * order.length),
        layer: [
          {
            data: { values: means },
            mark: { type: 'rule', strokeWidth: 2 },
            encoding: { y: { field: 'method', type: 'nominal', sort: order, title: null }, x: { field: 'low', type: 'quantitative', scale: { zero: false }, title: s.metric }, x2: { field: 'high' } },
          },
          {
            data: { values: means },
            mark: { type: 'tick', thickness: 2, size: 18 },
            encoding: { y: { field: 'method', type: 'nominal', sort: order }, x: { field: 'mean', type: 'quantitative' } },
          },
          {
            data: { values: points },
            mark: { type: 'point', filled: true, size: 60 },
            encoding: {
              y: { field: 'method', type: 'nominal', sort: order },
              x: { field: 'value', type: 'quantitative' },
              color: { field: 'method', type: 'nominal', scale: { domain: order }, title: 'method' },
              shape: { field: 'seed', type: 'nominal', title: 'seed' },
            },
          },
        ],
      },
    });
  }
  for (const l of data.landscapes) {
    const cells = l.alphas.flatMap((a, i) => l.betas.map((b, j) => ({ alpha: a, beta: b, loss: l.loss[i][j] }))).filter((c) => finite(c.loss));
    charts.push({
      name: `landscape-${safeLabel(l.label)}`,
      title: `Loss landscape of ${l.label} (filter-normalized directions, ${l.grid}×${l.grid} grid, range ±${l.range})`,
      series: [l.label],
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        width: 300,
        height: 300,
        data: { values: cells },
        mark: { type: 'rect' },
        encoding: {
          x: { field: 'alpha', type: 'quantitative', bin: { maxbins: l.grid, step: (2 * l.range) / Math.max(1, l.grid - 1) }, title: 'direction 1 (α)' },
          y: { field: 'beta', type: 'quantitative', bin: { maxbins: l.grid, step: (2 * l.range) / Math.max(1, l.grid - 1) }, title: 'direction 2 (β)' },
          color: { field: 'loss', type: 'quantitative', aggregate: 'mean', title: `loss: ${l.label}`, scale: { type: 'log', scheme: 'viridis' } },
        },
      },
    });
  }
  return charts;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
const pct = (v: number) => (finite(v) ? `${(100 * v).toFixed(2)}%` : 'n/a');
const num = (v: number, d: number) => (finite(v) ? v.toFixed(d) : 'n/a');

/** An HTML table; the first `text` columns are left-aligned text, the rest right-aligned numbers. */
function table(header: string[], rows: string[][], id: string, text = 1): string {
  return (
    `<table id="${id}"><thead><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c, k) => `<td${k >= text ? ' class="n"' : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

const STYLE = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}th,td{padding:4px 10px;border-bottom:1px solid #e4e4e4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:8px 16px 16px 0;vertical-align:top}figcaption{font-weight:600;margin-bottom:4px}
pre{background:#f6f6f6;padding:10px;overflow:auto;font-size:12px;max-height:420px}.note{color:#666}`;

/** The report's HTML (charts given as SVG text by name). */
export function reportHtml(data: ReportData, charts: { name: string; title: string; series: string[]; svg: string }[]): string {
  const chart = (c: (typeof charts)[number]) =>
    `<figure class="chart" id="chart-${escapeHtml(c.name)}" data-series="${escapeHtml(JSON.stringify(c.series))}"><figcaption>${escapeHtml(c.title)}</figcaption>${c.svg}</figure>`;
  const runRows = data.runs.map((r) => [
    r.label,
    r.method,
    pct(r.best?.value ?? r.final.accuracy),
    pct(r.final.accuracy),
    num(r.final.macroF1, 4),
    num(r.final.loss, 4),
    num(r.trainLoss, 4),
    String(r.epochs),
    num(r.secondsPerEpoch, 1),
    num(r.stepsPerSecond, 1),
  ]);
  const parts: string[] = [];
  parts.push(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">`);
  parts.push(`<title>dropattack report: ${escapeHtml(data.title)}</title><style>${STYLE}</style></head><body>`);
  parts.push(`<h1>dropattack report: ${escapeHtml(data.title)}</h1>`);
  parts.push('<h2>Comparison</h2>');
  const monitor = data.runs.find((r) => r.best)?.best?.monitor;
  parts.push(
    table(
      ['method', 'attack', `best ${monitor ?? 'val accuracy'}`, 'final val accuracy', 'macro-F1', 'val loss', 'train loss', 'epochs', 's/epoch', 'steps/s'],
      runRows,
      'comparison',
      2,
    ),
  );
  if (data.seeds) {
    const s = data.seeds;
    parts.push(`<h2>Seeds ${escapeHtml(s.seeds.join(', '))}</h2>`);
    parts.push(
      `<p class="note">${escapeHtml(s.metric)} of each method over ${s.seeds.length} seed(s) (the seed sets the data split, the initialization and the attack masks).` +
        (s.reference ? ` Paired difference: method minus ${escapeHtml(s.reference)} on the same seed, mean with a 95% Student-t interval.` : '') +
        '</p>',
    );
    parts.push(
      table(
        ['method', 'train fraction', 'mean', 'sd', 'per seed', s.reference ? `minus ${s.reference} (95% CI)` : 'paired difference'],
        s.methods.map((m) => [
          m.label,
          String(m.trainFraction),
          pct(m.mean),
          `${num(100 * m.sd, 2)} pt`,
          m.values.map((v) => `${v.seed}: ${pct(v.value)}`).join(', '),
          m.paired ? `${num(100 * m.paired.mean, 2)} pt [${num(100 * m.paired.low, 2)}, ${num(100 * m.paired.high, 2)}]` : '—',
        ]),
        'seeds',
      ),
    );
  }
  parts.push('<h2>Curves</h2>');
  parts.push(charts.filter((c) => !c.name.startsWith('landscape-') && c.name !== 'seeds').map(chart).join('\n'));
  if (charts.some((c) => c.name === 'seeds')) parts.push(chart(charts.find((c) => c.name === 'seeds')!));
  if (data.landscapes.length) {
    parts.push('<h2>Loss landscape</h2>');
    parts.push(
      `<p class="note">Loss on a grid around the trained parameters along two random directions, each filter normalized (Li et al., 2018): ` +
        data.landscapes.map((l) => `${escapeHtml(l.label)}: ${l.examples} examples, seed ${l.seed}, loss at the centre ${num(l.loss[(l.grid - 1) / 2]?.[(l.grid - 1) / 2] ?? NaN, 4)}`).join('; ') +
        '.</p>',
    );
    parts.push(charts.filter((c) => c.name.startsWith('landscape-')).map(chart).join('\n'));
  }
  parts.push('<h2>Configuration</h2>');
  parts.push(`<pre id="config">${escapeHtml(JSON.stringify(data.config, null, 2))}</pre>`);
  parts.push('<h2>Attack of each method</h2>');
  parts.push(
    table(
      ['method', 'attack settings'],
      data.runs.map((r) => {
        const f = path.join(r.dir, 'config.json');
        const a = fs.existsSync(f) ? (readJson<{ attack?: unknown }>(f).attack ?? null) : null;
        return [r.label, JSON.stringify(a)];
      }),
      'attacks',
      2,
    ),
  );
  parts.push('<h2>Machine</h2>');
  parts.push(`<pre id="machine">${escapeHtml(data.machine === null ? 'not recorded' : JSON.stringify(data.machine, null, 2))}</pre>`);
  parts.push('</body></html>\n');
  return parts.join('\n');
}

/**
 * Writes `RUN_DIR/report/index.html` (self-contained: styles inlined, charts as inline
 * SVG, no script) and each chart as `RUN_DIR/report/<chart>.svg`.
 */
export async function writeReport(runDir: string, outDir: string = path.join(runDir, 'report')): Promise<ReportFiles> {
  const data = readReportData(runDir);
  const charts = [];
  for (const c of reportSpecs(data)) charts.push({ ...c, svg: await renderSvg(c.spec) });
  fs.mkdirSync(outDir, { recursive: true });
  const svgs: string[] = [];
  for (const c of charts) {
    const file = path.join(outDir, `${c.name}.svg`);
    writeFileSynced('report', file, c.svg);
    svgs.push(file);
  }
  const html = path.join(outDir, 'index.html');
  writeFileSynced('report', html, reportHtml(data, charts));
  return { html, svgs };
}
