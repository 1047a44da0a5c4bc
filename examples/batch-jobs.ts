// A batch-job server: trains queued run configurations one after another while an HTTP
// endpoint keeps answering with the queue and the live progress. Training steps run on
// the thread pool, so the server stays responsive during training.
//
//   node dist/examples/batch-jobs.js [--port 8090] [--exit-when-done] run1.json run2.json ...
//   curl http://127.0.0.1:8090/status
//
// POST /jobs with a run configuration (JSON) queues another job.
import * as http from 'http';

import { readConfigFile } from '../lib/config';
import { parseRunConfig, runFromConfig, RunConfig } from '../lib/run';
import { LogEvent, Logger } from '../lib/logging';

interface Job {
  id: number;
  name: string;
  config: RunConfig;
  state: 'queued' | 'running' | 'done' | 'failed';
  progress?: { epoch: number; step: number; loss?: number; valAccuracy?: number; updated: number };
  result?: { bestValAccuracy: number | null; finalValAccuracy: number; seconds: number; dir: string };
  error?: string;
}

const jobs: Job[] = [];
let nextId = 1;
let running = false;

function progressLogger(job: Job): Logger {
  return {
    log(e: LogEvent) {
      const p = job.progress ?? { epoch: 0, step: 0, updated: 0 };
      p.epoch = e.epoch;
      p.step = e.step;
      if (e.values.loss !== undefined) p.loss = e.values.loss;
      if (e.values['val/accuracy'] !== undefined) p.valAccuracy = e.values['val/accuracy'];
      p.updated = Date.now();
      job.progress = p;
    },
    close: async () => undefined,
  };
}

async function drain(exitWhenDone: boolean, server: http.Server): Promise<void> {
  if (running) return;
  running = true;
  for (let job = jobs.find((j) => j.state === 'queued'); job; job = jobs.find((j) => j.state === 'queued')) {
    job.state = 'running';
    try {
      const r = await runFromConfig(job.config, { loggers: [progressLogger(job)] });
      job.result = { bestValAccuracy: r.best?.value ?? null, finalValAccuracy: r.final.accuracy, seconds: r.seconds, dir: r.dir };
      job.state = 'done';
    } catch (e) {
      job.error = (e as Error).message;
      job.state = 'failed';
    }
    console.log(`job ${job.id} (${job.name}): ${job.state}${job.error ? `: ${job.error}` : ''}`);
  }
  running = false;
  if (exitWhenDone) server.close();
}

function enqueue(raw: Record<string, unknown>, name: string): Job {
  const config = parseRunConfig(raw, []);
  config.output.progress = false;
  const job: Job = { id: nextId++, name: config.name ?? name, config, state: 'queued' };
  jobs.push(job);
  return job;
}

function view(j: Job) {
  return { id: j.id, name: j.name, state: j.state, progress: j.progress ?? null, result: j.result ?? null, error: j.error ?? null };
}

function main(): void {
  const argv = process.argv.slice(2);
  let port = 8090;
  let exitWhenDone = false;
  const files: string[] = [];
  for (let k = 0; k < argv.length; k++) {
    if (argv[k] === '--port') port = Number(argv[++k]);
    else if (argv[k] === '--exit-when-done') exitWhenDone = true;
    else files.push(argv[k]);
  }
  for (const f of files) enqueue(readConfigFile(f), f);
  const server = http.createServer((req, res) => {
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/status') {
      send(200, { time: Date.now(), running: jobs.filter((j) => j.state === 'running').map(view), jobs: jobs.map(view) });
    } else if (req.method === 'GET' && req.url === '/healthz') {
      send(200, { ok: true });
    } else if (req.method === 'POST' && req.url === '/jobs') {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        try {
          const job = enqueue(JSON.parse(body) as Record<string, unknown>, `job-${nextId}`);
          send(201, view(job));
          void drain(exitWhenDone, server);
        } catch (e) {
          send(400, { error: (e as Error).message });
        }
      });
    } else {
      send(404, { error: `no route ${req.method} ${req.url}` });
    }
  });
  server.listen(port, '127.0.0.1', () => {
    console.log(`batch-jobs: ${jobs.length} job(s) queued; status at http://127.0.0.1:${port}/status`);
    void drain(exitWhenDone, server);
  });
}

main();
