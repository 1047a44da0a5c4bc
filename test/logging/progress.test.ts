import { formatDuration, formatValue, ProgressLogger } from '../../lib/logging/progress';
import { LogEvent } from '../../lib/logging/types';

class FakeStream {
  chunks: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns?: number,
  ) {}
  write(s: string): boolean {
    this.chunks.push(s);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}

/** One run: `epochs` epochs of `batches` batches, `stepMs` apart, loss = batch number, adv = 0.5. */
function run(
  logger: ProgressLogger,
  { epochs = 2, batches = 100, stepMs = 250, withTotal = true, validationMs = 0 }: { epochs?: number; batches?: number; stepMs?: number; withTotal?: boolean; validationMs?: number } = {},
): void {
  let t = 0;
  let step = 0;
  const log = (e: Omit<LogEvent, 'time'>) => logger.log({ ...e, time: t });
  log({ kind: 'run-start', step, epoch: 0, values: {} });
  for (let epoch = 1; epoch <= epochs; epoch++) {
    for (let b = 1; b <= batches; b++) {
      t += stepMs;
      step++;
      log({ kind: 'batch', step, epoch, batch: b, ...(withTotal ? { batches } : {}), values: { loss: b, adv_loss_0: 0.5, lr: 0.1 } });
    }
    t += validationMs;
    log({ kind: 'epoch', step, epoch, values: { 'train/loss': 0.41234, 'train/adv_loss_0': 0.5, 'val/accuracy': 0.9 } });
  }
  log({ kind: 'run-end', step, epoch: epochs, values: {} });
}

describe('ProgressLogger on a TTY', () => {
  test('redraws one line per epoch with bar, ETA, rate and running means; a final line per epoch', async () => {
    const s = new FakeStream(true);
    const p = new ProgressLogger(s, { epochs: 2 });
    run(p, { validationMs: 5000 });
    await p.close();
    const text = s.text;
    // at batch 45: 55 steps of 250 ms left = 13.75 s; mean of losses 1..45 = 23
    expect(s.chunks).toContain('\repoch 1/2 [#########-----------] 45/100  ETA 0:14  4.0 steps/s  loss 23.00  adv 0.5000\x1b[K');
    expect(s.chunks).toContain('\repoch 2/2 [####################] 100/100  ETA 0:00  4.0 steps/s  loss 50.50  adv 0.5000\x1b[K');
    // the first batch of the run has no rate yet; later epochs keep the step times, and the
    // 5 s of validation between epochs is not taken for a step (it would halve the rate)
    expect(s.chunks[0]).toBe('\repoch 1/2 [--------------------] 1/100  ETA -:--  loss 1.000  adv 0.5000\x1b[K');
    expect(s.chunks).toContain('\repoch 2/2 [--------------------] 1/100  ETA 0:25  4.0 steps/s  loss 1.000  adv 0.5000\x1b[K');
    expect(s.chunks).toContain('\repoch 2/2 [--------------------] 2/100  ETA 0:25  4.0 steps/s  loss 1.500  adv 0.5000\x1b[K');
    // final lines: the epoch's metrics, then a newline
    const finals = text.split('\n').filter((l) => l !== '').map((l) => l.slice(l.lastIndexOf('\r') + 1));
    expect(finals).toEqual([
      'epoch 1/2  100 steps  0:30  train/loss 0.4123  train/adv_loss_0 0.5000  val/accuracy 0.9000\x1b[K', // 25 s of steps + 5 s of validation
      'epoch 2/2  100 steps  0:30  train/loss 0.4123  train/adv_loss_0 0.5000  val/accuracy 0.9000\x1b[K',
    ]);
    expect(text.endsWith('\x1b[K\n')).toBe(true);
    expect(text.split('\n')).toHaveLength(3);
  });

  test('redraws at most once per 100 ms of event time', async () => {
    const s = new FakeStream(true);
    const p = new ProgressLogger(s);
    run(p, { epochs: 1, batches: 100, stepMs: 10 });
    await p.close();
    const bars = s.chunks.filter((c) => c.startsWith('\r') && c.includes('ETA'));
    // batch 1, then t = 110, 210, ... (batches 11, 21, ..., 91), then the last batch
    expect(bars.map((c) => / (\d+)\/100 /.exec(c)![1])).toEqual(['1', '11', '21', '31', '41', '51', '61', '71', '81', '91', '100']);
    expect(bars[bars.length - 1]).toContain('100 steps/s');
    // no epoch total given: no '/N' after 'epoch'
    expect(bars[0].startsWith('\repoch 1 [')).toBe(true);
  });

  test('without a batch count: no bar in the first epoch, the first epoch length estimates the next', async () => {
    const s = new FakeStream(true);
    const p = new ProgressLogger(s, { redrawMs: 0 });
    run(p, { epochs: 2, batches: 5, withTotal: false });
    await p.close();
    expect(s.chunks).toContain('\repoch 1 3  4.0 steps/s  loss 2.000  adv 0.5000\x1b[K');
    expect(s.chunks).toContain('\repoch 2 [############--------] 3/5  ETA 0:01  4.0 steps/s  loss 2.000  adv 0.5000\x1b[K');
  });

  test('truncates to the terminal width; messages clear the bar; close ends a pending line', async () => {
    const s = new FakeStream(true, 30);
    const p = new ProgressLogger(s);
    p.log({ kind: 'batch', step: 1, epoch: 1, batch: 1, batches: 10, values: { loss: 1 }, time: 0 });
    expect(s.chunks[0]).toBe('\r' + 'epoch 1 [##------------------] 1/10  ETA -:--  loss 1.000'.slice(0, 29) + '\x1b[K');
    p.log({ kind: 'batch', step: 2, epoch: 1, batch: 2, batches: 10, values: { loss: 1 }, time: 1, message: 'checkpoint saved' });
    expect(s.chunks.slice(-2)).toEqual(['\r\x1b[K', 'checkpoint saved\n']);
    p.log({ kind: 'batch', step: 3, epoch: 1, batch: 3, batches: 10, values: { loss: 1 }, time: 2 });
    expect(s.chunks[s.chunks.length - 1].startsWith('\repoch 1 [######')).toBe(true); // redrawn at once
    await p.close();
    expect(s.chunks[s.chunks.length - 1]).toBe('\n');
    await p.close();
    expect(() => p.log({ kind: 'run-end', step: 3, epoch: 1, values: {}, time: 3 })).toThrow(/ProgressLogger.log: the logger is closed/);
  });
});

