// `dropattack serve`: an HTTP batch-job server. Clients POST run configurations; the server
// trains them one at a time (or --concurrency N) through runFromConfig() while it keeps
// answering, because each training step runs on the thread pool.
//
// Every path in a job is confined: data.path, data.vectors and model.path name files under
// the data root, output.dir and the run's name name folders under the runs root, all
// resolved with realpath (symlinks included) and checked to stay inside. Bodies, the queue
// and the finished-job history are bounded; errors are JSON and never carry file contents.
// docs/serve.md describes the endpoints and the security model.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

import { ConfigError } from './config';
import { DataFormatError } from '../data/errors';
import { TorchError } from '../core/errors';
import { LogEvent, Logger } from '../logging/types';
import { parseRunConfig, prepareData, runFromConfig, RunConfig, RunSummary, SAFE_NAME, SAFE_NAME_DOC } from './run';
import { ATTACK_METHODS } from '../core/trainer';


export interface ServeOptions {
  /** Folder that jobs read from (data.path, data.vectors, model.path are relative to it). */
  dataRoot: string;
  /** Folder that jobs write to (output.dir is relative to it). */
  runsRoot: string;
  /** Default 127.0.0.1. Any other address than a loopback one needs `token`. */
  host?: string;
  /** Default 8090; 0 picks a free port. */
  port?: number;
  /** Bearer token every request must carry (`Authorization: Bearer <token>`); at least 16 characters. */
  token?: string;
  /** Jobs trained at the same time. Default 1. */
  concurrency?: number;
  /** Jobs waiting at most; one more is refused with 429. Default 16. */
  maxQueue?: number;
  /** Largest request body in bytes; a larger one is refused with 413. Default 1 MiB. */
  maxBody?: number;
  /** Finished jobs kept for GET /jobs (the oldest are forgotten first). Default 1000. */
  maxFinished?: number;
  /** Retry-After (seconds) sent with 429. Default 30. */
  retryAfter?: number;
  /** Milliseconds a client has to send a whole request. Default 30000. */
  requestTimeout?: number;
  /** Where the server's log lines go (job state changes, failures with their full cause). Default: stderr. */
  log?: (line: string) => void;
}

/** An error answered with an HTTP status and `{ error: message }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/** One epoch as GET /jobs/:id reports it. */
export interface EpochMetrics {
  epoch: number;
  trainLoss: number | null;
  valLoss: number | null;
  valAccuracy: number | null;
  valMacroF1: number | null;
}

/** A job as the endpoints report it. Paths are relative to the runs root. */
export interface JobView {
  id: number;
  name: string;
  method: string;
  state: JobState;
  cancelRequested: boolean;
  submitted: string;
  started: string | null;
  finished: string | null;
  progress: { epoch: number; epochs: number; batch: number; batches: number | null; step: number; loss: number | null } | null;
  metrics?: EpochMetrics[];
  result: {
    dir: string;
    epochs: number;
    best: { epoch: number; value: number; monitor: string } | null;
    final: { loss: number; accuracy: number; macroF1: number; examples: number };
    trainLoss: number;
    seconds: number;
  } | null;
  error: string | null;
}

interface Job {
  id: number;
  name: string;
  label: string;
  config: RunConfig;
  /** output.dir's folders under the runs root (checked names). */
  outputParts: string[];
  /** `outputParts/name/label`: two active jobs may not share it. */
  dirKey: string;
  state: JobState;
  phase: 'data' | 'setup' | 'training';
  controller: AbortController;
  submitted: number;
  started?: number;
  finished?: number;
  progress: JobView['progress'];
  metrics: EpochMetrics[];
  result: JobView['result'];
  error: string | null;
  /** The resolved files, to tell which field a data error belongs to. */
  files: { path?: string; validation?: string; vectors?: string; model?: string };
}

const isLoopbackHost = (host: string): boolean =>
  host === 'localhost' || host === '::1' || (net.isIPv4(host) && host.startsWith('127.'));

