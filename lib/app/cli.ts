#!/usr/bin/env node
// The `dropattack` command: train, eval and compare from a JSON run configuration.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { ConfigError, readConfigFile } from './config';
import { writeFileSynced } from '../core/files';
import { distributedEnv, ProcessGroup } from '../core/distributed';
import { launchLocal } from './launch';
import {
  checkOutputDir,
  describeRun,
  evaluateFromConfig,
  makeTrainer,
  parseRunConfig,
  prepareData,
  PreparedData,
  runDirectory,
  runFromConfig,
  RunConfig,
  RunSummary,
} from './run';
import { AttackConfig, AttackGroup, attackMethodInfo } from '../core/trainer';
import { backends } from '../core/backends';
import { mean, pairedDifference, sd } from './stats';
import { writeHParamsExperiment, writeHParamsSession } from '../logging/tensorboard';

const USAGE = `usage:
  dropattack train   --config run.json [--resume] [--dry-run] [--nproc N] [--set key=value ...]
  dropattack eval    --config run.json --checkpoint DIR_OR_MODEL.pt [--data FILE] [--vocab FILE] [--labels FILE] [--set key=value ...]
  dropattack compare --config run.json [--methods none,dropattack,fgm,pgd,freelb,awp,sam] [--seeds 1,2,3] [--train-fraction 0.5] [--dry-run] [--set key=value ...]
  dropattack landscape --checkpoint DIR [--grid 51] [--range 1] [--seed 0] [--examples 1000] [--data FILE] [--config run.json]
                     (loss on a grid along two filter-normalized random directions; in the report)
  dropattack report  RUN_DIR   (HTML report with SVG charts of a compare or train folder: RUN_DIR/report/index.html)
  dropattack serve   --data-root DIR --runs-root DIR [--port 8090] [--token T]   (HTTP batch jobs, docs/serve.md)

--set overrides a field of the configuration: --set training.epochs=3 --set attack.groups[0].epsilon=2
--device cpu|cuda|cuda:N (train, eval, compare) is --set training.device=...: where the model trains.
--resume continues the run from output.dir/name/<method>/checkpoints/last.
--nproc N trains on N local processes (data-parallel; data.batchSize per process). Under
  torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) train joins that job.
  See README, "Several machines".
--seeds runs each method once per seed and reports mean, spread and the paired difference to plain training (95% CI).
--train-fraction F trains every method on F of the training split, and plain training on all of it too.
--dry-run validates the configuration and prints the effective settings, writing nothing.
--debug (or DROPATTACK_DEBUG=1) prints the stack of an unexpected error.
Exit status: 0 success, 1 runtime error (data, training, files), 2 usage or configuration error.
See docs/cli.md for the configuration.`;

const HINT = "run 'dropattack --help' for usage";

interface Args {
  command: string;
  config?: string;
  checkpoint?: string;
  methods?: string[];
  data?: string;
  vocab?: string;
  labels?: string;
  resume: boolean;
  dryRun: boolean;
  set: string[];
  nproc?: number;
  seeds?: number[];
  trainFraction?: number;
}

/** Flags each command takes (besides --config, --set, --debug). */
const COMMAND_FLAGS: Record<string, string[]> = {
  train: ['--resume', '--dry-run', '--device', '--nproc'],
  eval: ['--checkpoint', '--data', '--vocab', '--labels', '--device'],
  compare: ['--methods', '--dry-run', '--device', '--seeds', '--train-fraction'],
};

