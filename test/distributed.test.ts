// Data-parallel training across processes on loopback (c10d, Gloo): 2 processes with a
// batch of 32 each against 1 process with the batch of 64, replicas identical after every
// step, a dead rank ending the job, an unreachable store named in the error, and resume
// refusing another world size.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { distributedInfo, fit, freePort, launchLocal, Module, ProcessGroup, tensor, Trainer } from '../lib';

const WORKER = path.join(__dirname, 'fixtures', 'dist-worker.js');
const available = distributedInfo().available;
const describeIf = available ? describe : describe.skip;

interface Run {
  params: Record<string, number[]>;
  checksums: number[];
  world: number;
  allReduce?: ({ buckets: number; startedInBackward: number } | null)[];
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-dist-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Runs the worker alone (no distributed environment). */
function single(mode: string, steps: number): Promise<Run> {
  const out = path.join(tmp, `single-${mode}.json`);
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: '1' };
    for (const k of ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT']) delete env[k];
    const child = spawn(process.execPath, [WORKER, out, mode, String(steps)], { env, stdio: ['ignore', 'inherit', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(fs.readFileSync(out, 'utf8')) as Run) : reject(new Error(`single ${mode}: ${code}: ${err}`))));
  });
}

/** Runs `n` workers through the launcher. */
async function job(n: number, mode: string, steps: number, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const out = path.join(tmp, `job-${n}-${mode}-${Object.values(env).join('-')}.json`);
  const r = await launchLocal(n, [WORKER, out, mode, String(steps)], { env: { OMP_NUM_THREADS: '1', ...env } });
  if (r.code !== 0) throw new Error(`job ${mode}: worker ${JSON.stringify(r.failed)}`);
  return JSON.parse(fs.readFileSync(out, 'utf8')) as Run;
}

function maxDiff(a: Run, b: Run): number {
  let m = 0;
  for (const name of Object.keys(a.params)) {
    const x = a.params[name];
    const y = b.params[name];
    expect(y).toHaveLength(x.length);
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  }
  return m;
}