/** True when `p` is `root` or inside it (both absolute and resolved). */
function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

const bad = (field: string, message: string) => new HttpError(400, `${field}: ${message}`);

/** Checks a relative path's form (no absolute path, no `..`, no NUL) and returns its segments. */
function relativeSegments(field: string, value: unknown, root: string): string[] {
  if (typeof value !== 'string' || value.length === 0) throw bad(field, `must be a non-empty path relative to the ${root}`);
  if (value.length > 1024) throw bad(field, 'is longer than 1024 characters');
  if (value.includes('\0')) throw bad(field, 'must not contain a NUL character');
  if (value.includes('\\')) throw bad(field, 'must use / between folders, not \\');
  if (path.isAbsolute(value)) throw bad(field, `must be relative to the ${root}, not an absolute path`);
  const parts = value.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw bad(field, `must not contain '..' (it would leave the ${root})`);
  if (parts.length === 0) throw bad(field, `must name something inside the ${root}`);
  return parts;
}

/** Output folders are plain file names, as run names are (SAFE_NAME). */
function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !SAFE_NAME.test(value)) throw bad(field, `must be ${SAFE_NAME_DOC}`);
  return value;
}

/** The constant-time comparison of two secrets (hashed first so the lengths match). */
function sameSecret(a: string, b: string): boolean {
  const ha = crypto.createHash('sha256').update(a, 'utf8').digest();
  const hb = crypto.createHash('sha256').update(b, 'utf8').digest();
  return crypto.timingSafeEqual(ha, hb);
}

const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
const num = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? null : v);

/** The HTTP batch-job server; start it with {@link JobServer.start}. */
export class JobServer {
  readonly dataRoot: string;
  readonly runsRoot: string;
  readonly host: string;
  private readonly token: string | undefined;
  private readonly concurrency: number;
  private readonly maxQueue: number;
  private readonly maxBody: number;
  private readonly maxFinished: number;
  private readonly retryAfter: number;
  private readonly log: (line: string) => void;
  private readonly server: http.Server;
  private readonly jobs = new Map<number, Job>();
  private readonly queue: Job[] = [];
  private readonly running = new Set<Job>();
  private readonly runningDone = new Map<Job, Promise<void>>();
  private idleWaiters: (() => void)[] = [];
  private nextId = 1;
  private closing = false;
  private readonly startedAt = Date.now();
  private readonly rootNames: [string, string][];

  private constructor(options: ServeOptions, dataRoot: string, runsRoot: string) {
    this.dataRoot = dataRoot;
    this.runsRoot = runsRoot;
    this.host = options.host ?? '127.0.0.1';
    this.token = options.token;
    this.concurrency = options.concurrency ?? 1;
    this.maxQueue = options.maxQueue ?? 16;
    this.maxBody = options.maxBody ?? 1 << 20;
    this.maxFinished = options.maxFinished ?? 1000;
    this.retryAfter = options.retryAfter ?? 30;
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
    // Longest first, so a root inside the other is replaced by its own name.
    this.rootNames = (
      [
        [dataRoot, '<data-root>'],
        [runsRoot, '<runs-root>'],
        [path.resolve(options.dataRoot), '<data-root>'],
        [path.resolve(options.runsRoot), '<runs-root>'],
      ] as [string, string][]
    ).sort((a, b) => b[0].length - a[0].length);
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.requestTimeout = options.requestTimeout ?? 30000;
    this.server.headersTimeout = Math.min(this.server.requestTimeout, 10000);
    this.server.maxConnections = 256;
  }