function parseArgs(argv: string[]): Args {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h') {
    console.log(USAGE);
    return { command: 'help', resume: false, dryRun: false, set: [] };
  }
  if (!Object.hasOwn(COMMAND_FLAGS, command)) throw new ConfigError('command', `unknown command '${command}' (${HINT})`);
  const args: Args = { command, resume: false, dryRun: false, set: [] };
  for (let k = 0; k < rest.length; k++) {
    const [flag, inline] = rest[k].split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? rest[++k];
      if (v === undefined) throw new ConfigError(flag, 'needs a value');
      return v;
    };
    const bare = () => {
      if (inline !== undefined) throw new ConfigError(flag, 'takes no value');
      return true;
    };
    if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      return { command: 'help', resume: false, dryRun: false, set: [] };
    }
    if (!['--config', '--set', '--debug'].includes(flag) && !COMMAND_FLAGS[command].includes(flag)) {
      const other = Object.keys(COMMAND_FLAGS).filter((c) => COMMAND_FLAGS[c].includes(flag));
      throw new ConfigError(flag, other.length ? `is an option of ${other.join(' and ')}, not of ${command}` : `unknown option (${HINT})`);
    }
    if (flag === '--config') args.config = value();
    else if (flag === '--checkpoint') args.checkpoint = value();
    else if (flag === '--data') args.data = value();
    else if (flag === '--vocab') args.vocab = value();
    else if (flag === '--labels') args.labels = value();
    else if (flag === '--resume') args.resume = bare();
    else if (flag === '--dry-run') args.dryRun = bare();
    else if (flag === '--debug') bare();
    else if (flag === '--methods') args.methods = value().split(',').map((m) => m.trim()).filter(Boolean);
    else if (flag === '--set') args.set.push(value());
    else if (flag === '--seeds') args.seeds = parseSeeds(value());
    else if (flag === '--train-fraction') {
      const v = value();
      const f = Number(v);
      if (v.trim() === '' || !(f > 0 && f <= 1)) throw new ConfigError('--train-fraction', `expected a fraction in (0, 1], got '${v}'`);
      args.trainFraction = f;
    }
    else if (flag === '--device') args.set.push(`training.device=${value()}`);
    else if (flag === '--nproc') {
      const v = value();
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1024) throw new ConfigError('--nproc', `must be an integer in [1, 1024], got '${v}'`);
      args.nproc = Number(v);
    }
  }
  if (!args.config) throw new ConfigError('--config', `is required (${HINT})`);
  if (command === 'eval' && !args.checkpoint) throw new ConfigError('--checkpoint', 'is required for eval');
  return args;
}

function parseSeeds(v: string): number[] {
  const seeds = v.split(',').map((x) => x.trim());
  for (const x of seeds) {
    if (!/^\d{1,9}$/.test(x)) throw new ConfigError('--seeds', `expected a list of integers >= 0 such as 1,2,3, got '${v}'`);
  }
  const n = seeds.map(Number);
  const repeated = n.find((x, k) => n.indexOf(x) !== k);
  if (repeated !== undefined) throw new ConfigError('--seeds', `seed ${repeated} is listed twice`);
  return n;
}

/**
 * The attacks `compare` runs. Each method takes the configuration's attack groups (targets
 * and radii) so the methods are compared on the same layers; config.compare.methods
 * replaces the list.
 */
