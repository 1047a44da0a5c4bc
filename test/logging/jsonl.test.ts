import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { JsonlLogger } from '../../lib/logging/jsonl';
import { LogEvent } from '../../lib/logging/types';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-jsonl-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const readLines = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l, k, all) => l !== '' || k < all.length - 1)
    .map((l) => JSON.parse(l));

describe('JsonlLogger', () => {
  test('one JSON object per event, in order, values exact; creates parent directories', async () => {
    const file = path.join(tmp, 'a', 'b', 'run.jsonl');
    const log = new JsonlLogger(file);
    const events: LogEvent[] = [
      { kind: 'run-start', step: 0, epoch: 0, values: {}, time: 0 },
      { kind: 'batch', step: 1, epoch: 1, batch: 1, batches: 3, values: { loss: 0.1 + 0.2, adv_loss_0: Math.PI, lr: 1e-300 }, time: 12 },
      { kind: 'batch', step: 2, epoch: 1, batch: 2, batches: 3, values: { loss: 2 ** -1074, gradNorm: 123456789.123456 }, time: 25.5 },
      { kind: 'epoch', step: 3, epoch: 1, values: { 'train/loss': 1 / 3, 'val/accuracy': 0.875 }, time: 40 },
      { kind: 'run-end', step: 3, epoch: 1, values: {}, time: 41, message: 'stopped early: "val/loss"\nno improvement' },
    ];
    for (let i = 0; i < 1000; i++) events.push({ kind: 'batch', step: 4 + i, epoch: 2, batch: i + 1, values: { loss: i / 7 }, time: 50 + i });
    events.forEach((e) => log.log(e));
    await log.close();
    const lines = readLines(file);
    expect(lines).toEqual(events);
    expect(lines[1].values.loss).toBe(0.30000000000000004);
    expect(lines[2].values.loss).toBe(5e-324);
    expect(Object.keys(lines[1])).toEqual(['kind', 'step', 'epoch', 'batch', 'batches', 'time', 'values']);
    expect(fs.readFileSync(file, 'utf8').endsWith('}\n')).toBe(true);
    expect(fs.readFileSync(file, 'utf8').split('\n')).toHaveLength(events.length + 1);
  });

  test('non-finite values are written as strings', async () => {
    const file = path.join(tmp, 'nan.jsonl');
    const log = new JsonlLogger(file);
    log.log({ kind: 'batch', step: 1, epoch: 1, values: { loss: NaN, a: Infinity, b: -Infinity, c: 1 }, time: 0 });
    await log.close();
    expect(readLines(file)[0].values).toEqual({ loss: 'NaN', a: 'Infinity', b: '-Infinity', c: 1 });
  });

  test('appends to an existing file; close is idempotent; logging after close is an error', async () => {
    const file = path.join(tmp, 'run.jsonl');
    const first = new JsonlLogger(file);
    first.log({ kind: 'batch', step: 1, epoch: 1, values: { loss: 1 }, time: 1 });
    await first.close();
    await first.close();
    expect(() => first.log({ kind: 'batch', step: 2, epoch: 1, values: { loss: 2 }, time: 2 })).toThrow(/JsonlLogger.log: the logger is closed/);
    const second = new JsonlLogger(file);
    second.log({ kind: 'batch', step: 2, epoch: 1, values: { loss: 2 }, time: 2 });
    await second.close();
    expect(readLines(file).map((l) => l.values.loss)).toEqual([1, 2]);
  });

  test('bad arguments and events name themselves', async () => {
    expect(() => new JsonlLogger('')).toThrow(/JsonlLogger: path must be a non-empty string/);
    expect(() => new JsonlLogger(3 as never)).toThrow(TypeError);
    // a parent that is a file
    fs.writeFileSync(path.join(tmp, 'file'), 'x');
    expect(() => new JsonlLogger(path.join(tmp, 'file', 'run.jsonl'))).toThrow(/EEXIST|ENOTDIR/);
    const log = new JsonlLogger(path.join(tmp, 'x.jsonl'));
    expect(() => log.log({ kind: 'batch', step: 1, epoch: 1, values: null as never, time: 0 })).toThrow(/event.values must be an object of numbers/);
    expect(() => log.log({ kind: 'batch', step: 1, epoch: -1, values: {}, time: 0 })).toThrow(RangeError);
    expect(() => log.log({ kind: 'batch', step: 1, epoch: 1, values: {}, time: NaN })).toThrow(/event.time must be a number/);
    await log.close();
    expect(fs.readFileSync(path.join(tmp, 'x.jsonl'), 'utf8')).toBe('');
  });
});
