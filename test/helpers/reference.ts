// Runs test/python/reference.py (Debian's python3 with torch) and reads what it writes.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { tensor, Tensor } from '../../lib';

export const PYTHON = process.env.DROPATTACK_PYTHON ?? '/usr/bin/python3';
const SCRIPT = path.join(__dirname, '..', 'python', 'reference.py');

export interface TensorFile {
  file: string;
  dtype: 'float32' | 'int64';
  shape: number[];
}

export interface ReferenceMeta {
  method: string;
  inputs: { step: number; x: TensorFile; y: TensorFile }[];
  params: { name: string; shape: number[]; file: string }[];
  initial_params: { name: string; shape: number[]; file: string }[];
  losses: { step: number; clean: number | null; groups: (number | null)[]; skipped: number[]; applied: boolean; reason: string | null; grad_norm?: number }[];
}

export interface Reference {
  dir: string;
  meta: ReferenceMeta;
  read(t: TensorFile | { file: string; shape: number[] }, dtype?: 'float32' | 'int64'): Tensor;
}

const made: string[] = [];
process.on('exit', () => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

export function runReference(config: object): Reference {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dropattack-ref-'));
  made.push(dir);
  const configPath = path.join(dir, 'config.json');
  fs.writeFileSync(configPath, JSON.stringify(config));
  const out = path.join(dir, 'out');
  execFileSync(PYTHON, [SCRIPT, configPath, out], { stdio: ['ignore', 'pipe', 'pipe'] });
  const meta = JSON.parse(fs.readFileSync(path.join(out, 'meta.json'), 'utf8')) as ReferenceMeta;
  const read = (t: { file: string; shape: number[]; dtype?: string }, dtype?: 'float32' | 'int64'): Tensor => {
    const buf = fs.readFileSync(path.join(out, t.file));
    const kind = dtype ?? (t.dtype as 'float32' | 'int64') ?? 'float32';
    const copy = new ArrayBuffer(buf.length);
    new Uint8Array(copy).set(buf);
    const data = kind === 'int64' ? new BigInt64Array(copy) : new Float32Array(copy);
    return tensor(data, { shape: t.shape });
  };
  return { dir: out, meta, read };
}

/** max |a - b| */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  return a.sub(b).abs().max().item();
}