export function comparisonAttacks(config: RunConfig, methods?: string[]): { label: string; attack: AttackConfig }[] {
  if (config.compare?.methods && !methods) {
    return config.compare.methods.map(({ label, ...attack }) => ({ label, attack }));
  }
  const base = config.attack as unknown as AttackConfig;
  const groups: AttackGroup[] = (base.groups ?? []).map((g) => ({ ...g }));
  const k = base.k ?? 1;
  const seed = base.seed ?? 0;
  // Each method's groups keep the settings it reads (the engine's groupFields: FGM, PGD
  // and FreeLB have no p).
  const read = (m: string): AttackGroup[] => {
    const fields = attackMethodInfo(m)?.groupFields ?? [];
    return groups.map((g) => Object.fromEntries(Object.entries(g).filter(([key]) => fields.includes(key))) as AttackGroup);
  };
  const alpha = 0.5 * Math.min(...groups.map((g) => g.epsilon ?? 0));
  const all: Record<string, () => AttackConfig> = {
    none: () => ({ method: 'none' }),
    dropattack: () => ({ method: 'dropattack', k, seed, groups }),
    fgm: () => ({ method: 'fgm', seed, groups: read('fgm') }),
    pgd: () => ({ method: 'pgd', k: 3, alpha, seed, groups: read('pgd') }),
    freelb: () => ({ method: 'freelb', k: 3, alpha, seed, groups: read('freelb') }),
    awp: () => ({ method: 'awp', seed, groups: groups.map((g) => ({ targets: g.targets, epsilon: 0.01 })) }),
    sam: () => ({ method: 'sam', rho: 0.05, seed }),
    asam: () => ({ method: 'asam', rho: 0.5, seed }),
  };
  const names = methods ?? ['none', 'dropattack'];
  if (names.length === 0) throw new ConfigError('--methods', 'lists no method');
  const repeated = names.find((m, k) => names.indexOf(m) !== k);
  if (repeated !== undefined) throw new ConfigError('--methods', `'${repeated}' is listed twice`);
  return names.map((m) => {
    if (!Object.hasOwn(all, m)) throw new ConfigError('--methods', `unknown method '${m}' (known: ${Object.keys(all).join(', ')})`);
    if (attackMethodInfo(m)?.needsGroups && groups.length === 0) {
      throw new ConfigError('config.attack.groups', `comparing '${m}' needs the attack groups (targets and epsilon) in the configuration`);
    }
    return { label: m === 'none' ? 'plain' : m === 'dropattack' ? `DropAttack-${k}` : m.toUpperCase(), attack: all[m]() };
  });
}

