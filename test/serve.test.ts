// `dropattack serve` (lib/app/serve.ts) on 127.0.0.1 with ephemeral ports: traversal attempts
// (../, absolute paths, symbolic links out of the roots, URL-encoded names), prototype
// keys, oversize bodies, a flood past the queue limit, bearer tokens, cancellation, and a
// small job that trains to completion. A secret file next to the roots must never be read
// into a response, and nothing outside the runs root may be written.
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';

import { main } from '../lib/app/cli';
import { ConfigError } from '../lib/app/config';
import { JobServer, JobView, parseServeArgs } from '../lib/app/serve';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  body: Record<string, unknown>;
}

/** Every response body any test received: none may contain a secret. */
const seen: string[] = [];

function request(port: number, method: string, target: string, options: { body?: string | object; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    const headers: Record<string, string | number> = { ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}), ...options.headers };
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, timeout: 10000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        seen.push(text);
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // checked by the caller through `text`
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed });
      });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${target}`)));
    req.end(body);
  });
}

/**
 * Sends up to `total` bytes of body in 64 KiB chunks (chunked, or with a declared length)
 * and stops at the first response. Returns the status and the bytes written until then.
 */
function sendLarge(port: number, total: number, declareLength: boolean): Promise<{ status: number; sent: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': 'application/json' };
    if (declareLength) headers['content-length'] = total;
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/jobs', headers });
    let sent = 0;
    let answered = false;
    const chunk = Buffer.alloc(64 << 10, 0x20);
    req.on('response', (res) => {
      answered = true;
      const at = sent;
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        seen.push(text);
        resolve({ status: res.statusCode ?? 0, sent: at, text });
      });
    });
    req.on('error', (e) => {
      if (!answered) reject(e); // EPIPE / ECONNRESET after the answer are expected
    });
    if (declareLength) {
      req.flushHeaders();
      return; // the answer must come before any body byte
    }
    const pump = () => {
      while (!answered && sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!answered) req.end();
    };
    pump();
  });
}

/** Every path under `dir` (relative), with sizes of files, sorted: a listing to compare. */
function listing(dir: string, skip: string[] = []): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (skip.includes(rel)) continue;
      if (e.isSymbolicLink()) out.push(`${rel} -> ${fs.readlinkSync(p)}`);
      else if (e.isDirectory()) {
        out.push(`${rel}/`);
        walk(p);
      } else out.push(`${rel} ${fs.statSync(p).size}`);
    }
  };
  walk(dir);
  return out.sort();
}

function csv(rows: number, seed: number): string {
  const words = ['meeting', 'tomorrow', 'report', 'lunch', 'project', 'budget', 'review', 'notes'];
  let s = seed;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0);
  const lines = ['text,label'];
  for (let i = 0; i < rows; i++) {
    const spam = i % 2 === 1;
    const body = Array.from({ length: 4 + (next() % 4) }, () => words[next() % words.length]);
    if (spam) body.push(next() % 2 ? 'refund' : 'winner');
    lines.push(`${body.join(' ')},${spam ? 'spam' : 'ham'}`);
  }
  return lines.join('\n') + '\n';
}

/** The name rule's message: lib/app/serve.ts's, or the run schema's when that checks names first. */
const NAME_RULE = /A-Z a-z 0-9|plain file name/;

const job = (name: string, data: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name,
  data: { source: 'csv', batchSize: 16, maxLength: 12, validation: 0.25, ...data },
  model: { kind: 'textrnn', embedDim: 8, hiddenSize: 8 },
  optimizer: { type: 'adam', lr: 0.01 },
  attack: { method: 'dropattack', k: 1, groups: [{ targets: 'embed.weight', epsilon: 1, p: 0.5 }] },
  training: { epochs: 1 },
  output: { tensorboard: false },
  ...extra,
});

async function waitFor(port: number, id: number, states: string[], seconds: number): Promise<JobView> {
  const deadline = Date.now() + seconds * 1000;
  for (let k = 0; Date.now() < deadline && k < 10000; k++) {
    const r = await request(port, 'GET', `/jobs/${id}`);
    expect(r.status).toBe(200);
    if (states.includes(r.body.state as string)) return r.body as unknown as JobView;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`job ${id} did not reach ${states.join('/')} in ${seconds} s`);
}

describe('dropattack serve', () => {
  const SECRET = `TOPSECRET-${process.pid}-7f3a91`;
  const MARKER = `INSIDEMARKER-${process.pid}-c4e2`;
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-serve-')));
  const dataRoot = path.join(base, 'data');
  const runsRoot = path.join(base, 'runs');
  const outside = path.join(base, 'outside');
  const secretFile = path.join(outside, 'secret.csv');
  let server: JobServer;
  let port: number;
  let before: string[];
  const logLines: string[] = [];

  beforeAll(async () => {
    fs.mkdirSync(dataRoot);
    fs.mkdirSync(runsRoot);
    fs.mkdirSync(outside);
    // A file outside both roots that would parse as training data (an /etc/shadow stand-in).
    fs.writeFileSync(secretFile, `${SECRET}:x:0:0,label\n${SECRET} words here,a\n${SECRET} more words,b\n`);
    fs.writeFileSync(path.join(dataRoot, 'train.csv'), csv(96, 7));
    fs.writeFileSync(path.join(dataRoot, 'long.csv'), csv(400, 11));
    // Inside the root but malformed: its header and a broken row carry a marker that must not be echoed.
    fs.writeFileSync(path.join(dataRoot, 'wrong-columns.csv'), `${MARKER},other\nx,y\n`);
    fs.writeFileSync(path.join(dataRoot, 'broken.csv'), `text,label\nfine,a\n"${MARKER} unterminated,b\n`);
    fs.writeFileSync(path.join(dataRoot, '..%2Foutside%2Fsecret.csv.txt'), 'decoy');
    fs.symlinkSync(secretFile, path.join(dataRoot, 'link.csv'));
    fs.symlinkSync(outside, path.join(dataRoot, 'linkdir'));
    fs.symlinkSync(outside, path.join(runsRoot, 'escape'));
    before = listing(base, ['runs']);
    server = await JobServer.start({ dataRoot, runsRoot, port: 0, log: (l) => logLines.push(l) });
    port = server.port;
  });

  afterAll(async () => {
    await server?.close();
    fs.rmSync(base, { recursive: true, force: true });
  });

  test('health answers', async () => {
    const r = await request(port, 'GET', '/health');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, queued: 0, running: 0 });
    expect(r.headers['content-type']).toMatch(/^application\/json/);
  });

  test.each([
    ['parent folder', { data: { path: '../outside/secret.csv' } }, 'config.data.path', /'\.\.'/],
    ['absolute path', { data: { path: secretFile } }, 'config.data.path', /absolute/],
    ['/etc/shadow', { data: { path: '/etc/shadow' } }, 'config.data.path', /absolute/],
    ['symlink to a file outside', { data: { path: 'link.csv' } }, 'config.data.path', /outside the data root/],
    ['symlinked folder outside', { data: { path: 'linkdir/secret.csv' } }, 'config.data.path', /outside the data root/],
    ['URL-encoded ../', { data: { path: '..%2Foutside%2Fsecret.csv' } }, 'config.data.path', /no such file/],
    ['URL-encoded dots', { data: { path: '%2e%2e/outside/secret.csv' } }, 'config.data.path', /no such file/],
    ['dot segments', { data: { path: './a/../../outside/secret.csv' } }, 'config.data.path', /'\.\.'/],
    ['a folder', { data: { path: '.' } }, 'config.data.path', /inside the data root/],
    ['NUL byte', { data: { path: 'train.csv\u0000' } }, 'config.data.path', /NUL/],
    ['backslashes', { data: { path: '..\\outside\\secret.csv' } }, 'config.data.path', /\//],
    ['vectors outside', { data: { path: 'train.csv', vectors: '../outside/secret.csv' } }, 'config.data.vectors', /'\.\.'/],
    ['TorchScript model outside', { data: { path: 'train.csv' }, model: { kind: 'torchscript', path: '/etc/passwd' } }, 'config.model.path', /absolute/],
    ['absolute output.dir', { data: { path: 'train.csv' }, output: { dir: path.join(outside, 'written') } }, 'config.output.dir', /absolute/],
    ['output.dir ../', { data: { path: 'train.csv' }, output: { dir: '../outside' } }, 'config.output.dir', /'\.\.'/],
    ['output.dir through a symlink', { data: { path: 'train.csv' }, output: { dir: 'escape/x' } }, 'config.output.dir', /outside the runs root/],
    ['name with ../', { data: { path: 'train.csv' }, name: '../evil' }, 'config.name', NAME_RULE],
    ['name ..', { data: { path: 'train.csv' }, name: '..' }, 'config.name', NAME_RULE],
    ['name with a slash', { data: { path: 'train.csv' }, name: 'a/b' }, 'config.name', NAME_RULE],
    ['name too long', { data: { path: 'train.csv' }, name: 'n'.repeat(129) }, 'config.name', NAME_RULE],
    ['method ..', { data: { path: 'train.csv' }, attack: { method: '..' } }, 'config.attack.method', /expected one of/],
  ])('rejects %s with 400 naming the field', async (_what, overrides, field, why) => {
    const { data, ...rest } = overrides as { data: Record<string, unknown> } & Record<string, unknown>;
    const body = { ...job('probe', data), ...rest };
    const r = await request(port, 'POST', '/jobs', { body });
    expect(r.status).toBe(400);
    expect(typeof r.body.error).toBe('string');
    expect(r.body.error as string).toContain(field);
    expect(r.body.error as string).toMatch(why);
    expect(r.text).not.toContain(SECRET);
    expect(r.text).not.toContain(base); // no server paths either
  });

  test('prototype keys anywhere in the job are refused', async () => {
    const good = JSON.stringify(job('proto', { path: 'train.csv' }));
    for (const [text, key] of [
      [`{"__proto__":{"polluted":1},${good.slice(1)}`, '__proto__'],
      [good.replace('"source":"csv"', '"source":"csv","constructor":{"prototype":{"x":1}}'), 'constructor'],
      [good.replace('"groups":[{', '"groups":[{"prototype":1,'), 'prototype'],
    ] as const) {
      const r = await request(port, 'POST', '/jobs', { body: text });
      expect(r.status).toBe(400);
      expect(r.body.error).toContain(key);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(server.list().length).toBe(0);
  });

  test('bad requests get JSON errors', async () => {
    const notJson = await request(port, 'POST', '/jobs', { body: '{"name": ' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toMatch(/not valid JSON/);
    const array = await request(port, 'POST', '/jobs', { body: '[1,2]' });
    expect(array.status).toBe(400);
    const text = await request(port, 'POST', '/jobs', { body: '{}', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
    const unknownField = await request(port, 'POST', '/jobs', { body: { ...job('x', { path: 'train.csv' }), extra: 1 } });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.error).toContain('config.extra');
    for (const target of ['/jobs/..%2F..%2Fetc%2Fpasswd', '/jobs/%2e%2e', '/../../etc/passwd', '/jobs/0', '/jobs/1/../1', '/status', '/jobs/1x']) {
      const r = await request(port, 'GET', target);
      expect([400, 404]).toContain(r.status);
      expect(typeof r.body.error).toBe('string');
    }
    expect((await request(port, 'GET', '/jobs/999')).status).toBe(404);
    expect((await request(port, 'DELETE', '/jobs/999')).status).toBe(404);
    const wrongMethod = await request(port, 'PUT', '/jobs');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('GET, POST');
    // Without a token, only requests addressed to a loopback name are answered (no DNS rebinding).
    const rebound = await request(port, 'GET', '/jobs', { headers: { host: 'attacker.example:80' } });
    expect(rebound.status).toBe(403);
    expect((await request(port, 'GET', '/health', { headers: { host: `localhost:${port}` } })).status).toBe(200);
  });

  test('bodies over the limit get 413 without being read to the end', async () => {
    const big = 64 << 20;
    const chunked = await sendLarge(port, big, false);
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.text).error).toMatch(/larger than 1048576 bytes/);
    // Answered after ~1 MiB (plus what the sockets buffer), not after 64 MiB.
    expect(chunked.sent).toBeGreaterThan(1 << 20);
    expect(chunked.sent).toBeLessThan(24 << 20);
    const declared = await sendLarge(port, big, true);
    expect(declared.status).toBe(413);
    expect(declared.sent).toBe(0);
    // The server still answers.
    expect((await request(port, 'GET', '/health')).status).toBe(200);
  });

  test('a small job trains to completion and reports its metrics', async () => {
    const r = await request(port, 'POST', '/jobs', { body: job('small', { path: 'train.csv' }, { output: { dir: 'team/a', tensorboard: false } }) });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ name: 'small', method: 'dropattack' });
    const id = r.body.id as number;
    // The same run folder while the first job is active: 409 (201 only if it had already finished).
    const conflict = await request(port, 'POST', '/jobs', { body: job('small', { path: 'train.csv' }, { output: { dir: 'team/a', tensorboard: false } }) });
    expect([409, 201]).toContain(conflict.status);
    if (conflict.status === 409) expect(conflict.body.error).toMatch(new RegExp(`^config.name: job ${id} \\((queued|running)\\) already writes to 'team/a/small/dropattack'`));
    else await waitFor(port, conflict.body.id as number, ['done'], 60);
    const done = await waitFor(port, id, ['done', 'failed', 'cancelled'], 60);
    expect(done.error).toBeNull();
    expect(done.state).toBe('done');
    // The independent record: the summary runFromConfig wrote into the run folder.
    const dir = path.join(runsRoot, 'team', 'a', 'small', 'dropattack');
    const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
    expect(done.result!.dir).toBe('team/a/small/dropattack');
    expect(done.result!.epochs).toBe(1);
    expect(done.result!.final).toEqual({ loss: summary.final.loss, accuracy: summary.final.accuracy, macroF1: summary.final.macroF1, examples: summary.final.examples });
    expect(done.result!.final.examples).toBe(24); // 25% of 96 rows
    expect(done.result!.final.accuracy).toBeGreaterThanOrEqual(0);
    expect(done.result!.final.accuracy).toBeLessThanOrEqual(1);
    expect(done.result!.trainLoss).toBeCloseTo(summary.trainLoss, 12);
    expect(done.metrics).toHaveLength(1);
    expect(done.metrics![0]).toEqual({
      epoch: 1,
      trainLoss: summary.history[0].trainLoss,
      valLoss: summary.final.loss,
      valAccuracy: summary.final.accuracy,
      valMacroF1: summary.final.macroF1,
    });
    expect(done.progress).toMatchObject({ epoch: 1, epochs: 1, batch: summary.history[0].steps + summary.history[0].notApplied });
    expect(done.progress!.batch).toBeGreaterThanOrEqual(5); // 72 training rows in batches of 16
    const list = await request(port, 'GET', '/jobs');
    expect((list.body.jobs as JobView[]).find((j) => j.id === id)!.state).toBe('done');
  }, 90000);

  test('data-file errors name the field and a generic cause, never the bytes', async () => {
    const ids: number[] = [];
    for (const [name, file] of [
      ['wrongcols', 'wrong-columns.csv'],
      ['broken', 'broken.csv'],
    ]) {
      const r = await request(port, 'POST', '/jobs', { body: job(name, { path: file, onBadRow: 'fail' }) });
      expect(r.status).toBe(201);
      ids.push(r.body.id as number);
    }
    const wrong = await waitFor(port, ids[0], ['done', 'failed', 'cancelled'], 30);
    expect(wrong.state).toBe('failed');
    expect(wrong.error).toBe(`config.data.textColumn: the file's header has no column "text"`);
    const broken = await waitFor(port, ids[1], ['done', 'failed', 'cancelled'], 30);
    expect(broken.state).toBe('failed');
    expect(broken.error).toMatch(/^config\.data\.path: the data is malformed/);
    for (const id of ids) expect(JSON.stringify((await request(port, 'GET', `/jobs/${id}`)).body)).not.toContain(MARKER);
    // No run folder for a job whose data failed.
    expect(fs.existsSync(path.join(runsRoot, 'broken'))).toBe(false);
  }, 60000);

  test('a flood past the queue limit gets 429; cancel works queued and running; /health answers while training', async () => {
    // A long job occupies the single worker.
    const longRun = await request(port, 'POST', '/jobs', { body: job('long', { path: 'long.csv', batchSize: 4 }, { training: { epochs: 200 } }) });
    expect(longRun.status).toBe(201);
    const longId = longRun.body.id as number;
    await waitFor(port, longId, ['running'], 30);
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline && !(server.get(longId)!.progress?.batch ?? 0)) await new Promise((r) => setTimeout(r, 20));
    expect(server.get(longId)!.progress!.batch).toBeGreaterThan(0);
    // /health while the job trains: prompt answers.
    let slowest = 0;
    for (let k = 0; k < 10; k++) {
      const t0 = Date.now();
      const h = await request(port, 'GET', '/health');
      slowest = Math.max(slowest, Date.now() - t0);
      expect(h.status).toBe(200);
      expect(h.body.running).toBe(1);
    }
    expect(slowest).toBeLessThan(2000);
    const flood = await Promise.all(Array.from({ length: 40 }, (_, k) => request(port, 'POST', '/jobs', { body: job(`flood${k}`, { path: 'train.csv' }) })));
    const accepted = flood.filter((r) => r.status === 201);
    const refused = flood.filter((r) => r.status === 429);
    expect(accepted.length).toBe(16);
    expect(refused.length).toBe(24);
    for (const r of refused) {
      expect(r.headers['retry-after']).toBe('30');
      expect(r.body.error).toMatch(/queue is full/);
    }
    expect(server.get(longId)!.state).toBe('running');
    // Cancel the queued ones (200, at once), then the running one (202, after its batch).
    for (const r of accepted) {
      const c = await request(port, 'DELETE', `/jobs/${r.body.id}`);
      expect(c.status).toBe(200);
      expect(c.body.state).toBe('cancelled');
    }
    const c = await request(port, 'DELETE', `/jobs/${longId}`);
    expect(c.status).toBe(202);
    expect(c.body.cancelRequested).toBe(true);
    const cancelled = await waitFor(port, longId, ['cancelled', 'done', 'failed'], 30);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.progress!.epoch).toBeLessThan(200);
    await server.idle();
    const h = await request(port, 'GET', '/health');
    expect(h.body).toMatchObject({ queued: 0, running: 0 });
    // The flood's jobs never started: no folders for them.
    for (const r of accepted) expect(fs.existsSync(path.join(runsRoot, r.body.name as string))).toBe(false);
  }, 120000);

  test('with a token: missing or wrong tokens get 401, the right one passes', async () => {
    const token = 'a-long-test-token-0123456789';
    const guarded = await JobServer.start({ dataRoot, runsRoot, port: 0, token, log: () => undefined });
    try {
      const p = guarded.port;
      const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token-0123456789abc' }, { authorization: `Basic ${token}` }, { authorization: `Bearer ${token}x` }, { authorization: 'Bearer' }];
      for (const headers of attempts) {
        for (const [method, target] of [
          ['GET', '/health'],
          ['GET', '/jobs'],
          ['POST', '/jobs'],
          ['DELETE', '/jobs/1'],
        ]) {
          const r = await request(p, method, target, { headers, ...(method === 'POST' ? { body: job('t', { path: 'train.csv' }) } : {}) });
          expect(r.status).toBe(401);
          expect(r.headers['www-authenticate']).toBe('Bearer');
          expect(r.body.error).toMatch(/bearer token/);
        }
      }
      expect(guarded.list()).toHaveLength(0);
      const ok = await request(p, 'GET', '/health', { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
      const traversal = await request(p, 'POST', '/jobs', { headers: { authorization: `Bearer ${token}` }, body: job('t', { path: '../outside/secret.csv' }) });
      expect(traversal.status).toBe(400);
    } finally {
      await guarded.close();
    }
  });

  test('listening off loopback needs a token; options are checked', async () => {
    await expect(JobServer.start({ dataRoot, runsRoot, host: '0.0.0.0', port: 0 })).rejects.toThrow(/--token: is required/);
    await expect(main(['serve', '--host', '0.0.0.0', '--port', '0', '--data-root', dataRoot, '--runs-root', runsRoot])).rejects.toThrow(/--token: is required/);
    await expect(JobServer.start({ dataRoot, runsRoot, port: 0, token: 'short' })).rejects.toThrow(/at least 16/);
    await expect(JobServer.start({ dataRoot: path.join(base, 'missing'), runsRoot, port: 0 })).rejects.toThrow(/--data-root/);
    expect(() => parseServeArgs(['--runs-root', runsRoot])).toThrow(ConfigError);
    expect(() => parseServeArgs(['--data-root', dataRoot, '--runs-root', runsRoot, '--port', 'x'])).toThrow(/--port/);
    const o = parseServeArgs(['--data-root', dataRoot, '--runs-root=' + runsRoot, '--max-queue', '3'], { DROPATTACK_TOKEN: 'from-the-environment-123' });
    expect(o).toMatchObject({ dataRoot, runsRoot, maxQueue: 3, token: 'from-the-environment-123' });
  });

  test('nothing outside the runs root was written, and no secret was ever answered', () => {
    expect(listing(base, ['runs'])).toEqual(before);
    expect(fs.existsSync(path.join(outside, 'written'))).toBe(false);
    // The runs root holds only the runs that started (and the symlink placed there).
    expect(fs.readdirSync(runsRoot).sort()).toEqual(['escape', 'long', 'team']);
    expect(fs.readdirSync(path.join(runsRoot, 'team', 'a'))).toEqual(['small']);
    expect(seen.length).toBeGreaterThan(100);
    for (const text of seen) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(MARKER);
    }
    // The server log carries the full causes for the operator.
    expect(logLines.some((l) => /job \d+ \(small\): done/.test(l))).toBe(true);
  });
});
