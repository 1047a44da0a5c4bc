// The report of a comparison, opened in headless Chromium (Debian's `chromium` package,
// installed by scripts/setup-chromium.sh when missing): the charts must have rendered, with
// one line per method whose points are the logged values.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { main } from '../../lib/app/cli';
import { readReportData, readStepLosses } from '../../lib/app/report';
import { decodeEventFile } from '../helpers/tensorboard-proto';

jest.setTimeout(180_000);

function tinyCsv(dir: string, rows = 200): string {
  const lines = ['text,label'];
  const words = ['meeting', 'tomorrow', 'report', 'lunch', 'project', 'budget', 'review', 'notes', 'call', 'draft'];
  let s = 11;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  for (let i = 0; i < rows; i++) {
    const spam = i % 2 === 1;
    const body = Array.from({ length: 5 + (next() % 6) }, () => words[next() % words.length]);
    if (spam) body.splice(next() % body.length, 0, next() % 2 ? 'refund' : 'winner');
    lines.push(`"${body.join(' ')}",${spam ? 'spam' : 'ham'}`);
  }
  const file = path.join(dir, 'mail.csv');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

async function quiet<T>(f: () => Promise<T>): Promise<{ value: T; out: string }> {
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    const value = await f();
    return { value, out: log.mock.calls.map((c) => c.join(' ')).join('\n') };
  } finally {
    log.mockRestore();
    write.mockRestore();
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-report-'));
const runDir = path.join(dir, 'runs', 'tiny');
const labels = ['plain', 'DropAttack-1'];
let compareOut = '';

beforeAll(async () => {
  const config = {
    name: 'tiny',
    data: { source: 'csv', path: tinyCsv(dir), validation: 0.25, batchSize: 16, maxLength: 16, seed: 3 },
    model: { kind: 'textcnn', embedDim: 16, numFilters: 8, kernelSizes: [2, 3] },
    optimizer: { type: 'adam', lr: 0.01 },
    attack: { method: 'dropattack', seed: 1, groups: [{ targets: 'embed.weight', epsilon: 1, p: 0.5 }] },
    training: { epochs: 3, seed: 2 },
    output: { dir: path.join(dir, 'runs'), progress: false },
  };
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(config));
  const { value, out } = await quiet(() => main(['compare', '--config', path.join(dir, 'run.json'), '--methods', 'none,dropattack']));
  expect(value).toBe(0);
  compareOut = out;
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('dropattack report', () => {
  test('compare writes the report and prints its path; the page is self-contained', () => {
    const html = path.join(runDir, 'report', 'index.html');
    expect(compareOut).toContain(`report: ${path.resolve(html)}`);
    const text = fs.readFileSync(html, 'utf8');
    // Nothing to fetch: no script, no external stylesheet, image or font.
    expect(text).not.toMatch(/<script|<link|<img|@import|url\(/i);
    expect(text).not.toMatch(/(src|href)="(https?:)?\/\//i);
    for (const name of ['train-loss-steps', 'loss-epochs', 'val-accuracy-epochs']) {
      const svg = fs.readFileSync(path.join(runDir, 'report', `${name}.svg`), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(text).toContain(`id="chart-${name}"`);
    }
    // The table's numbers are the comparison's.
    const comparison = JSON.parse(fs.readFileSync(path.join(runDir, 'comparison.json'), 'utf8')) as { label: string; final: { accuracy: number; macroF1: number } }[];
    for (const r of comparison) {
      expect(text).toMatch(new RegExp(`<td>${r.label}</td>.*?<td class="n">${(100 * r.final.accuracy).toFixed(2)}%</td><td class="n">${r.final.macroF1.toFixed(4)}</td>`));
    }
    expect(JSON.parse(fs.readFileSync(path.join(runDir, 'machine.json'), 'utf8'))).toMatchObject({ cpu: true, node: process.version });
  });

  test("compare's methods are sessions of one experiment in TensorBoard's HParams tab", () => {
    const events = (d: string) => fs.readdirSync(d).filter((f) => f.startsWith('events.out.tfevents.')).flatMap((f) => decodeEventFile(path.join(d, f)));
    const values = (d: string) => events(d).flatMap((e) => e.summary?.value ?? []);
    const experiment = values(runDir).find((v) => v.tag === '_hparams_/experiment');
    const infos = (experiment?.hparams as { experiment: { hparamInfos: { name: string; domainDiscrete?: { values: { stringValue: string }[] } }[]; metricInfos: { name: { tag: string } }[] } }).experiment;
    expect(infos.hparamInfos.find((h) => h.name === 'method')?.domainDiscrete?.values.map((v) => v.stringValue)).toEqual(labels);
    expect(infos.metricInfos.map((m) => m.name.tag)).toEqual(['val/accuracy', 'val/macroF1', 'val/loss', 'train/loss']);
    for (const label of labels) {
      const session = values(path.join(runDir, label, 'tensorboard'));
      const start = session.find((v) => v.tag === '_hparams_/session_start_info')?.hparams as { sessionStartInfo: { hparams: Record<string, { stringValue?: string; numberValue?: number }> } };
      expect(start.sessionStartInfo.hparams.method).toEqual({ stringValue: label });
      expect(start.sessionStartInfo.hparams.seed).toEqual({ numberValue: 2 });
      expect(session.find((v) => v.tag === '_hparams_/session_end_info')?.hparams).toMatchObject({ sessionEndInfo: { status: 'STATUS_SUCCESS' } });
      // The metrics the experiment names are scalars of the session's run.
      const tags = new Set(session.map((v) => v.tag));
      for (const m of infos.metricInfos) expect(tags.has(m.name.tag)).toBe(true);
    }
  });

  test('report RUN_DIR rewrites it; a folder without runs is a clear error', async () => {
    fs.rmSync(path.join(runDir, 'report'), { recursive: true });
    const { value, out } = await quiet(() => main(['report', runDir]));
    expect(value).toBe(0);
    expect(out).toMatch(/report: .*index\.html \(3 SVG charts beside it\)/);
    await expect(main(['report', dir])).rejects.toThrow(/has neither comparison.json \(a compare folder\) nor summary.json/);
    await expect(main(['report', path.join(dir, 'nope')])).rejects.toThrow(/is not a directory/);
    await expect(main(['report'])).rejects.toThrow(/expects one RUN_DIR, got 0/);
    await expect(main(['report', runDir, '--grid'])).rejects.toThrow(/--grid: unknown option of report/);
  });
});

interface ChartInPage {
  name: string;
  series: string[];
  legend: string[];
  width: number;
  height: number;
  lines: { label: string; points: number; stroke: string; width: number; height: number }[];
}

/** Runs in the page (plain JavaScript: the tests are not compiled with the DOM's types). */
const READ_CHARTS = `[...document.querySelectorAll('figure.chart')].map((f) => {
  const svg = f.querySelector('svg');
  const box = svg.getBoundingClientRect();
  return {
    name: f.id.replace(/^chart-/, ''),
    series: JSON.parse(f.dataset.series || '[]'),
    legend: [...svg.querySelectorAll('.role-legend-label text')].map((t) => t.textContent || ''),
    width: box.width,
    height: box.height,
    lines: [...svg.querySelectorAll('.mark-line.role-mark path')].map((p) => {
      const b = p.getBBox();
      return {
        label: p.getAttribute('aria-label') || '',
        points: (p.getAttribute('d') || '').split(/[ML]/).filter((s) => s.trim() !== '').length,
        stroke: getComputedStyle(p).stroke,
        width: b.width,
        height: b.height,
      };
    }),
  };
})`;

describe('the report in headless Chromium', () => {
  const noBrowser = process.env.DROPATTACK_NO_BROWSER === '1';
  (noBrowser ? test.skip : test)('the SVG charts render with one line per method and the logged points', async () => {
    let browserPath: string;
    try {
      browserPath = execFileSync('bash', [path.join(__dirname, '..', '..', 'scripts', 'setup-chromium.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    } catch (e) {
      throw new Error(`headless Chromium is needed (set DROPATTACK_NO_BROWSER=1 to skip): ${String((e as { stderr?: string }).stderr ?? e)}`);
    }
    const puppeteer = await import('puppeteer-core');
    const browser = await puppeteer.launch({ executablePath: browserPath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 1100, height: 1000 });
      await page.goto(`file://${path.join(runDir, 'report', 'index.html')}`, { waitUntil: 'load' });
      const charts = (await page.evaluate(READ_CHARTS)) as ChartInPage[];
      expect(charts.map((c) => c.name)).toEqual(['train-loss-steps', 'loss-epochs', 'val-accuracy-epochs']);
      const data = readReportData(runDir);
      for (const c of charts) {
        expect(c.series).toEqual(labels);
        expect(c.width).toBeGreaterThan(300);
        expect(c.height).toBeGreaterThan(150);
        for (const l of labels) expect(c.legend).toContain(l);
        const perMethod = c.name === 'train-loss-steps' ? 1 : 2; // training/validation, accuracy/macro-F1
        expect(c.lines).toHaveLength(labels.length * perMethod);
        for (const line of c.lines) {
          expect(line.width).toBeGreaterThan(0); // drawn, not collapsed
          expect(line.height).toBeGreaterThan(0);
        }
        // Each method has its own colour, shared by its lines.
        const strokeOf = (label: string) => new Set(c.lines.filter((x) => x.label.endsWith(`method: ${label}`) || x.label.includes(`method: ${label};`)).map((x) => x.stroke));
        const strokes = labels.map(strokeOf);
        for (const s of strokes) expect(s.size).toBe(1);
        expect(new Set(strokes.map((s) => [...s][0])).size).toBe(labels.length);
      }
      // The step chart's lines carry every logged step, starting at the first logged loss.
      const steps = charts[0];
      for (const r of data.runs) {
        const logged = readStepLosses(path.join(r.dir, 'log.jsonl'));
        const line = steps.lines.find((x) => x.label.endsWith(`method: ${r.label}`));
        expect(line).toBeDefined();
        expect(line!.points).toBe(logged.length);
        const first = /training loss: ([-\d.e]+)/.exec(line!.label);
        expect(Number(first![1])).toBeCloseTo(logged[0].loss, 6);
      }
      // The epoch charts have one point per epoch per line.
      for (const c of charts.slice(1)) for (const line of c.lines) expect(line.points).toBe(3);
      const shot = path.join(process.env.DROPATTACK_SCREENSHOT_DIR ?? dir, 'report.png');
      await page.screenshot({ path: shot, fullPage: false });
      const png = fs.readFileSync(shot);
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(png.length).toBeGreaterThan(20_000); // a page with charts, not a blank one
    } finally {
      await browser.close();
    }
  });
});

describe('dropattack landscape', () => {
  test('writes the grid next to the runs, its centre is the checkpoint\'s validation loss; the report shows it', async () => {
    const checkpoint = path.join(runDir, 'DropAttack-1', 'checkpoints', 'best');
    const evaluated = await quiet(() => main(['eval', '--config', path.join(runDir, 'DropAttack-1', 'config.json'), '--checkpoint', checkpoint]));
    const loss = Number(/loss (\d+\.\d+)/.exec(evaluated.out)![1]);
    const write = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    let out: string;
    try {
      ({ out } = await quiet(() => main(['landscape', '--checkpoint', checkpoint, '--grid', '3', '--range', '0.5', '--examples', '10000'])));
    } finally {
      write.mockRestore();
    }
    const json = path.join(runDir, 'landscape', 'DropAttack-1.json');
    expect(out).toContain(json);
    const r = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(r).toMatchObject({ label: 'DropAttack-1', grid: 3, range: 0.5, seed: 0, examples: 50, alphas: [-0.5, 0, 0.5] });
    expect(r.loss[1][1]).toBeCloseTo(loss, 4);
    expect(fs.readFileSync(path.join(runDir, 'landscape', 'DropAttack-1.svg'), 'utf8').startsWith('<svg')).toBe(true);
    expect(fs.readFileSync(path.join(runDir, 'report', 'index.html'), 'utf8')).toContain('id="chart-landscape-DropAttack-1"');
    // --data: another file in the run's format, read with the run's vocabulary and labels.
    const write2 = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await quiet(() => main(['landscape', '--checkpoint', checkpoint, '--grid', '3', '--examples', '10000', '--data', path.join(dir, 'mail.csv')]));
    } finally {
      write2.mockRestore();
    }
    expect(JSON.parse(fs.readFileSync(json, 'utf8')).examples).toBe(200);
    await expect(main(['landscape', '--checkpoint', checkpoint, '--data', path.join(dir, 'nope.csv')])).rejects.toThrow(/--data: '.*nope.csv': no such file/);
    await expect(main(['landscape', '--checkpoint', checkpoint, '--grid', '4'])).rejects.toThrow(/--grid: expected an odd integer/);
    await expect(main(['landscape', '--grid', '3'])).rejects.toThrow(/--checkpoint: is required/);
    await expect(main(['landscape', '--checkpoint', path.join(dir, 'none')])).rejects.toThrow(/no such file or directory/);
  });
});