export function formatTable(runs: RunSummary[]): string {
  const rows = runs.map((r) => [
    r.label,
    `${(100 * (r.best?.value ?? r.final.accuracy)).toFixed(2)}%`,
    `${(100 * r.final.accuracy).toFixed(2)}%`,
    r.final.macroF1.toFixed(4),
    r.final.loss.toFixed(4),
    r.secondsPerEpoch.toFixed(1),
  ]);
  const header = ['method', 'best val acc', 'final val acc', 'macro-F1', 'val loss', 's/epoch'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'serve') return (await import('./serve')).serveMain(argv.slice(1));
  if (argv[0] === 'report') return reportMain(argv.slice(1));
  if (argv[0] === 'landscape') return landscapeMain(argv.slice(1));
  const args = parseArgs(argv);
  if (args.command === 'help') return 0;
  const config = parseRunConfig(readConfigFile(args.config as string), args.set);
  if (args.command === 'eval') {
    const m = await evaluateFromConfig(config, args.checkpoint as string, {
      ...(args.data !== undefined ? { data: args.data } : {}),
      ...(args.vocab !== undefined ? { vocab: args.vocab } : {}),
      ...(args.labels !== undefined ? { labels: args.labels } : {}),
    });
    console.log(`accuracy ${(100 * m.accuracy).toFixed(2)}%  macro-F1 ${m.macroF1.toFixed(4)}  loss ${m.loss.toFixed(4)}  (${m.examples} examples)`);
    return 0;
  }
  const plan = args.command === 'compare' ? comparisonPlan(config, args.methods, args.seeds, args.trainFraction) : [];
  for (const { label } of plan) runDirectory(config, label);
  checkOutputDir(path.join(config.output.dir, config.name));
  const job = args.command === 'train' ? distributedEnv() : null;
  if (args.command === 'compare' && (distributedEnv()?.worldSize ?? 1) > 1) {
    throw new ConfigError('compare', 'runs in one process; WORLD_SIZE is set (distributed training is for train)');
  }
  if (job !== null && args.nproc !== undefined) {
    throw new ConfigError('--nproc', `starts local workers; this process is already rank ${job.rank} of a job of ${job.worldSize} (WORLD_SIZE is set): leave --nproc out`);
  }
  if ((job?.rank ?? 0) === 0) console.log(describeRun(config));
  if (args.seeds && (job?.rank ?? 0) === 0) console.log(`seeds ${args.seeds.join(', ')}: each sets data.seed, training.seed and the attack's seed`);
  if (args.trainFraction !== undefined && (job?.rank ?? 0) === 0) console.log(`train fraction ${args.trainFraction}: every method on that share of the training split, plain training also on all of it`);
  if (args.dryRun) {
    console.log('dry run: the configuration is valid; nothing was written');
    return 0;
  }
  if (args.command === 'train' && args.nproc !== undefined && args.nproc > 1) {
    // The same command in each worker, which sees the job in its environment.
    const script = process.argv[1];
    const rest: string[] = [];
    for (let k = 0; k < argv.length; k++) {
      if (argv[k] === '--nproc') k++;
      else if (!argv[k].startsWith('--nproc=')) rest.push(argv[k]);
    }
    // One share of the cores each, unless the environment says otherwise.
    const threads = config.training.threads ?? Math.max(1, Math.floor(os.cpus().length / args.nproc));
    console.log(`launching ${args.nproc} local worker processes (${threads} thread(s) each)`);
    const r = await launchLocal(args.nproc, [script, ...rest], {
      env: process.env.OMP_NUM_THREADS ? {} : { OMP_NUM_THREADS: String(threads) },
    });
    if (r.failed !== null) {
      const how = r.failed.signal !== null ? `was killed by ${r.failed.signal}` : `exited with status ${r.failed.code}`;
      throw new Error(`train: worker rank ${r.failed.rank} of ${args.nproc} ${how}; the other workers were stopped`);
    }
    return 0;
  }
  if (args.command === 'train') {
    const group = job !== null && job.worldSize > 1 ? await ProcessGroup.init({ timeoutMs: config.training.distributed.timeoutMs }) : undefined;
    try {
      const r = await runFromConfig(config, { resume: args.resume, ...(group ? { group } : {}) });
      if ((group?.rank ?? 0) === 0) {
        console.log(formatTable([r]));
        console.log(`logs, checkpoints and TensorBoard events: ${path.resolve(r.dir)}`);
      }
    } finally {
      group?.close();
    }
    return 0;
  }
  // One prepared data set per (seed, fraction), made when its first run comes.
  const prepared = new Map<string, PreparedData>();
  const dataFor = async (p: PlannedRun): Promise<PreparedData> => {
    const key = `${p.config.data.seed}/${p.fraction}`;
    let data = prepared.get(key);
    if (!data) {
      for (const k of [...prepared.keys()]) if (!k.startsWith(`${p.config.data.seed}/`)) prepared.delete(k);
      data = await prepareData(p.config, p.fraction < 1 ? { trainFraction: p.fraction } : {});
      prepared.set(key, data);
      console.log(
        `${config.name}${p.seed !== undefined ? ` seed ${p.seed}` : ''}${p.fraction < 1 ? ` train fraction ${p.fraction}` : ''}: ` +
          `${data.trainExamples} training and ${data.validationExamples} validation examples, ${data.numClasses} classes` +
          (data.vocab ? `, vocabulary ${data.vocab.size}` : ''),
      );
    }
    return data;
  };
  // Every method's model and trainer are built once before the first run writes anything.
  for (const p of plan.filter((x) => x.seed === plan[0].seed)) await makeTrainer(p.config, await dataFor(p), p.attack, `compare '${p.label}'`);
  const runs: RunSummary[] = [];
  for (const p of plan) {
    console.log(`\n== ${p.label}`);
    const startTime = Date.now() / 1000;
    const r = await runFromConfig(p.config, { attack: p.attack, label: p.label, data: await dataFor(p) });
    runs.push(r);
    if (config.output.tensorboard) {
      // TensorBoard's HParams tab: each method's run is a session with its settings.
      await writeHParamsSession(path.join(r.dir, 'tensorboard'), {
        hparams: comparisonHParams(p),
        startTime,
        endTime: Date.now() / 1000,
        modelUri: path.resolve(r.dir, 'checkpoints'),
        ...(p.seed !== undefined ? { groupName: p.method } : {}),
      });
    }
  }
  prepared.clear();
  const table = formatTable(runs);
  console.log(`\n${table}`);
  const dir = path.resolve(config.output.dir, config.name);
  if (config.output.tensorboard) {
    const sessions = plan.map(comparisonHParams);
    await writeHParamsExperiment(dir, {
      hparams: Object.keys(sessions[0]).map((name) => ({ name, values: [...new Set(sessions.map((h) => h[name]))] })),
      metrics: [
        { tag: 'val/accuracy', dataset: 'validation' },
        { tag: 'val/macroF1', dataset: 'validation' },
        { tag: 'val/loss', dataset: 'validation' },
        { tag: 'train/loss', dataset: 'training' },
      ],
    });
  }
  writeFileSynced('compare', path.join(dir, 'comparison.txt'), table + '\n');
  writeFileSynced('compare', path.join(dir, 'comparison.json'), JSON.stringify(runs.map(({ history: _h, ...r }) => r), null, 2));
  writeFileSynced('compare', path.join(dir, 'machine.json'), JSON.stringify(machineInfo(), null, 2));
  if (args.seeds || args.trainFraction !== undefined) {
    const stats = seedStats(plan, runs, config.training.monitor);
    writeFileSynced('compare', path.join(dir, 'seeds.json'), JSON.stringify(stats, null, 2));
    console.log(`\n${formatSeedStats(stats)}`);
  }
  console.log(`\nlogs, checkpoints and TensorBoard events: ${dir} (tensorboard --logdir ${dir})`);
  const report = await (await import('./report')).writeReport(dir);
  console.log(`report: ${report.html}`);
  return 0;
}

