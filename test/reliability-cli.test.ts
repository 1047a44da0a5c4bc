// Reliability of the CLI: label ids from the run, training that cannot progress, one-line
// errors, keys and names that could escape, --resume, validation files, silent defaults.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { escapeForTerminal, formatError, runCli } from '../lib/app/cli';
import { parseRunConfig } from '../lib/app/run';

// Label 'spam' exactly when the text holds "refund" or "winner" (an easy rule).
function mailRows(n: number, seed: number, only?: 'spam' | 'ham'): string[] {
  const words = ['meeting', 'tomorrow', 'report', 'lunch', 'project', 'budget', 'review', 'notes', 'call', 'draft'];
  let s = seed;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  const rows: string[] = [];
  for (let i = 0; i < n; i++) {
    const spam = only ? only === 'spam' : i % 2 === 1;
    const body = Array.from({ length: 6 + (next() % 6) }, () => words[next() % words.length]);
    if (spam) body.splice(next() % body.length, 0, next() % 2 ? 'refund' : 'winner');
    rows.push(`"${body.join(' ')}",${spam ? 'spam' : 'ham'}`);
  }
  return rows;
}

function writeCsv(file: string, rows: string[]): string {
  fs.writeFileSync(file, ['text,label', ...rows].join('\n') + '\n');
  return file;
}

interface Outcome {
  code: number;
  out: string;
  err: string;
}

/** Runs the CLI in-process; stdout and stderr captured. */
async function cli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  const logs: string[] = [];
  const errs: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logs.push(a.join(' ')));
  const warn = jest.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void logs.push(a.join(' ')));
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (logs.push(String(s)), true));
  try {
    const code = await runCli(argv, { write: (s: string) => errs.push(s) }, env);
    return { code, out: logs.join('\n'), err: errs.join('') };
  } finally {
    log.mockRestore();
    warn.mockRestore();
    write.mockRestore();
  }
}