describeIf('distributed training (2 processes, loopback)', () => {
  jest.setTimeout(120000);
  const STEPS = 6;

  test('plain training: 2 x batch 32 equals 1 x batch 64, replicas identical every step', async () => {
    const [one, two] = await Promise.all([single('plain', STEPS), job(2, 'plain', STEPS)]);
    expect(two.world).toBe(2);
    expect(two.checksums).toHaveLength(STEPS);
    // The parameters moved (a run that did nothing would match trivially).
    const initial = Module.build({ kind: 'mlp', inputDim: 16, hiddenSizes: [32], numClasses: 4, dropout: 0 }, { seed: 7 });
    const start: Run = { params: {}, checksums: [], world: 1 };
    for (const [name, p] of initial.namedParameters()) start.params[name] = Array.from(p.toTypedArray() as Float32Array);
    expect(maxDiff(one, start)).toBeGreaterThan(1e-2);
    expect(maxDiff(one, two)).toBeLessThan(1e-6);
  });

  test("DropAttack with the 'allreduced' direction equals 1 process; 'local' does not", async () => {
    const one = await single('allreduced', STEPS);
    const two = await job(2, 'allreduced', STEPS);
    expect(maxDiff(one, two)).toBeLessThan(1e-6);
    // Each rank's own gradient as the direction is another method: it must differ.
    const local = await job(2, 'local', STEPS);
    expect(maxDiff(one, local)).toBeGreaterThan(1e-5);
  });

  test('the all-reduce overlapped with the backward gives the same parameters, bit for bit, as after it', async () => {
    for (const mode of ['plain', 'allreduced']) {
      const [on, off] = await Promise.all([job(2, mode, STEPS), job(2, mode, STEPS, { DIST_OVERLAP: '0' })]);
      // Several buckets (bucketMB 0.001), every one started during the last backward pass
      // when overlapping (every parameter gets a gradient there), none otherwise.
      for (const a of on.allReduce ?? []) {
        expect(a?.buckets).toBeGreaterThan(1);
        expect(a?.startedInBackward).toBe(a?.buckets);
      }
      for (const a of off.allReduce ?? []) expect(a?.startedInBackward).toBe(0);
      expect(on.allReduce).toHaveLength(STEPS);
      expect(off.checksums).toEqual(on.checksums);
      expect(maxDiff(on, off)).toBe(0);
    }
  });

  test('micro-batches: 2 processes x 2 micro-batches of 16 equal 1 process with 64, the all-reduce only on the update', async () => {
    const [one, two] = await Promise.all([single('plain', STEPS), job(2, 'accum', STEPS)]);
    expect(maxDiff(one, two)).toBeLessThan(1e-6);
    for (const a of two.allReduce ?? []) expect(a?.startedInBackward).toBe(a?.buckets);
    expect(two.allReduce).toHaveLength(STEPS);
  });

  test('a non-finite loss on one rank makes every rank skip that update, and the replicas stay identical', async () => {
    // The worker checks each rank's result and the replicas' checksums after every step.
    const two = await job(2, 'nan', 4);
    expect(two.checksums).toHaveLength(4);
    expect(two.checksums[1]).toBe(two.checksums[0]); // the skipped update changed nothing
    expect(two.checksums[2]).not.toBe(two.checksums[1]);
  });

  test('a killed rank ends the job with an error, not a hang', async () => {
    // Without the launcher: rank 0 must notice by itself that rank 1 is gone.
    const port = await freePort();
    const out = path.join(tmp, 'die.json');
    const started = Date.now();
    const results = await Promise.all(
      [0, 1].map(
        (rank) =>
          new Promise<{ code: number | null; signal: string | null; err: string }>((resolve) => {
            const env = { ...process.env, RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), DIST_TIMEOUT_MS: '30000' };
            const child = spawn(process.execPath, [WORKER, out, 'die', '10'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
            let err = '';
            child.stderr.on('data', (c) => (err += c));
            child.on('exit', (code, signal) => resolve({ code, signal, err }));
          }),
      ),
    );
    expect(results[1].signal).toBe('SIGKILL');
    expect(results[0].code).toBe(1);
    expect(results[0].err).toMatch(/rank 0: distributed: .*failed on rank 0/);
    expect(Date.now() - started).toBeLessThan(60000);
    // Through the launcher: the job fails and names the rank that died.
    const r = await launchLocal(2, [WORKER, out, 'die', '10'], { env: { OMP_NUM_THREADS: '1', DIST_TIMEOUT_MS: '30000' }, killGraceMs: 2000 });
    expect(r.code).not.toBe(0);
    expect(r.failed).not.toBeNull();
  });

  test('a rank that cannot reach the store fails naming the address', async () => {
    const port = await freePort();
    await expect(ProcessGroup.init({ rank: 1, worldSize: 2, masterAddr: '127.0.0.1', masterPort: port, timeoutMs: 1500 })).rejects.toThrow(
      new RegExp(`rank 1 could not reach the rendezvous store at 127\\.0\\.0\\.1:${port}`),
    );
  });

  test('one process is a group of 1: collectives and a trainer work, bad options are refused', async () => {
    const port = await freePort();
    const g = await ProcessGroup.init({ rank: 0, worldSize: 1, masterPort: port, timeoutMs: 5000 });
    expect([g.rank, g.worldSize, g.backend]).toEqual([0, 1, 'gloo']);
    const t = tensor(new Float32Array([1, 2, 3]));
    await g.allReduce(t, 'mean');
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([1, 2, 3]);
    const m = Module.build({ kind: 'mlp', inputDim: 4, hiddenSizes: [], numClasses: 2 }, { seed: 1 });
    expect(() => new Trainer(m, { optimizer: { type: 'sgd', lr: 0.1 }, distributed: { group: g, direction: 'global' as 'local' } })).toThrow(/direction must be one of 'local', 'allreduced'/);
    expect(() => new Trainer(m, { optimizer: { type: 'sgd', lr: 0.1 }, distributed: { group: {} as ProcessGroup } })).toThrow(TypeError);
    const tr = new Trainer(m, { optimizer: { type: 'sgd', lr: 0.1 }, distributed: { group: g } });
    const r = await tr.step(tensor(new Float32Array(8), { shape: [2, 4] }), tensor(new BigInt64Array(2)), { timePhases: true });
    expect(r.applied).toBe(true);
    expect(r.times?.communication).toBeGreaterThan(0);
    g.close();
    await expect(tr.step(tensor(new Float32Array(8), { shape: [2, 4] }), tensor(new BigInt64Array(2)))).rejects.toThrow(/closed/);
    await expect(g.barrier()).rejects.toThrow(/closed/);
  });
});

describeIf('dropattack train --nproc', () => {
  jest.setTimeout(180000);

  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const clean: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: '1', ...env };
      for (const k of ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT']) if (!(k in env)) delete clean[k];
      const child = spawn(process.execPath, [path.join(__dirname, '..', 'dist', 'lib', 'app', 'cli.js'), ...args], { env: clean, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c) => (out += c));
      child.stderr.on('data', (c) => (out += c));
      child.on('exit', (code) => resolve({ code, out }));
    });

  test('2 local workers train one run; rank 0 alone writes it; resume needs the same world size', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'cli-'));
    const rows = ['text,label'];
    for (let i = 0; i < 200; i++) rows.push(`"word${i % 13} some text ${i}${i % 2 ? ' prize offer' : ''}",${i % 2 ? 'spam' : 'ham'}`);
    fs.writeFileSync(path.join(dir, 'data.csv'), rows.join('\n'));
    const config = path.join(dir, 'run.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        name: 'dist',
        data: { source: 'csv', path: path.join(dir, 'data.csv'), batchSize: 8, maxLength: 10 },
        model: { kind: 'textcnn', embedDim: 8, numFilters: 4 },
        optimizer: { type: 'adam', lr: 0.01 },
        attack: { method: 'dropattack', k: 1, groups: [{ targets: 'embed.weight', epsilon: 1, p: 0.5 }] },
        training: { epochs: 2, distributed: { direction: 'allreduced', timeoutMs: 60000 } },
        output: { dir: path.join(dir, 'runs'), progress: false },
      }),
    );
    const r = await cli(['train', '--config', config, '--nproc', '2']);
    expect(r.out).toContain('launching 2 local worker processes');
    expect(r.code).toBe(0);
    const run = path.join(dir, 'runs', 'dist', 'dropattack');
    const state = JSON.parse(fs.readFileSync(path.join(run, 'checkpoints', 'last', 'state.json'), 'utf8')) as { worldSize: number; epoch: number };
    expect(state).toMatchObject({ worldSize: 2, epoch: 2 });
    // One writer: one log with one run-start event.
    const log = fs.readFileSync(path.join(run, 'log.jsonl'), 'utf8');
    expect(log.match(/"run-start"/g)).toHaveLength(1);
    // The run's summary table is printed once (by rank 0).
    expect(r.out.match(/best val acc/g)).toHaveLength(1);
    // Resuming in one process is refused, naming both world sizes.
    const again = await cli(['train', '--config', config, '--resume', '--set', 'training.epochs=3']);
    expect(again.code).toBe(1);
    expect(again.out).toMatch(/written by a run of 2 process\(es\), but this run has 1/);
    // --nproc inside a job is a usage error.
    const inside = await cli(['train', '--config', config, '--nproc', '2'], { WORLD_SIZE: '2', RANK: '1' });
    expect(inside.code).toBe(2);
    expect(inside.out).toMatch(/--nproc.*already rank 1 of a job of 2/);
  });
});

test('resume refuses a checkpoint of another world size', async () => {
  const dir = path.join(tmp, 'ckpt');
  const m = Module.build({ kind: 'mlp', inputDim: 4, hiddenSizes: [], numClasses: 2 }, { seed: 1 });
  const trainer = new Trainer(m, { optimizer: { type: 'sgd', lr: 0.1 } });
  const batches = () => [{ inputs: [tensor(new Float32Array(8), { shape: [2, 4] })], target: tensor(new BigInt64Array(2)) }];
  await fit(trainer, { epochs: 1, train: batches, checkpoint: { dir } });
  const file = path.join(dir, 'last', 'state.json');
  const state = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  expect(state.worldSize).toBeUndefined(); // one process: the file is as before
  fs.writeFileSync(file, JSON.stringify({ ...state, worldSize: 2 }));
  await expect(fit(trainer, { epochs: 2, train: batches, resume: dir })).rejects.toThrow(/written by a run of 2 process\(es\), but this run has 1/);
});