/** One run of a comparison: a method, on a seed and a share of the training data. */
export interface PlannedRun {
  /** Directory and table name: the method's label, then -<percent>pct and -seed<N> where they apply. */
  label: string;
  /** The method's label with its data share (the same across seeds). */
  method: string;
  attack: AttackConfig;
  config: RunConfig;
  seed?: number;
  fraction: number;
  /** Plain training on all the training data: the reference of the paired differences. */
  reference: boolean;
}

/** The configuration with every seed set to `seed`: the data split and order, the initialization, the attack masks. */
function withSeed(config: RunConfig, seed: number): RunConfig {
  const c = structuredClone(config);
  c.data.seed = seed;
  c.training.seed = seed;
  if (typeof (c.attack as { seed?: unknown }).seed === 'number') (c.attack as { seed?: number }).seed = seed;
  return c;
}

/**
 * The runs of `compare`: each method of {@link comparisonAttacks}, per seed of `seeds`
 * (none: the configuration's seeds), on `trainFraction` of the training split; with a
 * fraction under 1, plain training also runs on all of it, as the reference.
 */
export function comparisonPlan(config: RunConfig, methods?: string[], seeds?: number[], trainFraction?: number): PlannedRun[] {
  const fraction = trainFraction ?? 1;
  const share = fraction < 1 ? `-${+(100 * fraction).toFixed(2)}pct` : '';
  const plan: PlannedRun[] = [];
  for (const seed of seeds ?? [undefined]) {
    const c = seed === undefined ? config : withSeed(config, seed);
    const suffix = seed === undefined ? '' : `-seed${seed}`;
    const attacks = comparisonAttacks(c, methods);
    if (fraction < 1) {
      const plain = attacks.find((a) => a.attack.method === 'none');
      const attack: AttackConfig = plain?.attack ?? { method: 'none' };
      plan.push({ label: `plain${suffix}`, method: 'plain', attack, config: c, ...(seed !== undefined ? { seed } : {}), fraction: 1, reference: true });
    }
    for (const { label, attack } of attacks) {
      plan.push({
        label: `${label}${share}${suffix}`,
        method: `${label}${share}`,
        attack,
        config: c,
        ...(seed !== undefined ? { seed } : {}),
        fraction,
        reference: fraction === 1 && attack.method === 'none',
      });
    }
  }
  return plan;
}

