// compare --seeds and --train-fraction: per-seed runs, their statistics and the report.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { main } from '../../lib/app/cli';
import { pairedDifference, sd, tQuantile975 } from '../../lib/app/stats';
import type { SeedStats } from '../../lib/app/report';

jest.setTimeout(240_000);

describe('statistics', () => {
  test('t quantiles, sample sd and the paired interval against hand computation', () => {
    expect(tQuantile975(1)).toBe(12.706);
    expect(tQuantile975(2)).toBe(4.303);
    expect(tQuantile975(30)).toBe(2.042);
    expect(tQuantile975(1000)).toBe(1.96);
    expect(() => tQuantile975(0)).toThrow(RangeError);
    expect(sd([2, 4, 4, 4, 5, 5, 7, 9])).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(sd([3])).toBe(0);
    // differences 0.02, 0.04, 0.00: mean 0.02, sd 0.02, half width 4.303 * 0.02 / sqrt(3)
    const p = pairedDifference([0.92, 0.94, 0.9], [0.9, 0.9, 0.9]);
    expect(p.mean).toBeCloseTo(0.02, 12);
    expect(p.high - p.mean).toBeCloseTo((4.303 * 0.02) / Math.sqrt(3), 12);
    expect(p.mean - p.low).toBeCloseTo((4.303 * 0.02) / Math.sqrt(3), 12);
    expect(pairedDifference([1], [0.5])).toEqual({ mean: 0.5, low: NaN, high: NaN, n: 1 });
    expect(() => pairedDifference([1, 2], [1])).toThrow(RangeError);
  });
});

describe('compare --seeds --train-fraction', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-seeds-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const lines = ['text,label'];
  let s = 5;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  const words = ['meeting', 'report', 'lunch', 'project', 'budget', 'review', 'notes', 'call', 'draft', 'plan'];
  for (let i = 0; i < 160; i++) {
    const body = Array.from({ length: 5 + (next() % 5) }, () => words[next() % words.length]);
    if (i % 2) body.push(next() % 2 ? 'refund' : 'winner');
    lines.push(`"${body.join(' ')}",${i % 2 ? 'spam' : 'ham'}`);
  }
  fs.writeFileSync(path.join(dir, 'mail.csv'), lines.join('\n') + '\n');
  const config = {
    name: 'seeds',
    data: { source: 'csv', path: path.join(dir, 'mail.csv'), validation: 0.25, batchSize: 16, maxLength: 12, seed: 3 },
    model: { kind: 'textcnn', embedDim: 8, numFilters: 4, kernelSizes: [2] },
    optimizer: { type: 'adam', lr: 0.01 },
    attack: { method: 'dropattack', seed: 1, groups: [{ targets: 'embed.weight', epsilon: 1, p: 0.5 }] },
    training: { epochs: 2, seed: 2 },
    output: { dir: path.join(dir, 'runs'), progress: false },
  };
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(config));

  test('bad values name the option', async () => {
    const run = (extra: string[]) => main(['compare', '--config', path.join(dir, 'run.json'), ...extra]);
    await expect(run(['--seeds', '1,x'])).rejects.toThrow(/--seeds: expected a list of integers >= 0/);
    await expect(run(['--seeds', '1,1'])).rejects.toThrow(/--seeds: seed 1 is listed twice/);
    await expect(run(['--train-fraction', '0'])).rejects.toThrow(/--train-fraction: expected a fraction in \(0, 1\], got '0'/);
    await expect(run(['--train-fraction', '1.5'])).rejects.toThrow(/--train-fraction/);
    await expect(main(['train', '--config', path.join(dir, 'run.json'), '--seeds', '1'])).rejects.toThrow(/--seeds: is an option of compare, not of train/);
  });

  test('each method per seed; statistics from the runs; the report shows them', async () => {
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    let code: number;
    let out: string;
    try {
      code = await main(['compare', '--config', path.join(dir, 'run.json'), '--methods', 'none,dropattack', '--seeds', '1,2', '--train-fraction', '0.5']);
    } finally {
      out = log.mock.calls.map((c) => c.join(' ')).join('\n');
      log.mockRestore();
    }
    expect(code).toBe(0);
    // 160 examples, 40 held out: 120 to train on, 60 with the fraction.
    expect(out).toMatch(/seeds seed 1: 120 training and 40 validation examples/);
    expect(out).toMatch(/seeds seed 1 train fraction 0.5: 60 training and 40 validation examples/);
    const root = path.join(dir, 'runs', 'seeds');
    const labels = ['plain-seed1', 'plain-50pct-seed1', 'DropAttack-1-50pct-seed1', 'plain-seed2', 'plain-50pct-seed2', 'DropAttack-1-50pct-seed2'];
    const comparison = JSON.parse(fs.readFileSync(path.join(root, 'comparison.json'), 'utf8')) as { label: string }[];
    expect(comparison.map((r) => r.label)).toEqual(labels);
    const best = (label: string) => JSON.parse(fs.readFileSync(path.join(root, label, 'summary.json'), 'utf8')).best.value as number;
    // Each seed sets the data split, the initialization and the attack's seed.
    const cfg = (label: string) => JSON.parse(fs.readFileSync(path.join(root, label, 'config.json'), 'utf8'));
    expect([cfg('DropAttack-1-50pct-seed2').data.seed, cfg('DropAttack-1-50pct-seed2').training.seed, cfg('DropAttack-1-50pct-seed2').attack.seed]).toEqual([2, 2, 2]);
    const stats = JSON.parse(fs.readFileSync(path.join(root, 'seeds.json'), 'utf8')) as SeedStats;
    expect(stats.seeds).toEqual([1, 2]);
    expect(stats.reference).toBe('plain');
    expect(stats.methods.map((m) => [m.label, m.trainFraction])).toEqual([
      ['plain', 1],
      ['plain-50pct', 0.5],
      ['DropAttack-1-50pct', 0.5],
    ]);
    for (const m of stats.methods) {
      const xs = [1, 2].map((seed) => best(`${m.label}-seed${seed}`));
      expect(m.values).toEqual([
        { seed: 1, value: xs[0] },
        { seed: 2, value: xs[1] },
      ]);
      expect(m.mean).toBeCloseTo((xs[0] + xs[1]) / 2, 12);
      expect(m.sd).toBeCloseTo(Math.abs(xs[0] - xs[1]) / Math.SQRT2, 12);
      if (m.label === 'plain') {
        expect(m.paired).toBeNull();
        continue;
      }
      const d = [1, 2].map((seed) => best(`${m.label}-seed${seed}`) - best(`plain-seed${seed}`));
      const half = (12.706 * (Math.abs(d[0] - d[1]) / Math.SQRT2)) / Math.SQRT2;
      expect(m.paired!.mean).toBeCloseTo((d[0] + d[1]) / 2, 12);
      expect(m.paired!.high - m.paired!.low).toBeCloseTo(2 * half, 10);
    }
    expect(out).toMatch(/^DropAttack-1-50pct\s+0\.5\s+\d+\.\d\d%/m);
    const html = fs.readFileSync(path.join(root, 'report', 'index.html'), 'utf8');
    expect(html).toContain('id="chart-seeds"');
    expect(html).toContain('<h2>Seeds 1, 2</h2>');
    expect(fs.existsSync(path.join(root, 'report', 'seeds.svg'))).toBe(true);
  });
});
