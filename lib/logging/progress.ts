// A progress display for the terminal: one redrawn line per epoch on a TTY, plain lines
// otherwise (CI logs, files). All timing comes from the events' `time`, so the output is
// a function of the events alone.
import * as is from '../core/is';
import { checkEvent, LogEvent, Logger } from './types';

/** Where ProgressLogger writes: process.stdout, process.stderr or anything with write(). */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Without a TTY: one line every `every` batches. Default: a tenth of the epoch (1, 2, 5, 10, 20, ... while its length is unknown). */
  every?: number;
  /** The total number of epochs, shown as `epoch 3/10`. */
  epochs?: number;
  /** The width of the bar in characters (default 20). */
  barWidth?: number;
  /** The least time between two redraws on a TTY, in ms (default 100). */
  redrawMs?: number;
}

/** How many recent step times the ETA and the rate average over. */
const WINDOW = 20;

/** `0:12`, `12:03`, `1:02:03`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-:--';
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Four significant digits, exponent form for very small or large magnitudes. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  return v.toPrecision(4);
}

function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '>1000';
  return perSecond >= 100 ? perSecond.toFixed(0) : perSecond.toPrecision(2);
}

/** Whether batch n is on the 1, 2, 5, 10, 20, 50, ... schedule. */
function onLogSchedule(n: number): boolean {
  if (n < 1) return false;
  let p = 1;
  while (p * 10 <= n) p *= 10;
  return n === p || n === 2 * p || n === 5 * p;
}

interface EpochState {
  epoch: number;
  batch: number;
  /** Known or estimated (the previous epoch's) number of batches. */
  total: number | undefined;
  start: number;
  sums: Map<string, number>;
  counts: Map<string, number>;
}

/**
 * Training progress. On a TTY: one line per epoch, redrawn with '\r' at most every
 * `redrawMs`, e.g. `epoch 3/10 [##########----------] 45/100  ETA 0:12  4.2 steps/s  loss 0.4123  adv 0.5200`
 * (ETA and rate from the mean of the last 20 step times; loss and adversarial losses are
 * running means over the epoch), then a final line with the epoch's metrics. Otherwise
 * plain lines with no control characters: one every `every` batches and one per epoch.
 */
export class ProgressLogger implements Logger {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly every: number | undefined;
  private readonly epochs: number | undefined;
  private readonly barWidth: number;
  private readonly redrawMs: number;
  private cur: EpochState | null = null;
  private lastTime = 0;
  private lastBatches: number | undefined;
  private stepTimes: number[] = [];
  private lastDraw = -Infinity;
  /** A bar is drawn on the TTY without its newline. */
  private pending = false;
  private closed = false;

  constructor(stream: ProgressStream = process.stdout, options?: ProgressOptions) {
    const where = 'ProgressLogger';
    if (typeof stream !== 'object' || stream === null || typeof stream.write !== 'function') {
      throw is.invalidType(where, 'stream', 'a writable stream (an object with write())', stream);
    }
    const o = is.options<ProgressOptions>(where, options, ['every', 'epochs', 'barWidth', 'redrawMs']);
    this.stream = stream;
    this.tty = stream.isTTY === true;
    this.every = o.every === undefined ? undefined : is.integer(where, 'every', o.every, 1);
    this.epochs = o.epochs === undefined ? undefined : is.integer(where, 'epochs', o.epochs, 1);
    this.barWidth = o.barWidth === undefined ? 20 : is.integer(where, 'barWidth', o.barWidth, 1);
    this.redrawMs = o.redrawMs === undefined ? 100 : is.finite(where, 'redrawMs', o.redrawMs);
    if (this.redrawMs < 0) throw is.invalidRange(where, 'redrawMs', '>= 0', o.redrawMs);
  }