/** Per-method statistics over the seeds (the monitored metric's best value), with paired differences to plain training. */
export function seedStats(plan: PlannedRun[], runs: RunSummary[], monitor: string): import('./report').SeedStats {
  const score = (r: RunSummary) => r.best?.value ?? r.final.accuracy;
  const methods = [...new Set(plan.map((p) => p.method))];
  const seeds = [...new Set(plan.map((p) => p.seed ?? plan[0].config.training.seed))];
  const ref = plan.find((p) => p.reference)?.method ?? null;
  const valuesOf = (method: string) => plan.flatMap((p, k) => (p.method === method ? [{ seed: p.seed ?? p.config.training.seed, value: score(runs[k]) }] : []));
  const refValues = ref === null ? null : valuesOf(ref);
  return {
    seeds,
    trainFraction: plan.find((p) => !p.reference)?.fraction ?? 1,
    metric: `best ${monitor}`,
    reference: ref,
    methods: methods.map((method) => {
      const values = valuesOf(method);
      const xs = values.map((v) => v.value);
      return {
        label: method,
        trainFraction: plan.find((p) => p.method === method)!.fraction,
        values,
        mean: mean(xs),
        sd: sd(xs),
        paired: refValues && method !== ref ? pairedDifference(xs, refValues.map((v) => v.value)) : null,
      };
    }),
  };
}