describe('ProgressLogger without a TTY', () => {
  const plain = (s: FakeStream) => {
    // eslint-disable-next-line no-control-regex
    expect(s.text).not.toMatch(/[\r\x1b\x00-\x09\x0b-\x1f]/);
    return s.text.split('\n').slice(0, -1);
  };

  test('a line every tenth of the epoch and one per epoch, no control characters', async () => {
    const s = new FakeStream(false);
    const p = new ProgressLogger(s, { epochs: 2 });
    run(p);
    await p.close();
    const lines = plain(s);
    expect(lines).toHaveLength(2 * (10 + 1));
    expect(lines[0]).toBe('epoch 1/2 10/100  ETA 0:23  4.0 steps/s  loss 5.500  adv 0.5000');
    expect(lines[4]).toBe('epoch 1/2 50/100  ETA 0:13  4.0 steps/s  loss 25.50  adv 0.5000');
    expect(lines[10]).toBe('epoch 1/2  100 steps  0:25  train/loss 0.4123  train/adv_loss_0 0.5000  val/accuracy 0.9000');
    expect(lines.filter((l) => / \d+\/100 /.test(l)).map((l) => Number(/ (\d+)\/100 /.exec(l)![1]))).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  });

  test('every', async () => {
    const s = new FakeStream(false);
    const p = new ProgressLogger(s, { every: 25 });
    run(p, { epochs: 3 });
    await p.close();
    expect(plain(s)).toHaveLength(3 * (4 + 1));
  });

  test('epoch length unknown: 1, 2, 5, 10, 20 ... then a tenth of the previous epoch', async () => {
    const s = new FakeStream(false);
    const p = new ProgressLogger(s);
    run(p, { epochs: 2, batches: 30, withTotal: false });
    await p.close();
    const lines = plain(s);
    expect(lines.map((l) => l.split('  ')[0])).toEqual([
      'epoch 1 1', 'epoch 1 2', 'epoch 1 5', 'epoch 1 10', 'epoch 1 20', 'epoch 1',
      'epoch 2 3/30', 'epoch 2 6/30', 'epoch 2 9/30', 'epoch 2 12/30', 'epoch 2 15/30', 'epoch 2 18/30', 'epoch 2 21/30', 'epoch 2 24/30', 'epoch 2 27/30', 'epoch 2 30/30', 'epoch 2',
    ]);
  });

  test('messages are plain lines', async () => {
    const s = new FakeStream(false);
    const p = new ProgressLogger(s);
    p.log({ kind: 'run-end', step: 0, epoch: 0, values: {}, time: 0, message: 'stopped\r early\x1b[1m' });
    await p.close();
    expect(plain(s)).toEqual(['stopped early[1m']);
  });
});

describe('ProgressLogger helpers and arguments', () => {
  test('formatting', () => {
    expect([0, 499, 12_000, 59_600, 61_000, 3_600_000, 3_723_000].map(formatDuration)).toEqual(['0:00', '0:00', '0:12', '1:00', '1:01', '1:00:00', '1:02:03']);
    expect(formatDuration(NaN)).toBe('-:--');
    expect([0.41234, 0.52, 1234.5, 1e-5, 2e6, 0, NaN].map(formatValue)).toEqual(['0.4123', '0.5200', '1235', '1.00e-5', '2.00e+6', '0', 'NaN']);
  });

  test('bad arguments name themselves', () => {
    expect(() => new ProgressLogger({} as never)).toThrow(/ProgressLogger: stream must be a writable stream/);
    expect(() => new ProgressLogger(new FakeStream(false), { every: 0 })).toThrow(/ProgressLogger: every must be an integer >= 1/);
    expect(() => new ProgressLogger(new FakeStream(false), { every: 0 })).toThrow(RangeError);
    expect(() => new ProgressLogger(new FakeStream(false), { epochs: 'x' as never })).toThrow(TypeError);
    expect(() => new ProgressLogger(new FakeStream(false), { evry: 3 } as never)).toThrow(/unknown option 'evry'/);
    const p = new ProgressLogger(new FakeStream(false));
    expect(() => p.log({ kind: 'batch', step: 1, epoch: 1, batch: -2, values: {}, time: 0 })).toThrow(/event.batch must be an integer >= 0/);
  });

  test('defaults to process.stdout', () => {
    expect(() => new ProgressLogger()).not.toThrow();
  });
});
