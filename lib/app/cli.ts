#!/usr/bin/env node
// The `dropattack` command: train, eval and compare from a JSON run configuration.
import * as os from 'os';
import * as path from 'path';

import { ConfigError, readConfigFile } from './config';
import { writeFileSynced } from '../core/files';
import {
  checkOutputDir,
  describeRun,
  evaluateFromConfig,
  makeTrainer,
  parseRunConfig,
  prepareData,
  runDirectory,
  runFromConfig,
  RunConfig,
  RunSummary,
} from './run';
import { AttackConfig, AttackGroup, attackMethodInfo } from '../core/trainer';
import { backends } from '../core/backends';
import { writeHParamsExperiment, writeHParamsSession } from '../logging/tensorboard';

const USAGE = `usage:
  dropattack train   --config run.json [--resume] [--dry-run] [--set key=value ...]
  dropattack eval    --config run.json --checkpoint DIR_OR_MODEL.pt [--data FILE] [--vocab FILE] [--labels FILE] [--set key=value ...]
  dropattack compare --config run.json [--methods none,dropattack,fgm,pgd,freelb,awp,sam] [--dry-run] [--set key=value ...]
  dropattack report  RUN_DIR   (HTML report with SVG charts of a compare or train folder: RUN_DIR/report/index.html)
  dropattack serve   --data-root DIR --runs-root DIR [--port 8090] [--token T]   (HTTP batch jobs, docs/serve.md)

--set overrides a field of the configuration: --set training.epochs=3 --set attack.groups[0].epsilon=2
--device cpu|cuda|cuda:N (train, eval, compare) is --set training.device=...: where the model trains.
--resume continues the run from output.dir/name/<method>/checkpoints/last.
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
}

/** Flags each command takes (besides --config, --set, --debug). */
const COMMAND_FLAGS: Record<string, string[]> = {
  train: ['--resume', '--dry-run', '--device'],
  eval: ['--checkpoint', '--data', '--vocab', '--labels', '--device'],
  compare: ['--methods', '--dry-run', '--device'],
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
    else if (flag === '--device') args.set.push(`training.device=${value()}`);
  }
  if (!args.config) throw new ConfigError('--config', `is required (${HINT})`);
  if (command === 'eval' && !args.checkpoint) throw new ConfigError('--checkpoint', 'is required for eval');
  return args;
}

/**
 * The attacks `compare` runs. Each method takes the configuration's attack groups (targets
 * and radii) so the methods are compared on the same layers; config.compare.methods
 * replaces the list.
 */
export function comparisonAttacks(config: RunConfig, methods?: string[]): { label: string; attack: AttackConfig }[] {
  if (config.compare?.methods && !methods) {
    return config.compare.methods.map(({ label, ...attack }) => ({ label, attack: attack as unknown as AttackConfig }));
  }
  const base = config.attack as unknown as AttackConfig;
  const groups: AttackGroup[] = (base.groups ?? []).map((g) => ({ ...g }));
  const k = base.k ?? 1;
  const seed = base.seed ?? 0;
  const all: Record<string, () => AttackConfig> = {
    none: () => ({ method: 'none' }),
    dropattack: () => ({ method: 'dropattack', k, seed, groups }),
    fgm: () => ({ method: 'fgm', seed, groups: groups.map(({ p: _p, ...g }) => g) }),
    pgd: () => ({ method: 'pgd', k: 3, alpha: 0.5 * Math.min(...groups.map((g) => g.epsilon)), seed, groups: groups.map(({ p: _p, ...g }) => g) }),
    freelb: () => ({ method: 'freelb', k: 3, alpha: 0.5 * Math.min(...groups.map((g) => g.epsilon)), seed, groups: groups.map(({ p: _p, ...g }) => g) }),
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
  const attacks = args.command === 'compare' ? comparisonAttacks(config, args.methods) : [];
  for (const { label } of attacks) runDirectory(config, label);
  checkOutputDir(path.join(config.output.dir, config.name));
  console.log(describeRun(config));
  if (args.dryRun) {
    console.log('dry run: the configuration is valid; nothing was written');
    return 0;
  }
  if (args.command === 'train') {
    const r = await runFromConfig(config, { resume: args.resume });
    console.log(formatTable([r]));
    console.log(`logs, checkpoints and TensorBoard events: ${path.resolve(r.dir)}`);
    return 0;
  }
  const data = await prepareData(config);
  console.log(
    `${config.name}: ${data.trainExamples} training and ${data.validationExamples} validation examples, ${data.numClasses} classes` +
      (data.vocab ? `, vocabulary ${data.vocab.size}` : ''),
  );
  // Every method's model and trainer are built once before the first run writes anything.
  for (const { label, attack } of attacks) await makeTrainer(config, data, attack, `compare '${label}'`);
  const runs: RunSummary[] = [];
  for (const { label, attack } of attacks) {
    console.log(`\n== ${label}`);
    const startTime = Date.now() / 1000;
    const r = await runFromConfig(config, { attack, label, data });
    runs.push(r);
    if (config.output.tensorboard) {
      // TensorBoard's HParams tab: each method's run is a session with its settings.
      await writeHParamsSession(path.join(r.dir, 'tensorboard'), {
        hparams: comparisonHParams(config, label, attack),
        startTime,
        endTime: Date.now() / 1000,
        modelUri: path.resolve(r.dir, 'checkpoints'),
      });
    }
  }
  const table = formatTable(runs);
  console.log(`\n${table}`);
  const dir = path.resolve(config.output.dir, config.name);
  if (config.output.tensorboard) {
    const sessions = attacks.map(({ label, attack }) => comparisonHParams(config, label, attack));
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
  console.log(`\nlogs, checkpoints and TensorBoard events: ${dir} (tensorboard --logdir ${dir})`);
  const report = await (await import('./report')).writeReport(dir);
  console.log(`report: ${report.html}`);
  return 0;
}

/** The hyperparameters TensorBoard's HParams tab shows for one method of a comparison. */
export function comparisonHParams(config: RunConfig, label: string, attack: AttackConfig): Record<string, string | number> {
  const groups = (attack as { groups?: AttackGroup[] }).groups ?? [];
  return {
    method: label,
    attack: attack.method,
    epsilon: groups.map((g) => g.epsilon).join(',') || '-',
    seed: config.training.seed,
    epochs: config.training.epochs,
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