  log(e: LogEvent): void {
    const where = 'ProgressLogger.log';
    if (this.closed) throw new Error(`${where}: the logger is closed`);
    checkEvent(where, e);
    if (e.kind === 'batch') this.onBatch(e);
    else if (e.kind === 'epoch') this.onEpoch(e);
    else if (e.kind === 'run-start') this.onRunStart(e);
    else this.endLine();
    if (e.message !== undefined) this.message(e.message);
    this.lastTime = e.time;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.endLine();
      this.closed = true;
    }
    return Promise.resolve();
  }

  private onRunStart(e: LogEvent): void {
    this.endLine();
    this.cur = null;
    this.stepTimes = [];
    this.lastTime = e.time;
  }

  private startEpoch(e: LogEvent): EpochState {
    this.endLine();
    this.lastDraw = -Infinity;
    return { epoch: e.epoch, batch: 0, total: e.batches ?? this.lastBatches, start: this.lastTime, sums: new Map(), counts: new Map() };
  }

  private onBatch(e: LogEvent): void {
    if (!this.cur || this.cur.epoch !== e.epoch) this.cur = this.startEpoch(e);
    const s = this.cur;
    // The first step of an epoch also holds the time since the last event (validation,
    // checkpoints, start-up), so it is left out of the step times.
    if (s.batch > 0) {
      this.stepTimes.push(Math.max(0, e.time - this.lastTime));
      if (this.stepTimes.length > WINDOW) this.stepTimes.shift();
    }
    s.batch = e.batch ?? s.batch + 1;
    if (e.batches !== undefined) s.total = e.batches;
    if (s.total !== undefined && s.batch > s.total) s.total = undefined; // the estimate was wrong
    for (const [k, v] of Object.entries(e.values)) {
      if (!Number.isFinite(v)) continue;
      s.sums.set(k, (s.sums.get(k) ?? 0) + v);
      s.counts.set(k, (s.counts.get(k) ?? 0) + 1);
    }
    if (this.tty) {
      const last = s.total !== undefined && s.batch === s.total;
      if (last || s.batch === 1 || e.time - this.lastDraw >= this.redrawMs) {
        this.draw(this.batchLine(s, true));
        this.lastDraw = e.time;
      }
    } else {
      const every = this.every ?? (s.total !== undefined ? Math.max(1, Math.round(s.total / 10)) : undefined);
      if (every !== undefined ? s.batch % every === 0 : onLogSchedule(s.batch)) this.stream.write(this.batchLine(s, false) + '\n');
    }
  }

  private onEpoch(e: LogEvent): void {
    const s = this.cur && this.cur.epoch === e.epoch ? this.cur : null;
    const parts = [this.epochLabel(e.epoch)];
    if (s) {
      parts.push(`${s.batch} steps`, formatDuration(e.time - s.start));
      this.lastBatches = s.batch;
    }
    for (const [k, v] of Object.entries(e.values)) parts.push(`${k} ${formatValue(v)}`);
    const line = parts.join('  ');
    if (this.tty) {
      this.draw(line);
      this.endLine();
    } else {
      this.stream.write(line + '\n');
    }
    this.cur = null;
  }

  private message(text: string): void {
    if (this.tty && this.pending) {
      this.stream.write('\r\x1b[K');
      this.pending = false;
      this.lastDraw = -Infinity; // the bar comes back on the next batch
    }
    this.stream.write((this.tty ? text : text.replace(/[\r\x1b]/g, '')) + '\n');
  }

  private epochLabel(epoch: number): string {
    return this.epochs !== undefined ? `epoch ${epoch}/${this.epochs}` : `epoch ${epoch}`;
  }

  private mean(s: EpochState, key: string): number | undefined {
    const n = s.counts.get(key);
    return n ? (s.sums.get(key) as number) / n : undefined;
  }

  private batchLine(s: EpochState, bar: boolean): string {
    const parts: string[] = [];
    let head = this.epochLabel(s.epoch);
    if (s.total !== undefined) {
      if (bar) {
        const filled = Math.min(this.barWidth, Math.round((s.batch / s.total) * this.barWidth));
        head += ` [${'#'.repeat(filled)}${'-'.repeat(this.barWidth - filled)}]`;
      }
      head += ` ${s.batch}/${s.total}`;
    } else {
      head += ` ${s.batch}`;
    }
    parts.push(head);
    const stepMs = this.stepTimes.length ? this.stepTimes.reduce((a, b) => a + b, 0) / this.stepTimes.length : undefined;
    if (s.total !== undefined) parts.push(`ETA ${stepMs === undefined ? '-:--' : formatDuration((s.total - s.batch) * stepMs)}`);
    if (stepMs !== undefined) parts.push(`${formatRate(stepMs > 0 ? 1000 / stepMs : Infinity)} steps/s`);
    const loss = this.mean(s, 'loss');
    if (loss !== undefined) parts.push(`loss ${formatValue(loss)}`);
    const adv: string[] = [];
    for (let k = 0; this.mean(s, `adv_loss_${k}`) !== undefined; k++) adv.push(formatValue(this.mean(s, `adv_loss_${k}`) as number));
    if (adv.length) parts.push(`adv ${adv.join(' ')}`);
    return parts.join('  ');
  }

  /** Redraws the current TTY line. */
  private draw(line: string): void {
    const cols = this.stream.columns;
    const text = cols && cols > 1 && line.length >= cols ? line.slice(0, cols - 1) : line;
    this.stream.write(`\r${text}\x1b[K`);
    this.pending = true;
  }

  private endLine(): void {
    if (this.pending) {
      this.stream.write('\n');
      this.pending = false;
    }
  }
}