/** The seed statistics as a text table. */
export function formatSeedStats(s: import('./report').SeedStats): string {
  const f = (v: number) => (Number.isFinite(v) ? (100 * v).toFixed(2) : 'n/a');
  const rows = s.methods.map((m) => [
    m.label,
    String(m.trainFraction),
    `${f(m.mean)}%`,
    f(m.sd),
    m.paired ? `${m.paired.mean >= 0 ? '+' : ''}${f(m.paired.mean)} [${f(m.paired.low)}, ${f(m.paired.high)}]` : '-',
  ]);
  const header = ['method', 'train share', `mean ${s.metric}`, 'sd (pt)', s.reference ? `minus ${s.reference}, 95% CI (pt)` : 'paired difference'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join('  ');
  return [`seeds ${s.seeds.join(', ')}`, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The hyperparameters TensorBoard's HParams tab shows for one run of a comparison. */
export function comparisonHParams(p: PlannedRun): Record<string, string | number> {
  const groups = (p.attack as { groups?: AttackGroup[] }).groups ?? [];
  return {
    method: p.method,
    attack: p.attack.method ?? 'none',
    epsilon: groups.map((g) => g.epsilon).join(',') || '-',
    seed: p.config.training.seed,
    train_fraction: p.fraction,
    epochs: p.config.training.epochs,
  };
}

/** The machine a comparison ran on: the addon's backends and the host, for the report. */
export function machineInfo(): Record<string, unknown> {
  return {
    ...backends(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  };
}

/** `dropattack landscape --checkpoint DIR ...`: the loss landscape, then the report again. */
async function landscapeMain(argv: string[]): Promise<number> {
  const o: { checkpoint?: string; config?: string; data?: string; set: string[]; grid?: number; range?: number; seed?: number; examples?: number } = { set: [] };
  const num = (flag: string, v: string | undefined): number => {
    if (v === undefined) throw new ConfigError(flag, 'needs a value');
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new ConfigError(flag, `expected a number, got '${v}'`);
    return n;
  };
  for (let k = 0; k < argv.length; k++) {
    const [flag, inline] = argv[k].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++k];
    if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      return 0;
    } else if (flag === '--checkpoint') o.checkpoint = value();
    else if (flag === '--config') o.config = value();
    else if (flag === '--data') o.data = value();
    else if (flag === '--set') o.set.push(value());
    else if (flag === '--grid') o.grid = num(flag, value());
    else if (flag === '--range') o.range = num(flag, value());
    else if (flag === '--seed') o.seed = num(flag, value());
    else if (flag === '--examples') o.examples = num(flag, value());
    else if (flag === '--device') o.set.push(`training.device=${value()}`);
    else if (flag !== '--debug') throw new ConfigError(flag, `unknown option of landscape (${HINT})`);
  }
  if (o.checkpoint === undefined) throw new ConfigError('--checkpoint', 'is required for landscape');
  const { landscapeCommand } = await import('./landscape');
  const { json, result } = await landscapeCommand({ ...o, checkpoint: o.checkpoint });
  const centre = result.loss[(result.grid - 1) / 2][(result.grid - 1) / 2];
  console.log(`landscape of ${result.label}: loss ${centre.toFixed(4)} at the centre, ${Math.min(...result.loss.flat()).toFixed(4)} to ${Math.max(...result.loss.flat()).toFixed(4)} on the grid; ${json}`);
  const compareFolder = path.dirname(path.dirname(json));
  if (fs.existsSync(path.join(compareFolder, 'comparison.json'))) {
    const r = await (await import('./report')).writeReport(compareFolder);
    console.log(`report: ${r.html}`);
  }
  return 0;
}

/** `dropattack report RUN_DIR`: writes RUN_DIR/report/index.html and its SVG charts. */
async function reportMain(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const dirs = argv.filter((a) => a !== '--debug');
  const flag = dirs.find((a) => a.startsWith('-'));
  if (flag !== undefined) throw new ConfigError(flag, `unknown option of report (${HINT})`);
  if (dirs.length !== 1) throw new ConfigError('report', `expects one RUN_DIR, got ${dirs.length} (${HINT})`);
  const r = await (await import('./report')).writeReport(dirs[0]);
  console.log(`report: ${r.html} (${r.svgs.length} SVG charts beside it)`);
  return 0;
}

/**
 * Makes a message safe for one terminal line: control characters, line breaks, invalid
 * UTF-8 (U+FFFD), lone surrogates and invisible or bidirectional format characters are
 * written as escapes; a very long message is shortened.
 */
export function escapeForTerminal(message: string, max = 1000): string {
  let out = '';
  for (const ch of message) {
    const c = ch.codePointAt(0) as number;
    if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c === 0xfffd || (c >= 0xd800 && c <= 0xdfff) || (c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) || (c >= 0x2060 && c <= 0x2069) || c === 0xfeff) {
      out += `\\u${c.toString(16).padStart(4, '0')}`;
    } else out += ch;
    if (out.length > max) return out.slice(0, max) + '... (shortened)';
  }
  return out;
}

/** Exit status of a failed command: 2 for usage and configuration errors, 1 for the rest. */
export function exitCodeOf(e: unknown): number {
  return e instanceof ConfigError || (e as Error | null)?.name === 'ConfigError' ? 2 : 1;
}

/** Errors that mean a bug rather than bad input (by name: native errors come from another realm under jest). */
const INTERNAL = new Set(['ReferenceError', 'SyntaxError', 'EvalError', 'URIError', 'AggregateError']);

/** The one line (or, with debug, the stack) that reports an error to the user. */
export function formatError(e: unknown, debug = false): string {
  const err = typeof e === 'object' && e !== null && typeof (e as Error).message === 'string' ? (e as Error) : null;
  if (debug && err?.stack) return `dropattack: ${err.stack}`;
  if (err === null) return `dropattack: internal error: ${escapeForTerminal(String(e))} (rerun with --debug for details)`;
  const line = escapeForTerminal(err.message || String(err.name));
  return INTERNAL.has(err.name) ? `dropattack: internal error: ${err.name}: ${line} (rerun with --debug for the stack)` : `dropattack: ${line}`;
}

/**
 * Runs the command and reports any error as one line on `stderr`; returns the exit status
 * (0, 1 runtime error, 2 usage or configuration error). The stack of an error is shown
 * only with `--debug` or DROPATTACK_DEBUG=1.
 */
export async function runCli(
  argv: string[],
  stderr: { write(s: string): unknown } = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const debug = argv.includes('--debug') || env.DROPATTACK_DEBUG === '1';
  try {
    return await main(argv);
  } catch (e) {
    stderr.write(formatError(e, debug) + '\n');
    return exitCodeOf(e);
  }
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const debug = argv.includes('--debug') || process.env.DROPATTACK_DEBUG === '1';
  const fail = (e: unknown) => {
    process.stderr.write(formatError(e, debug) + '\n');
    process.exit(exitCodeOf(e));
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  runCli(argv).then((code) => process.exit(code), fail);
}
