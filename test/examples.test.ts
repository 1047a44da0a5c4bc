// The batch-job example at small size: two queued runs train one after another while the
// HTTP endpoints keep answering. Paths in the configurations are relative to the roots.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';

const get = (port: number, p: string) =>
  new Promise<{ status: number; body: unknown }>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, timeout: 2000 }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(data) }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });

test('batch jobs train in turn while /health and /jobs keep answering', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-jobs-'));
  const runsRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-jobs-runs-'));
  const csv = path.join(dir, 'data.csv');
  const rows = ['text,label'];
  for (let i = 0; i < 600; i++) rows.push(`"word${i % 17} filler text number ${i}${i % 2 ? ' bonus prize' : ''}",${i % 2 ? 'a' : 'b'}`);
  fs.writeFileSync(csv, rows.join('\n'));
  const configs = [1, 2].map((n) => {
    const file = path.join(dir, `job${n}.json`);
    fs.writeFileSync(
      file,
      JSON.stringify({
        name: `job${n}`,
        data: { source: 'csv', path: path.basename(csv), batchSize: 8, maxLength: 12 },
        model: { kind: 'textrnn', embedDim: 16, hiddenSize: 16 },
        optimizer: { type: 'adam', lr: 0.01 },
        attack: { method: 'dropattack', k: 2, groups: [{ targets: 'embed.weight', epsilon: 1, p: 0.5 }] },
        training: { epochs: 3 },
        output: { dir: 'runs' },
      }),
    );
    return file;
  });
  const port = 18000 + (process.pid % 1000);
  const script = path.join(__dirname, '..', 'dist', 'examples', 'batch-jobs.js');
  const args = ['--port', String(port), '--data-root', dir, '--runs-root', runsRoot, '--exit-when-done', ...configs];
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const exited = new Promise<number>((r) => child.on('exit', (code) => r(code ?? -1)));
  let answeredWhileTraining = 0;
  let last: { jobs: { state: string; result: { final: { accuracy: number } } | null }[] } | null = null;
  const deadline = Date.now() + 90000;
  let done = false;
  void exited.then(() => (done = true));
  while (!done && Date.now() < deadline) {
    try {
      const h = await get(port, '/health');
      expect(h.status).toBe(200);
      if ((h.body as { running: number }).running > 0) answeredWhileTraining++;
      const r = await get(port, '/jobs');
      expect(r.status).toBe(200);
      last = r.body as typeof last;
    } catch {
      // not listening yet, or already closed
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(await exited).toBe(0);
  expect(output).toMatch(/job 1 \(job1\): done/);
  expect(output).toMatch(/job 2 \(job2\): done/);
  expect(answeredWhileTraining).toBeGreaterThan(5);
  expect(last!.jobs.length).toBe(2);
  for (const n of [1, 2]) expect(fs.existsSync(path.join(runsRoot, 'runs', `job${n}`, 'dropattack', 'summary.json'))).toBe(true);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(runsRoot, { recursive: true, force: true });
}, 120000);
