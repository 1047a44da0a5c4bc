import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import type { FitOptions } from '../../lib/train/fit';
type FitLogger = NonNullable<FitOptions['loggers']>[number];
import { JsonlLogger, LogEvent, Logger, MultiLogger, ProgressLogger, TensorBoardLogger } from '../../lib/logging';

class Recorder implements Logger {
  events: LogEvent[] = [];
  closed = 0;
  constructor(
    private readonly name: string,
    private readonly order: string[],
  ) {}
  log(e: LogEvent): void {
    this.order.push(`${this.name}:${e.kind}`);
    this.events.push(e);
  }
  async close(): Promise<void> {
    this.closed++;
  }
}

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-multi-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const ev: LogEvent = { kind: 'batch', step: 1, epoch: 1, batch: 1, values: { loss: 0.5 }, time: 3 };

describe('MultiLogger', () => {
  test('fans every event out in order and closes all', async () => {
    const order: string[] = [];
    const a = new Recorder('a', order);
    const b = new Recorder('b', order);
    const m = new MultiLogger([a, b]);
    m.log({ kind: 'run-start', step: 0, epoch: 0, values: {}, time: 0 });
    m.log(ev);
    await m.close();
    expect(order).toEqual(['a:run-start', 'b:run-start', 'a:batch', 'b:batch']);
    expect(b.events[1]).toBe(ev);
    expect([a.closed, b.closed]).toEqual([1, 1]);
  });

  test('a failing logger does not starve the others; the first error is rethrown', async () => {
    const order: string[] = [];
    const bad: Logger = {
      log: () => {
        throw new Error('disk full');
      },
      close: () => Promise.reject(new Error('close failed')),
    };
    const good = new Recorder('good', order);
    const m = new MultiLogger([bad, good]);
    expect(() => m.log(ev)).toThrow('disk full');
    expect(good.events).toEqual([ev]);
    await expect(m.close()).rejects.toThrow('close failed');
    expect(good.closed).toBe(1);
    const throwsOnClose: Logger = {
      log: () => undefined,
      close: () => {
        throw new Error('sync close');
      },
    };
    await expect(new MultiLogger([throwsOnClose, good]).close()).rejects.toThrow('sync close');
    expect(good.closed).toBe(2);
  });

  test('bad arguments name themselves', () => {
    expect(() => new MultiLogger('x' as never)).toThrow(/MultiLogger: loggers must be an array of loggers/);
    expect(() => new MultiLogger([{ log() {} } as never])).toThrow(/MultiLogger: loggers\[0\] must be a logger/);
    expect(() => new MultiLogger([null as never])).toThrow(TypeError);
  });

  test('the three loggers together, usable where fit() takes loggers', async () => {
    const out: string[] = [];
    const stream = { isTTY: false, write: (s: string) => out.push(s) };
    const jsonl = new JsonlLogger(path.join(tmp, 'logs', 'run.jsonl'));
    const tb = new TensorBoardLogger(path.join(tmp, 'tb'), { runName: 'r1' });
    const loggers: FitLogger[] = [new MultiLogger([new ProgressLogger(stream, { every: 1 }), jsonl, tb])];
    for (const l of loggers) {
      l.log({ kind: 'run-start', step: 0, epoch: 0, values: {}, time: 0 });
      l.log(ev);
      l.log({ kind: 'epoch', step: 1, epoch: 1, values: { 'train/loss': 0.5 }, time: 4 });
      l.log({ kind: 'run-end', step: 1, epoch: 1, values: {}, time: 5 });
      await l.close();
    }
    expect(out.join('')).toBe('epoch 1 1  loss 0.5000\nepoch 1  1 steps  0:00  train/loss 0.5000\n');
    expect(fs.readFileSync(jsonl.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l).kind)).toEqual(['run-start', 'batch', 'epoch', 'run-end']);
    // version record + 2 scalars; each record is 16 bytes of framing plus its data
    const bytes = fs.readFileSync(tb.path);
    let records = 0;
    for (let i = 0; i < bytes.length; records++) i += 16 + Number(bytes.readBigUInt64LE(i));
    expect(records).toBe(3);
  });
});
