import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { main } from '../lib/app/cli';
import { ConfigError } from '../lib/app/config';
import { parseRunConfig } from '../lib/app/run';

function tinyCsv(dir: string, rows = 240): string {
  // Label 1 when the text mentions "refund" or "winner"; quoted fields with commas and newlines.
  const lines = ['text,label'];
  const words = ['meeting', 'tomorrow', 'report', 'lunch', 'project', 'budget', 'review', 'notes', 'call', 'draft'];
  let s = 7;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  for (let i = 0; i < rows; i++) {
    const spam = i % 2 === 1;
    const body = Array.from({ length: 6 + (next() % 6) }, () => words[next() % words.length]);
    if (spam) body.splice(next() % body.length, 0, next() % 2 ? 'refund' : 'winner');
    lines.push(`"${body.join(' ')},\n${i % 3 === 0 ? 'see ""attached""' : 'thanks'}",${spam ? 'spam' : 'ham'}`);
  }
  const file = path.join(dir, 'mail.csv');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

async function run(argv: string[]): Promise<{ code: number; out: string }> {
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    const code = await main(argv);
    return { code, out: log.mock.calls.map((c) => c.join(' ')).join('\n') };
  } finally {
    log.mockRestore();
    write.mockRestore();
  }
}

describe('dropattack CLI', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-cli-'));
  const csv = tinyCsv(dir);
  const config = {
    name: 'tiny',
    data: { source: 'csv', path: csv, validation: 0.25, batchSize: 16, maxLength: 20, seed: 3 },
    model: { kind: 'textcnn', embedDim: 16, numFilters: 8, kernelSizes: [2, 3] },
    optimizer: { type: 'adam', lr: 0.01 },
    attack: { method: 'dropattack', seed: 1, groups: [{ targets: 'embed.weight', epsilon: 1, p: 0.5 }] },
    training: { epochs: 3, seed: 2 },
    output: { dir: path.join(dir, 'runs'), progress: false },
  };
  const configPath = path.join(dir, 'run.json');
  fs.writeFileSync(configPath, JSON.stringify(config));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('compare runs every method on the same data and prints the table', async () => {
    const { code, out } = await run(['compare', '--config', configPath, '--methods', 'none,dropattack,fgm']);
    expect(code).toBe(0);
    expect(out).toMatch(/tiny: 180 training and 60 validation examples, 2 classes/);
    for (const label of ['plain', 'DropAttack-1', 'FGM']) expect(out).toMatch(new RegExp(`^${label}\\s+\\d+\\.\\d\\d%`, 'm'));
    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'runs', 'tiny', 'comparison.json'), 'utf8'));
    expect(summary.map((r: { method: string }) => r.method)).toEqual(['none', 'dropattack', 'fgm']);
    for (const r of summary) expect(r.final.accuracy).toBeGreaterThan(0.9); // the rule is easy
    const tb = fs.readdirSync(path.join(dir, 'runs', 'tiny', 'DropAttack-1', 'tensorboard'));
    expect(tb.some((f) => f.startsWith('events.out.tfevents.'))).toBe(true);
    const log = fs.readFileSync(path.join(dir, 'runs', 'tiny', 'DropAttack-1', 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.filter((e) => e.kind === 'epoch')).toHaveLength(3);
  });

  test('train then eval of the best checkpoint reproduces its accuracy', async () => {
    const { code, out } = await run(['train', '--config', configPath, '--set', 'training.epochs=2', '--set', 'name=tiny-train']);
    expect(code).toBe(0);
    const runDir = path.join(dir, 'runs', 'tiny-train', 'dropattack');
    expect(out).toMatch(new RegExp(runDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    const best = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8')).best.value;
    const evaluated = await run(['eval', '--config', configPath, '--checkpoint', path.join(runDir, 'checkpoints', 'best')]);
    expect(evaluated.out).toMatch(new RegExp(`accuracy ${(100 * best).toFixed(2)}%`));
  });

  test('configuration errors name the field and the value', async () => {
    const bad = (patch: object) => () => parseRunConfig({ ...config, ...patch });
    expect(bad({ training: { epochs: 'ten' } })).toThrow(/config.training.epochs: expected a finite number, got string 'ten'/);
    expect(bad({ training: { epochz: 3 } })).toThrow(/config.training.epochz: unknown field \(known: epochs, seed/);
    expect(bad({ data: { ...config.data, source: 'parquet' } })).toThrow(/config.data.source: expected one of 'csv', 'tsv'/);
    expect(bad({ data: { source: 'csv' } })).toThrow(/config.data.path: is required for source 'csv'/);
    expect(bad({ model: { kind: 'cnn28' } })).toThrow(/config.model.kind: 'cnn28' does not take text/);
    expect(bad({ data: { ...config.data, validation: 1 } })).toThrow(/config.data.validation: expected a value < 1, got 1/);
    expect(() => parseRunConfig(config, ['training.epochs=0'])).toThrow(/config.training.epochs: expected a value >= 1, got 0/);
    expect(parseRunConfig(config, ['attack.groups[0].epsilon=2.5']).attack).toMatchObject({ groups: [{ epsilon: 2.5 }] });
    expect(() => parseRunConfig(config, ['nonsense'])).toThrow(ConfigError);
    await expect(main(['train', '--config', path.join(dir, 'missing.json')])).rejects.toThrow(/cannot read/);
    await expect(main(['frobnicate', '--config', configPath])).rejects.toThrow(/unknown command 'frobnicate'/);
    await expect(main(['compare', '--config', configPath, '--methods', 'none,magic'])).rejects.toThrow(/unknown method 'magic'/);
    const malformed = path.join(dir, 'malformed.json');
    fs.writeFileSync(malformed, '{"name": ');
    await expect(main(['train', '--config', malformed])).rejects.toThrow(/is not valid JSON/);
  });

  test('a malformed CSV row fails with file and line, or is skipped and counted', async () => {
    const broken = path.join(dir, 'broken.csv');
    fs.writeFileSync(broken, 'text,label\n"ok",ham\n"bad row with,too,many",spam,extra\n"fine",spam\n'.repeat(20));
    const cfg = { ...config, name: 'broken', data: { ...config.data, path: broken }, training: { epochs: 1 } };
    const p = path.join(dir, 'broken.json');
    fs.writeFileSync(p, JSON.stringify(cfg));
    await expect(main(['train', '--config', p])).rejects.toThrow(/broken.csv:3: /);
    const err = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const { code } = await run(['train', '--config', p, '--set', 'data.onBadRow=skip']);
      expect(code).toBe(0);
      expect(err.mock.calls.join('\n')).toMatch(/skipped 20 malformed row\(s\) of .*broken.csv \(first at line 3/);
    } finally {
      err.mockRestore();
    }
  });
});