  /** Checks the options, resolves the roots and starts listening. */
  static async start(options: ServeOptions): Promise<JobServer> {
    const host = options.host ?? '127.0.0.1';
    const positive = (flag: string, v: number | undefined, min: number) => {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < min)) throw new ConfigError(flag, `expected an integer >= ${min}, got ${v}`);
    };
    positive('--concurrency', options.concurrency, 1);
    positive('--max-queue', options.maxQueue, 1);
    positive('--max-body', options.maxBody, 1);
    positive('--port', options.port, 0);
    if (options.port !== undefined && options.port > 65535) throw new ConfigError('--port', `expected a port 0..65535, got ${options.port}`);
    if (options.token !== undefined && options.token.length < 16) throw new ConfigError('--token', 'must be at least 16 characters long');
    if (options.token !== undefined && !/^[\x21-\x7e]+$/.test(options.token)) throw new ConfigError('--token', 'must be printable ASCII without spaces');
    if (!isLoopbackHost(host) && options.token === undefined) {
      throw new ConfigError('--token', `is required to listen on '${host}', which is not a loopback address (set DROPATTACK_TOKEN or pass --token)`);
    }
    const root = async (flag: string, dir: string | undefined, write: boolean) => {
      if (typeof dir !== 'string' || dir === '') throw new ConfigError(flag, 'is required: the folder jobs ' + (write ? 'write to' : 'read from'));
      let real: string;
      try {
        real = await fs.promises.realpath(dir);
        if (!(await fs.promises.stat(real)).isDirectory()) throw new Error('not a folder');
        await fs.promises.access(real, write ? fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK : fs.constants.R_OK | fs.constants.X_OK);
      } catch {
        throw new ConfigError(flag, `'${dir}' must be an existing folder the server can ${write ? 'write to' : 'read'}`);
      }
      return real;
    };
    const dataRoot = await root('--data-root', options.dataRoot, false);
    const runsRoot = await root('--runs-root', options.runsRoot, true);
    const s = new JobServer({ ...options, host }, dataRoot, runsRoot);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(options.port ?? 8090, host, () => {
        s.server.off('error', reject);
        resolve();
      });
    });
    return s;
  }

  /** The port the server listens on. */
  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** `http://host:port`. */
  get url(): string {
    return `http://${net.isIPv6(this.host) ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /**
   * Validates a run configuration as POST /jobs does (the same confinement) and queues it.
   * Throws HttpError (400 bad field, 409 run folder busy, 429 queue full, 503 closing).
   */
  async submit(raw: unknown): Promise<JobView> {
    this.checkAccepting();
    // parseRunConfig rejects __proto__, constructor and prototype keys anywhere (a 400 below).
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new HttpError(400, 'job: the body must be a JSON object (a run configuration)');
    const given = raw as Record<string, unknown>;
    let config: RunConfig;
    try {
      config = parseRunConfig(given);
    } catch (e) {
      if (e instanceof TypeError || e instanceof RangeError) throw new HttpError(400, this.scrub((e as Error).message));
      throw e;
    }
    const name = config.name; // the schema holds it to SAFE_NAME
    const method = String(config.attack.method);
    if (!(ATTACK_METHODS as readonly string[]).includes(method)) {
      throw bad('config.attack.method', `expected one of ${ATTACK_METHODS.join(', ')}`);
    }
    if (config.training.threads !== undefined && config.training.threads > os.cpus().length) {
      throw bad('config.training.threads', `at most ${os.cpus().length} (the machine's cores); the setting applies to the whole server`);
    }
    const files: Job['files'] = {};
    if (config.data.path !== undefined) files.path = await this.resolveRead('config.data.path', config.data.path);
    if (config.data.vectors !== undefined) files.vectors = await this.resolveRead('config.data.vectors', config.data.vectors);
    if (config.data.validationPath !== undefined) {
      files.validation = await this.resolveRead('config.data.validationPath', config.data.validationPath);
    }
    if (config.model.path !== undefined) files.model = await this.resolveRead('config.model.path', config.model.path);
    const givenOutput = given.output as Record<string, unknown> | undefined;
    const outputParts = givenOutput?.dir === undefined ? [] : relativeSegments('config.output.dir', givenOutput.dir, 'runs root');
    outputParts.forEach((p, k) => checkName(`config.output.dir (folder ${k + 1})`, p));
    if (outputParts.length > 8) throw bad('config.output.dir', 'at most 8 folders deep');
    await this.checkWritePath('config.output.dir', [...outputParts, name, method]);
    this.checkAccepting();
    const dirKey = [...outputParts, name, method].join('/');
    for (const j of [...this.queue, ...this.running]) {
      if (j.dirKey === dirKey) throw new HttpError(409, `config.name: job ${j.id} (${j.state}) already writes to '${dirKey}'; use another name or output.dir`);
    }
    if (files.path !== undefined) config.data.path = files.path;
    if (files.vectors !== undefined) config.data.vectors = files.vectors;
    if (files.validation !== undefined) config.data.validationPath = files.validation;
    if (files.model !== undefined) config.model.path = files.model;
    config.output.progress = false;
    const job: Job = {
      id: this.nextId++,
      name,
      label: method,
      config,
      outputParts,
      dirKey,
      state: 'queued',
      phase: 'data',
      controller: new AbortController(),
      submitted: Date.now(),
      progress: null,
      metrics: [],
      result: null,
      error: null,
      files,
    };
    this.jobs.set(job.id, job);
    this.queue.push(job);
    this.log(`job ${job.id} (${job.name}): queued`);
    this.pump();
    return this.view(job, false);
  }

  /** All jobs, oldest first (without per-epoch metrics). */
  list(): JobView[] {
    return [...this.jobs.values()].map((j) => this.view(j, false));
  }

  /** One job with its per-epoch metrics, or undefined. */
  get(id: number): JobView | undefined {
    const j = this.jobs.get(id);
    return j && this.view(j, true);
  }

  /**
   * Cancels a job: a queued one at once; a running one stops after its current batch
   * (fit's abort; the last checkpoint stays intact). Undefined when there is no such job.
   */
  cancel(id: number): JobView | undefined {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    if (job.state === 'queued') {
      this.queue.splice(this.queue.indexOf(job), 1);
      this.finish(job, 'cancelled');
    } else if (job.state === 'running') {
      job.controller.abort();
    }
    return this.view(job, false);
  }

  /** Resolves when no job is queued or running. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops listening, cancels queued jobs, aborts running ones and waits for them. */
  async close(): Promise<void> {
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    for (const job of [...this.queue]) this.cancel(job.id);
    for (const job of this.running) job.controller.abort();
    await Promise.all(this.runningDone.values());
    this.server.closeAllConnections();
    await closed;
  }

  // ---- jobs ----

  private checkAccepting(): void {
    if (this.closing) throw new HttpError(503, 'the server is shutting down');
    if (this.queue.length >= this.maxQueue) {
      throw new HttpError(429, `the queue is full (${this.maxQueue} jobs waiting); try again later`, { 'retry-after': String(this.retryAfter) });
    }
  }

  private pump(): void {
    while (!this.closing && this.running.size < this.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running.add(job);
      job.state = 'running';
      job.started = Date.now();
      this.log(`job ${job.id} (${job.name}): running`);
      const done = this.execute(job).finally(() => {
        this.running.delete(job);
        this.runningDone.delete(job);
        this.pump();
        if (this.queue.length === 0 && this.running.size === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          waiters.forEach((w) => w());
        }
      });
      this.runningDone.set(job, done);
    }
  }

  private async execute(job: Job): Promise<void> {
    const signal = job.controller.signal;
    try {
      const data = await prepareData(job.config);
      if (signal.aborted) return this.finish(job, 'cancelled');
      job.phase = 'setup';
      job.config.output.dir = await this.makeRunDir(job);
      const summary = await runFromConfig(job.config, { data, label: job.label, loggers: [this.progressLogger(job)], signal });
      job.result = this.resultView(summary);
      this.finish(job, signal.aborted ? 'cancelled' : 'done');
    } catch (e) {
      if (signal.aborted) return this.finish(job, 'cancelled');
      job.error = this.publicError(job, e);
      this.finish(job, 'failed', `${job.error} [cause, server log only: ${JSON.stringify(this.scrub(String((e as Error)?.message ?? e)))}]`);
    }
  }

  private finish(job: Job, state: JobState, detail?: string): void {
    job.state = state;
    job.finished = Date.now();
    this.log(`job ${job.id} (${job.name}): ${state}${detail ? `: ${detail}` : ''}`);
    // Forget the oldest finished jobs beyond maxFinished.
    let finished = 0;
    for (const j of this.jobs.values()) if (j.finished !== undefined) finished++;
    for (const [id, j] of this.jobs) {
      if (finished <= this.maxFinished) break;
      if (j.finished !== undefined) {
        this.jobs.delete(id);
        finished--;
      }
    }
  }

  private progressLogger(job: Job): Logger {
    const epochs = job.config.training.epochs;
    return {
      log(e: LogEvent) {
        if (e.kind === 'run-start') job.phase = 'training';
        if (e.kind === 'batch') {
          job.progress = { epoch: e.epoch, epochs, batch: e.batch ?? 0, batches: e.batches ?? null, step: e.step, loss: num(e.values.loss) };
        } else if (e.kind === 'epoch') {
          job.metrics.push({
            epoch: e.epoch,
            trainLoss: num(e.values['train/loss']),
            valLoss: num(e.values['val/loss']),
            valAccuracy: num(e.values['val/accuracy']),
            valMacroF1: num(e.values['val/macroF1']),
          });
        }
      },
      close: async () => undefined,
    };
  }

  private resultView(r: RunSummary): JobView['result'] {
    return {
      dir: path.relative(this.runsRoot, r.dir).split(path.sep).join('/'),
      epochs: r.epochs,
      best: r.best && { epoch: r.best.epoch, value: r.best.value, monitor: r.best.monitor },
      final: { loss: r.final.loss, accuracy: r.final.accuracy, macroF1: r.final.macroF1, examples: r.final.examples },
      trainLoss: r.trainLoss,
      seconds: r.seconds,
    };
  }

  private view(j: Job, withMetrics: boolean): JobView {
    return {
      id: j.id,
      name: j.name,
      method: j.label,
      state: j.state,
      cancelRequested: j.controller.signal.aborted,
      submitted: iso(j.submitted) as string,
      started: iso(j.started),
      finished: iso(j.finished),
      progress: j.progress,
      ...(withMetrics ? { metrics: j.metrics } : {}),
      result: j.result,
      error: j.error,
    };
  }

  /**
   * What a client is told about a failure: the field and a generic cause. A data file's
   * bytes never appear (a parser's message may quote a line), nor do the roots' paths.
   */
  private publicError(job: Job, e: unknown): string {
    const err = e as NodeJS.ErrnoException;
    const code = typeof err?.code === 'string' ? err.code : undefined;
    const causes: Record<string, string> = {
      ENOENT: 'no such file or folder',
      EACCES: 'permission denied',
      EPERM: 'permission denied',
      EISDIR: 'is a folder',
      ENOSPC: 'no space left',
      EOUTSIDE: 'it resolves outside the runs root',
      ELINK: 'a folder on the way is a symbolic link',
    };
    const cause = code === undefined ? undefined : (causes[code] ?? `error ${code}`);
    if (job.phase === 'data') {
      const message = String(err?.message ?? '');
      const named = (file: string | undefined) => file !== undefined && (err instanceof DataFormatError ? err.file === file : message.includes(file));
      const field = named(job.files.vectors)
        ? 'config.data.vectors'
        : named(job.files.validation)
          ? 'config.data.validationPath'
          : job.files.path !== undefined
            ? 'config.data.path'
            : 'config.data.source';
      if (err instanceof DataFormatError) {
        // A missing column: named from the configuration, never from the file's header.
        const column = /^no column .* \((textColumn|labelColumn)\) in the header/.exec(err.reason)?.[1] as 'textColumn' | 'labelColumn' | undefined;
        if (column && field === 'config.data.path') {
          return `config.data.${column}: the file's header has no column ${JSON.stringify(job.config.data[column] ?? (column === 'textColumn' ? 'text' : 'label'))}`;
        }
        return `${field}: the data is malformed${err.line !== undefined ? ` (line or record ${err.line})` : ''}`;
      }
      return `${field}: the data could not be loaded (${cause ?? 'unreadable or invalid for this source and its columns'})`;
    }
    if (job.phase === 'setup') {
      if (code) return `config.output.dir: the run folder could not be written (${cause})`;
      if (job.config.model.kind === 'torchscript' && (err instanceof TorchError || /Module\.load|moduleLoad/.test(String(err?.stack)))) {
        return 'config.model.path: the file could not be loaded as a TorchScript model';
      }
      if (err instanceof TypeError || err instanceof RangeError || err instanceof TorchError) return this.brief(err.message);
      return 'setting up the run failed';
    }
    if (code) return `training failed: a run file could not be written (${cause})`;
    if (err instanceof TypeError || err instanceof RangeError || err instanceof TorchError) return `training failed: ${this.brief(err.message)}`;
    return 'training failed';
  }

  /** The first line of a message, without the roots' paths, at most 300 characters. */
  private brief(message: string): string {
    const first = this.scrub(message).split('\n')[0];
    return first.length > 300 ? `${first.slice(0, 300)}...` : first;
  }

  private scrub(message: string): string {
    let out = message;
    for (const [p, label] of this.rootNames) out = out.split(p).join(label);
    return out;
  }

  // ---- paths ----

  /** A file under the data root: form checked, realpath inside the root, a regular readable file. */
  private async resolveRead(field: string, value: unknown): Promise<string> {
    const parts = relativeSegments(field, value, 'data root');
    let real: string;
    try {
      real = await fs.promises.realpath(path.join(this.dataRoot, ...parts));
    } catch {
      throw bad(field, 'no such file under the data root');
    }
    if (!inside(this.dataRoot, real)) throw bad(field, 'resolves (through a symbolic link) outside the data root');
    try {
      if (!(await fs.promises.stat(real)).isFile()) throw new Error();
      await fs.promises.access(real, fs.constants.R_OK);
    } catch {
      throw bad(field, 'is not a readable regular file under the data root');
    }
    return real;
  }

  /** The existing part of runs-root/parts... must resolve inside the runs root, and be folders. */
  private async checkWritePath(field: string, parts: string[]): Promise<void> {
    let cur = this.runsRoot;
    for (let k = 0; k < parts.length; k++) {
      let real: string;
      try {
        real = await fs.promises.realpath(path.join(cur, parts[k]));
      } catch {
        return; // does not exist yet: created at the job's start, inside `cur`
      }
      if (!inside(this.runsRoot, real)) throw bad(field, 'resolves (through a symbolic link) outside the runs root');
      if (!(await fs.promises.stat(real)).isDirectory()) throw bad(field, `'${parts.slice(0, k + 1).join('/')}' exists under the runs root and is not a folder`);
      cur = real;
    }
  }

  /**
   * Creates runs-root/output.dir/name/label one folder at a time, each resolved and checked
   * to stay inside the runs root; returns the resolved output.dir for runFromConfig.
   */
  private async makeRunDir(job: Job): Promise<string> {
    let cur = this.runsRoot;
    let outputDir = cur;
    const parts = [...job.outputParts, job.name, job.label];
    for (let k = 0; k < parts.length; k++) {
      const next = path.join(cur, parts[k]);
      try {
        await fs.promises.mkdir(next);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const real = await fs.promises.realpath(next);
      if (!inside(this.runsRoot, real) || !(await fs.promises.lstat(real)).isDirectory()) {
        throw Object.assign(new Error('a run folder resolves outside the runs root'), { code: 'EOUTSIDE' });
      }
      cur = real;
      if (k === job.outputParts.length - 1) outputDir = real;
    }
    // runFromConfig joins output.dir/name/label: the folders checked above.
    if (path.join(outputDir, job.name, job.label) !== cur) {
      throw Object.assign(new Error('a run folder is a symbolic link'), { code: 'ELINK' });
    }
    return outputDir;
  }

  // ---- HTTP ----

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      if (res.headersSent || res.destroyed) return;
      const text = JSON.stringify(body);
      const h: Record<string, string | number> = { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers };
      // A body not read to the end is not read at all: the connection closes after the answer.
      if (!req.complete) h.connection = 'close';
      res.writeHead(status, h);
      res.end(text);
    };
    try {
      this.checkHost(req);
      this.checkAuth(req);
      const url = req.url ?? '';
      if (!url.startsWith('/')) throw new HttpError(400, 'the request target must be a path');
      const pathname = url.split('?')[0];
      const method = req.method ?? '';
      if (pathname === '/health') {
        if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'use GET', { allow: 'GET, HEAD' });
        send(200, { ok: true, queued: this.queue.length, running: this.running.size, uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000) });
      } else if (pathname === '/jobs') {
        if (method === 'GET') send(200, { jobs: this.list() });
        else if (method === 'POST') {
          const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
          if (type !== 'application/json') throw new HttpError(415, 'the body must be JSON (content-type: application/json)');
          this.checkAccepting(); // before reading the body
          const body = await this.readBody(req);
          let raw: unknown;
          try {
            raw = JSON.parse(body.toString('utf8'));
          } catch {
            throw new HttpError(400, 'job: the body is not valid JSON');
          }
          send(201, await this.submit(raw));
        } else throw new HttpError(405, 'use GET or POST', { allow: 'GET, POST' });
      } else {
        const m = /^\/jobs\/([1-9][0-9]{0,8})$/.exec(pathname);
        if (!m) throw new HttpError(404, 'no such endpoint (GET /health, GET|POST /jobs, GET|DELETE /jobs/<id>)');
        const id = Number(m[1]);
        if (method === 'GET') {
          const v = this.get(id);
          if (!v) throw new HttpError(404, `no job ${id}`);
          send(200, v);
        } else if (method === 'DELETE') {
          const v = this.cancel(id);
          if (!v) throw new HttpError(404, `no job ${id}`);
          send(v.state === 'running' ? 202 : 200, v);
        } else throw new HttpError(405, 'use GET or DELETE', { allow: 'GET, DELETE' });
      }
    } catch (e) {
      if (e instanceof HttpError) send(e.status, { error: e.message }, e.headers);
      else {
        this.log(`internal error on ${req.method} ${JSON.stringify(req.url?.slice(0, 200))}: ${(e as Error)?.stack ?? e}`);
        send(500, { error: 'internal error' });
      }
    }
  }

  /** Without a token the server only answers requests addressed to a loopback name (no DNS rebinding). */
  private checkHost(req: http.IncomingMessage): void {
    if (this.token !== undefined) return;
    const raw = String(req.headers.host ?? '');
    const host = raw.startsWith('[') ? raw.slice(1, raw.indexOf(']')) : raw.replace(/:\d*$/, '');
    if (!isLoopbackHost(host.toLowerCase())) throw new HttpError(403, 'the Host header must name a loopback address (localhost, 127.0.0.1, [::1])');
  }

  private checkAuth(req: http.IncomingMessage): void {
    if (this.token === undefined) return;
    const m = /^Bearer +(\S+) *$/i.exec(String(req.headers.authorization ?? ''));
    if (!m || !sameSecret(m[1], this.token)) {
      throw new HttpError(401, 'a valid bearer token is required (Authorization: Bearer <token>)', { 'www-authenticate': 'Bearer' });
    }
  }

  /** Reads a body up to maxBody bytes; past the limit it stops reading and answers 413. */
  private readBody(req: http.IncomingMessage): Promise<Buffer> {
    const tooLarge = () => new HttpError(413, `the body is larger than ${this.maxBody} bytes`);
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > this.maxBody) return Promise.reject(tooLarge());
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const stop = () => {
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        req.off('aborted', onError);
      };
      const onData = (c: Buffer) => {
        size += c.length;
        if (size > this.maxBody) {
          stop();
          req.pause();
          chunks.length = 0;
          reject(tooLarge());
        } else chunks.push(c);
      };
      const onEnd = () => {
        stop();
        resolve(Buffer.concat(chunks));
      };
      const onError = () => {
        stop();
        reject(new HttpError(400, 'the request was cut short'));
      };
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('error', onError);
      req.on('aborted', onError);
    });
  }
}

