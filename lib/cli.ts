#!/usr/bin/env node
// The `dropattack` command: train, eval and compare from a JSON run configuration.
import * as fs from 'fs';
import * as path from 'path';

import { ConfigError, readConfigFile } from './config';
import { writeFileSynced } from './files';
import { parseRunConfig, prepareData, runFromConfig, evaluateFromConfig, RunConfig, RunSummary } from './run';
import { AttackConfig, AttackGroup } from './trainer';
import { TorchError } from './errors';

const USAGE = `usage:
  dropattack train   --config run.json [--set key=value ...]
  dropattack eval    --config run.json --checkpoint DIR_OR_MODEL.pt [--set key=value ...]
  dropattack compare --config run.json [--methods none,dropattack,fgm,pgd,freelb,awp,sam] [--set key=value ...]
  dropattack serve   --data-root DIR --runs-root DIR [--port 8090] [--token T]   (HTTP batch jobs, docs/serve.md)

--set overrides a field of the configuration: --set training.epochs=3 --set attack.groups[0].epsilon=2
See docs/cli.md for the configuration.`;

interface Args {
  command: string;
  config?: string;
  checkpoint?: string;
  methods?: string[];
  set: string[];
}

function parseArgs(argv: string[]): Args {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h') {
    console.log(USAGE);
    process.exit(0);
  }
  if (!['train', 'eval', 'compare'].includes(command)) throw new ConfigError('command', `unknown command '${command}'\n${USAGE}`);
  const args: Args = { command, set: [] };
  for (let k = 0; k < rest.length; k++) {
    const [flag, inline] = rest[k].split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? rest[++k];
      if (v === undefined) throw new ConfigError(flag, 'needs a value');
      return v;
    };
    if (flag === '--config') args.config = value();
    else if (flag === '--checkpoint') args.checkpoint = value();
    else if (flag === '--methods') args.methods = value().split(',').map((m) => m.trim()).filter(Boolean);
    else if (flag === '--set') args.set.push(rest[k].startsWith('--set=') ? (inline as string) : value());
    else throw new ConfigError(flag, `unknown option\n${USAGE}`);
  }
  if (!args.config) throw new ConfigError('--config', 'is required');
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
  return names.map((m) => {
    if (!(m in all)) throw new ConfigError('--methods', `unknown method '${m}' (known: ${Object.keys(all).join(', ')})`);
    if (m !== 'none' && m !== 'sam' && m !== 'asam' && groups.length === 0) {
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
  const args = parseArgs(argv);
  const config = parseRunConfig(readConfigFile(args.config as string), args.set);
  if (args.command === 'eval') {
    if (!args.checkpoint) throw new ConfigError('--checkpoint', 'is required for eval');
    const m = await evaluateFromConfig(config, args.checkpoint);
    console.log(`accuracy ${(100 * m.accuracy).toFixed(2)}%  macro-F1 ${m.macroF1.toFixed(4)}  loss ${m.loss.toFixed(4)}  (${m.examples} examples)`);
    return 0;
  }
  if (args.command === 'train') {
    const r = await runFromConfig(config);
    console.log(formatTable([r]));
    console.log(`logs, checkpoints and TensorBoard events: ${path.resolve(r.dir)}`);
    return 0;
  }
  const data = await prepareData(config);
  console.log(
    `${config.name}: ${data.trainExamples} training and ${data.validationExamples} validation examples, ${data.numClasses} classes` +
      (data.vocab ? `, vocabulary ${data.vocab.size}` : ''),
  );
  const runs: RunSummary[] = [];
  for (const { label, attack } of comparisonAttacks(config, args.methods)) {
    console.log(`\n== ${label}`);
    runs.push(await runFromConfig(config, { attack, label, data }));
  }
  const table = formatTable(runs);
  console.log(`\n${table}`);
  const dir = path.resolve(config.output.dir, config.name);
  writeFileSynced('compare', path.join(dir, 'comparison.txt'), table + '\n');
  writeFileSynced('compare', path.join(dir, 'comparison.json'), JSON.stringify(runs.map(({ history: _h, ...r }) => r), null, 2));
  console.log(`\nlogs, checkpoints and TensorBoard events: ${dir} (tensorboard --logdir ${dir})`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof ConfigError || e instanceof TypeError || e instanceof RangeError || e instanceof TorchError) {
        console.error(`dropattack: ${e.message}`);
      } else {
        console.error(e);
      }
      process.exit(1);
    },
  );
}