/** A failure reported as exactly one clean line on stderr. */
function expectOneLine(r: Outcome, code: number, pattern: RegExp): void {
  expect({ code: r.code, err: r.err }).toMatchObject({ code });
  expect(r.err.endsWith('\n')).toBe(true);
  const body = r.err.slice(0, -1);
  expect(body).not.toMatch(/\n/);
  expect(body).toMatch(/^dropattack: /);
  expect(body).not.toMatch(/internal error|\bat .*\(.*:\d+:\d+\)/);
  // eslint-disable-next-line no-control-regex
  expect(body).not.toMatch(/[\x00-\x1f\x7f-\x9f\ufffd]/);
  expect(body).toMatch(pattern);
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-reliability-'));
afterAll(() => {
  try {
    fs.chmodSync(path.join(root, 'ro'), 0o755);
  } catch {
    // not created
  }
  fs.rmSync(root, { recursive: true, force: true });
});

const trainCsv = writeCsv(path.join(root, 'mail.csv'), mailRows(240, 7));
const baseConfig = {
  name: 'mail',
  data: { source: 'csv', path: trainCsv, validation: 0.25, batchSize: 16, maxLength: 20, seed: 3 },
  model: { kind: 'textcnn', embedDim: 16, numFilters: 8, kernelSizes: [2, 3] },
  optimizer: { type: 'adam', lr: 0.01 },
  attack: { method: 'none' },
  training: { epochs: 3, seed: 2 },
  output: { dir: path.join(root, 'runs'), progress: false, tensorboard: false },
};
function configFile(name: string, patch: (c: typeof baseConfig) => unknown = (c) => c): string {
  const file = path.join(root, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify(patch(structuredClone(baseConfig))));
  return file;
}
const accuracyOf = (out: string) => Number(/accuracy (\d+\.\d+)%/.exec(out)?.[1]);

describe('eval takes label ids and tokens from the run that trained the model', () => {
  const cfg = configFile('labels');
  const runDir = path.join(root, 'runs', 'mail', 'none');
  const best = path.join(runDir, 'checkpoints', 'best');
  beforeAll(async () => {
    const r = await cli(['train', '--config', cfg]);
    expect(r).toMatchObject({ code: 0, err: '' });
  });

  test('the run saves its label map next to its vocabulary', () => {
    expect(JSON.parse(fs.readFileSync(path.join(runDir, 'labels.json'), 'utf8'))).toEqual({ labels: ['ham', 'spam'] });
    expect(fs.existsSync(path.join(runDir, 'vocab.json'))).toBe(true);
  });

  test('a file with one class, its label first, scores as the model predicts', async () => {
    // In this file 'spam' is the only label: ids taken from the file would call it class 0.
    const spamOnly = writeCsv(path.join(root, 'spam-only.csv'), mailRows(60, 99, 'spam'));
    const whole = await cli(['eval', '--config', cfg, '--checkpoint', best, '--data', spamOnly]);
    expect(whole.code).toBe(0);
    expect(whole.out).toMatch(/\(60 examples\)/);
    expect(accuracyOf(whole.out)).toBeGreaterThan(90);
    // Through the configuration's held-out split of another file (the probe's route).
    const split = await cli(['eval', '--config', cfg, '--checkpoint', best, '--set', `data.path=${spamOnly}`, '--set', 'data.validation=0.5']);
    expect(split.code).toBe(0);
    expect(accuracyOf(split.out)).toBeGreaterThan(90);
  });

  test('labels in another order (and with a BOM-free reordered header) keep their ids', async () => {
    const rows = mailRows(80, 5).map((r) => {
      const i = r.lastIndexOf(',');
      return `${r.slice(i + 1)},${r.slice(0, i)}`;
    });
    // 'spam' rows first, columns swapped: order of appearance differs from training.
    rows.sort((a, b) => (a.startsWith('spam') ? 0 : 1) - (b.startsWith('spam') ? 0 : 1));
    const file = path.join(root, 'reordered.csv');
    fs.writeFileSync(file, ['label,text', ...rows].join('\n') + '\n');
    const r = await cli(['eval', '--config', cfg, '--checkpoint', best, '--data', file]);
    expect(r.code).toBe(0);
    expect(accuracyOf(r.out)).toBeGreaterThan(90);
  });

  test('an unseen label is an error naming the label and the file, or skipped and counted on request', async () => {
    const file = writeCsv(path.join(root, 'unseen.csv'), [...mailRows(20, 3), '"winner refund",eggs']);
    expectOneLine(await cli(['eval', '--config', cfg, '--checkpoint', best, '--data', file]), 1, /unseen\.csv:22: unknown label 'eggs' \(the labels are 'ham', 'spam'\)/);
    const skipped = await cli(['eval', '--config', cfg, '--checkpoint', best, '--data', file, '--set', 'data.onBadRow=skip']);
    expect(skipped.code).toBe(0);
    expect(skipped.out).toMatch(/skipped 1 malformed row\(s\) of .*unseen\.csv \(first at line 22: unknown label 'eggs'/);
    expect(skipped.out).toMatch(/\(20 examples\)/);
  });

  test('a model.pt outside its run folder needs the run vocabulary and labels', async () => {
    const lonely = path.join(root, 'lonely');
    fs.mkdirSync(lonely);
    fs.copyFileSync(path.join(best, 'model.pt'), path.join(lonely, 'model.pt'));
    const spamOnly = path.join(root, 'spam-only.csv');
    expectOneLine(await cli(['eval', '--config', cfg, '--checkpoint', path.join(lonely, 'model.pt'), '--data', spamOnly]), 2, /--vocab: no vocab\.json found next to/);
    const given = await cli([
      'eval', '--config', cfg, '--checkpoint', path.join(lonely, 'model.pt'), '--data', spamOnly,
      '--vocab', path.join(runDir, 'vocab.json'), '--labels', path.join(runDir, 'labels.json'),
    ]);
    expect(given.code).toBe(0);
    expect(accuracyOf(given.out)).toBeGreaterThan(90);
  });

  test('--resume continues from the last checkpoint with the saved vocabulary and labels', async () => {
    const r = await cli(['train', '--config', cfg, '--resume', '--set', 'training.epochs=5']);
    expect(r.code).toBe(0);
    const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
    expect(summary.history.map((h: { epoch: number }) => h.epoch)).toEqual([1, 2, 3, 4, 5]);
    const log = fs.readFileSync(path.join(runDir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.filter((e) => e.kind === 'epoch').map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5]);
    expectOneLine(await cli(['train', '--config', cfg, '--resume', '--set', 'name=never-trained']), 2, /--resume: no checkpoint to resume in '.*never-trained/);
    expect(fs.existsSync(path.join(root, 'runs', 'never-trained'))).toBe(false);
  });
});

describe('a separate validation file', () => {
  test('data.validationPath is the validation data; its labels follow the training file', async () => {
    const val = writeCsv(path.join(root, 'val.csv'), mailRows(50, 11, 'spam'));
    const cfg = configFile('valpath', (c) => {
      const { validation: _v, ...data } = c.data;
      return { ...c, name: 'valpath', data: { ...data, validationPath: val }, training: { epochs: 2, seed: 1 } };
    });
    const r = await cli(['compare', '--config', cfg, '--methods', 'none']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/valpath: 240 training and 50 validation examples, 2 classes/);
    expectOneLine(await cli(['train', '--config', cfg, '--set', 'data.validation=0.2']), 2, /config\.data\.validation: is not used with data\.validationPath/);
    const unseen = writeCsv(path.join(root, 'val-unseen.csv'), [...mailRows(5, 1), '"x y",maybe']);
    expectOneLine(await cli(['train', '--config', cfg, '--set', `data.validationPath=${unseen}`, '--set', 'name=unseen-val']), 1, /val-unseen\.csv:7: unknown label 'maybe'/);
    expect(fs.existsSync(path.join(root, 'runs', 'unseen-val'))).toBe(false);
  });
});

describe('training that makes no progress stops with an error', () => {
  test('a learning rate of 1e308 diverges: non-zero exit, one line', async () => {
    const cfg = configFile('lr', (c) => ({ ...c, name: 'lr', optimizer: { type: 'adam', lr: 1e308 }, training: { epochs: 2, seed: 1 } }));
    expectOneLine(await cli(['train', '--config', cfg]), 1, /fit: epoch 1: 11 of 12 steps failed \(92% > maxSkippedShare 0\.5\); first at batch 2: the clean loss is not finite$/);
    // SGD cannot even take the value: LibTorch's own error, still one line.
    expectOneLine(await cli(['train', '--config', cfg, '--set', 'optimizer.type=sgd']), 1, /value cannot be converted to type float without overflow/);
  });

  test('an attack radius of 1e38 leaves no applied step: non-zero exit', async () => {
    const cfg = configFile('eps', (c) => ({
      ...c,
      name: 'eps',
      attack: { method: 'dropattack', seed: 1, groups: [{ targets: 'embed.weight', epsilon: 1e38, p: 0.5 }] },
      training: { epochs: 2, seed: 1 },
    }));
    expectOneLine(await cli(['train', '--config', cfg]), 1, /fit: epoch 1: \d+ of \d+ steps failed|fit: epoch 1 applied no optimizer step/);
  });

  test('accumulate larger than an epoch and an unknown monitor are rejected before anything is written', async () => {
    const cfg = configFile('acc', (c) => ({ ...c, name: 'acc' }));
    expectOneLine(await cli(['train', '--config', cfg, '--set', 'training.accumulate=1000000000']), 2, /config\.training\.accumulate: 1000000000 micro-batches per step, but an epoch has only 12 batch\(es\)/);
    expectOneLine(await cli(['train', '--config', cfg, '--set', 'training.monitor=val.acc']), 2, /config\.training\.monitor: expected one of 'train\.loss', 'val\.loss'/);
    expectOneLine(await cli(['train', '--config', cfg, '--set', 'training.earlyStopping.monitor=loss']), 2, /config\.training\.earlyStopping\.monitor: expected one of/);
    expect(fs.existsSync(path.join(root, 'runs', 'acc'))).toBe(false);
  });
});

describe('every user error is one line', () => {
  const cases: [string, (dir: string) => string, RegExp][] = [
    ['missing', (d) => path.join(d, 'nope.csv'), /cannot read .*nope\.csv: no such file/],
    ['empty', (d) => (fs.writeFileSync(path.join(d, 'empty.csv'), ''), path.join(d, 'empty.csv')), /empty\.csv: /],
    ['header only', (d) => (fs.writeFileSync(path.join(d, 'header.csv'), 'text,label\n'), path.join(d, 'header.csv')), /header\.csv: empty dataset: no records/],
    ['unterminated quote', (d) => (fs.writeFileSync(path.join(d, 'quote.csv'), 'text,label\n"open,ham\n'), path.join(d, 'quote.csv')), /quote\.csv:2: /],
    ['a directory', (d) => d, /is a directory/],
    [
      'binary garbage in the header',
      (d) => (fs.writeFileSync(path.join(d, 'garbage.csv'), Buffer.from([0x1b, 0x5b, 0x32, 0x4a, 0xff, 0xfe, 0x07, 0x2c, 0x00, 0x0a, 0x61, 0x2c, 0x62, 0x0a])), path.join(d, 'garbage.csv')),
      /garbage\.csv:1: no column 'text' \(textColumn\) in the header; the columns are '\\x1b\[2J\\ufffd\\ufffd\\x07', '\\x00'/,
    ],
  ];
  for (const [what, make, pattern] of cases) {
    test(`data file: ${what}`, async () => {
      const dir = fs.mkdtempSync(path.join(root, 'data-'));
      const cfg = configFile(`data-${what.replace(/\W+/g, '-')}`, (c) => ({ ...c, name: 'data-errors', data: { ...c.data, path: make(dir) } }));
      expectOneLine(await cli(['train', '--config', cfg]), 1, pattern);
      expect(fs.existsSync(path.join(root, 'runs', 'data-errors'))).toBe(false);
    });
  }

  test('malformed JSONL and bad word vectors', async () => {
    const jsonl = path.join(root, 'bad.jsonl');
    fs.writeFileSync(jsonl, '{"text": "a b", "label": "x"}\n{"text": "c d", \n');
    const cfg = configFile('jsonl', (c) => ({ ...c, name: 'jsonl', data: { ...c.data, source: 'jsonl', path: jsonl } }));
    expectOneLine(await cli(['train', '--config', cfg]), 1, /bad\.jsonl:2: /);
    const vectors = path.join(root, 'vectors.txt');
    fs.writeFileSync(vectors, 'meeting 0.1 0.2 0.3\nreport 0.1 oops 0.3\n');
    const v = configFile('vectors', (c) => ({ ...c, name: 'vectors', data: { ...c.data, vectors } }));
    expectOneLine(await cli(['train', '--config', v]), 1, /vectors\.txt:2: value 2 of 'report' is not a number/);
    expect(fs.existsSync(path.join(root, 'runs', 'vectors'))).toBe(false);
  });

  test('output folders that cannot work: under /proc, a file in the way, read-only', async () => {
    const proc = configFile('proc', (c) => ({ ...c, output: { ...c.output, dir: '/proc/self/dropattack-runs' } }));
    const started = Date.now();
    expectOneLine(await cli(['train', '--config', proc]), 2, /config\.output\.dir: '\/proc\/self\/dropattack-runs\/mail' is under \/proc, not a place for run files/);
    expect(Date.now() - started).toBeLessThan(5000);
    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'x');
    const inTheWay = configFile('in-the-way', (c) => ({ ...c, output: { ...c.output, dir: path.join(file, 'runs') } }));
    expectOneLine(await cli(['train', '--config', inTheWay]), 2, /config\.output\.dir: cannot create '.*a-file\/runs\/mail': '.*a-file' exists and is not a directory$/);
    if (process.getuid?.() !== 0) {
      const ro = path.join(root, 'ro');
      fs.mkdirSync(ro);
      fs.chmodSync(ro, 0o555);
      const cfg = configFile('ro', (c) => ({ ...c, output: { ...c.output, dir: path.join(ro, 'runs') } }));
      expectOneLine(await cli(['train', '--config', cfg]), 2, /is not writable: permission denied \(EACCES\)/);
    }
  });

  test('model and trainer settings are checked before anything is written', async () => {
    const model = configFile('model', (c) => ({ ...c, name: 'bad-model', model: { ...c.model, numFilters: -3 } }));
    expectOneLine(await cli(['train', '--config', model]), 2, /config\.model: build_model\(textcnn\): num_filters must be > 0, got -3/);
    const attack = configFile('attack', (c) => ({ ...c, name: 'bad-attack', attack: { method: 'dropattack', groups: [{ targets: 'no.such.weight', epsilon: 1 }] } }));
    expectOneLine(await cli(['train', '--config', attack]), 2, /no\.such\.weight/);
    expectOneLine(await cli(['compare', '--config', attack, '--methods', 'none,dropattack']), 2, /no\.such\.weight/);
    for (const n of ['bad-model', 'bad-attack']) expect(fs.existsSync(path.join(root, 'runs', n))).toBe(false);
  });

  test('usage errors exit 2 without the usage text', async () => {
    expectOneLine(await cli(['frobnicate', '--config', 'x.json']), 2, /unknown command 'frobnicate' \(run 'dropattack --help' for usage\)/);
    expectOneLine(await cli(['train', '--config', 'x.json', '--bogus']), 2, /--bogus: unknown option/);
    expectOneLine(await cli(['train', '--config', configFile('u'), '--checkpoint', 'x']), 2, /--checkpoint: is an option of eval, not of train/);
    expectOneLine(await cli(['eval', '--config', configFile('u')]), 2, /--checkpoint: is required for eval/);
    expectOneLine(await cli(['train', '--config', path.join(root, 'missing.json')]), 2, /--config: cannot read .*missing\.json': no such file/);
    const garbage = path.join(root, 'garbage.json');
    fs.writeFileSync(garbage, Buffer.from([0x7b, 0x1b, 0x5b, 0x33, 0x31, 0x6d, 0xff]));
    expectOneLine(await cli(['train', '--config', garbage]), 2, /garbage\.json: is not valid JSON: /);
  });

  test('internal errors show a stack only with --debug or DROPATTACK_DEBUG=1', () => {
    const bug = new ReferenceError('x is not defined');
    expect(formatError(bug)).toMatch(/^dropattack: internal error: ReferenceError: x is not defined \(rerun with --debug for the stack\)$/);
    expect(formatError(bug, true)).toMatch(/ReferenceError: x is not defined\n\s+at /);
    expect(escapeForTerminal('a\nb\x1b[31m\u202e\ud800')).toBe('a\\nb\\x1b[31m\\u202e\\ud800');
    expect(escapeForTerminal('x'.repeat(5000)).length).toBeLessThan(1100);
  });
});

describe('keys and names that could escape', () => {
  test('__proto__, prototype and constructor are rejected in --set and in JSON configs', async () => {
    const cfg = configFile('proto');
    for (const set of ['__proto__.polluted=1', 'constructor.prototype.polluted=1', 'model.__proto__.polluted=1', 'attack.groups[0].constructor=1', 'model.x={"__proto__":{"polluted":1}}']) {
      expectOneLine(await cli(['train', '--config', cfg, '--dry-run', '--set', set]), 2, /the key '(__proto__|constructor)' is not allowed/);
    }
    const raw = fs.readFileSync(cfg, 'utf8');
    const nested = path.join(root, 'proto-nested.json');
    fs.writeFileSync(nested, raw.replace('"kind":"textcnn"', '"kind":"textcnn","__proto__":{"polluted":1}'));
    expectOneLine(await cli(['train', '--config', nested, '--dry-run']), 2, /config\.model\.__proto__: the key '__proto__' is not allowed/);
    const top = path.join(root, 'proto-top.json');
    fs.writeFileSync(top, raw.replace('{"name"', '{"constructor":{"prototype":{"polluted":1}},"name"'));
    expectOneLine(await cli(['train', '--config', top, '--dry-run']), 2, /config\.constructor: the key 'constructor' is not allowed/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    // structuredClone (used on configurations) makes objects of the outer realm under jest.
    expect(Object.getPrototypeOf(structuredClone({}))).not.toHaveProperty('polluted');
  });

  test('run names and compare labels are plain file names', async () => {
    const cfg = configFile('names');
    for (const name of ['../../x', '..', '.', 'a/b', '', 'x\u0000y']) {
      expectOneLine(await cli(['train', '--config', cfg, '--dry-run', '--set', `name=${JSON.stringify(name)}`]), 2, /config\.name: expected a plain file name/);
    }
    const labels = configFile('labels-escape', (c) => ({ ...c, compare: { methods: [{ label: '..', method: 'none' }] } }));
    expectOneLine(await cli(['compare', '--config', labels, '--dry-run']), 2, /config\.compare\.methods\[0\]\.label: expected a plain file name/);
    const twice = configFile('labels-twice', (c) => ({ ...c, compare: { methods: [{ label: 'a', method: 'none' }, { label: 'a', method: 'none' }] } }));
    expectOneLine(await cli(['compare', '--config', twice, '--dry-run']), 2, /the label 'a' is used twice/);
    expect(fs.existsSync(path.join(root, 'x'))).toBe(false);
    expect(fs.existsSync(path.join(path.dirname(root), 'x'))).toBe(false);
  });
});

describe('nothing silent', () => {
  test('early stopping is off unless configured, and says when it stops a run', async () => {
    expect(parseRunConfig(baseConfig).training.earlyStopping).toBeUndefined();
    const cfg = configFile('early', (c) => ({
      ...c,
      name: 'early',
      optimizer: { type: 'sgd', lr: 0 },
      training: { epochs: 10, seed: 1, earlyStopping: { patience: 2 } },
    }));
    const r = await cli(['train', '--config', cfg]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/settings: .*earlyStopping val\.loss patience 2/);
    expect(r.out).toMatch(/^early stopping: val\.loss did not improve for 2 epoch\(s\) \(best \d+\.\d{4} at epoch 1\); stopped after epoch 3 of 10$/m);
  });

  test('the effective settings are printed at start; --dry-run writes nothing', async () => {
    const cfg = configFile('dry', (c) => ({ ...c, name: 'dry' }));
    const r = await cli(['train', '--config', cfg, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /settings: data csv .*mail\.csv, validation 0\.25 held out, batchSize 16, model textcnn, optimizer adam lr 0\.01, attack none, epochs 3, accumulate 1, schedule constant, monitor val\.accuracy, earlyStopping off, maxSkippedShare 0\.5/,
    );
    expect(fs.existsSync(path.join(root, 'runs', 'dry'))).toBe(false);
  });

  test('data.validation is validated as documented: a fraction in (0, 1) that leaves both parts non-empty', async () => {
    const cfg = configFile('validation', (c) => ({ ...c, name: 'validation' }));
    expectOneLine(await cli(['train', '--config', cfg, '--set', 'data.validation=0']), 2, /config\.data\.validation: expected a value > 0, got 0/);
    const tiny = writeCsv(path.join(root, 'tiny.csv'), mailRows(4, 1));
    expectOneLine(
      await cli(['train', '--config', cfg, '--set', `data.path=${tiny}`, '--set', 'data.validation=0.01']),
      2,
      /config\.data\.validation: a fraction of 0\.01 of 4 examples leaves 4 for training and 0 for validation/,
    );
    expect(fs.existsSync(path.join(root, 'runs', 'validation'))).toBe(false);
  });

  test('compare writes output.dir/name/<label>/ as docs/cli.md says', async () => {
    const cfg = configFile('folders', (c) => ({
      ...c,
      name: 'folders',
      attack: { method: 'dropattack', seed: 1, groups: [{ targets: 'embed.weight', epsilon: 1, p: 0.5 }] },
      training: { epochs: 1, seed: 1 },
    }));
    const r = await cli(['compare', '--config', cfg, '--methods', 'none,dropattack']);
    expect(r.code).toBe(0);
    const dir = path.join(root, 'runs', 'folders');
    expect(fs.readdirSync(dir).sort()).toEqual(['DropAttack-1', 'comparison.json', 'comparison.txt', 'machine.json', 'plain', 'report']);
    const docs = fs.readFileSync(path.join(__dirname, '..', 'docs', 'cli.md'), 'utf8');
    expect(docs).toMatch(/`compare` also writes `comparison\.txt`, `comparison\.json` and `machine\.json`/);
    expect(docs).toMatch(/`RUN_DIR\/report\/index\.html`/);
    expect(docs).toMatch(/`compare` writes one folder per method, `output\.dir\/name\/<label>\/`/);
    expect(docs).toMatch(/`plain`, `DropAttack-<k>`/);
  });
});