const SERVE_USAGE = `usage: dropattack serve --data-root DIR --runs-root DIR [--host 127.0.0.1] [--port 8090]
                       [--token TOKEN] [--concurrency 1] [--max-queue 16] [--max-body 1048576]

Jobs read files only under --data-root and write only under --runs-root. Listening on an
address other than a loopback one needs a token (--token or DROPATTACK_TOKEN), checked as
Authorization: Bearer. See docs/serve.md.`;

/** Parses `dropattack serve` flags into ServeOptions (the token may come from DROPATTACK_TOKEN). */
export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeOptions | 'help' {
  const o: Partial<ServeOptions> = {};
  const int = (flag: string, v: string) => {
    if (!/^\d+$/.test(v)) throw new ConfigError(flag, `expected a whole number, got '${v}'`);
    return Number(v);
  };
  for (let k = 0; k < argv.length; k++) {
    const [flag, inline] = argv[k].split(/=(.*)/s, 2);
    if (flag === '--help' || flag === '-h') return 'help';
    const value = () => {
      const v = inline ?? argv[++k];
      if (v === undefined) throw new ConfigError(flag, 'needs a value');
      return v;
    };
    if (flag === '--data-root') o.dataRoot = value();
    else if (flag === '--runs-root') o.runsRoot = value();
    else if (flag === '--host') o.host = value();
    else if (flag === '--port') o.port = int(flag, value());
    else if (flag === '--token') o.token = value();
    else if (flag === '--concurrency') o.concurrency = int(flag, value());
    else if (flag === '--max-queue') o.maxQueue = int(flag, value());
    else if (flag === '--max-body') o.maxBody = int(flag, value());
    else throw new ConfigError(flag, `unknown option (run 'dropattack serve --help' for usage)`);
  }
  if (o.token === undefined && env.DROPATTACK_TOKEN) o.token = env.DROPATTACK_TOKEN;
  if (!o.dataRoot) throw new ConfigError('--data-root', `is required (run 'dropattack serve --help' for usage)`);
  if (!o.runsRoot) throw new ConfigError('--runs-root', `is required (run 'dropattack serve --help' for usage)`);
  return o as ServeOptions;
}

/** `dropattack serve ...`: runs until SIGINT or SIGTERM, then cancels the jobs and exits. */
export async function serveMain(argv: string[]): Promise<number> {
  const options = parseServeArgs(argv);
  if (options === 'help') {
    console.log(SERVE_USAGE);
    return 0;
  }
  const server = await JobServer.start(options);
  console.log(`dropattack serve: listening on ${server.url} (data root ${server.dataRoot}, runs root ${server.runsRoot}${options.token ? ', bearer token required' : ''})`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      console.log(`dropattack serve: ${signal}, stopping (running jobs stop after their current batch)`);
      void server.close().then(resolve);
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  return 0;
}
