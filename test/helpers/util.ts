import * as fs from 'fs';
import * as os from 'os';
import * as pathLib from 'path';

import { Tensor } from '../../lib';

export const u8 = (t: Tensor): Uint8Array => t.toTypedArray() as Uint8Array;
export const f32 = (t: Tensor): Float32Array => t.toTypedArray() as Float32Array;
export const f64 = (t: Tensor): Float64Array => t.toTypedArray() as Float64Array;
export const i64 = (t: Tensor): BigInt64Array => t.toTypedArray() as BigInt64Array;

/** The raw bytes of a tensor's data (float16/bfloat16 included), for bit-exact comparisons. */
export function bytes(t: Tensor): Buffer {
  const dtype = t.dtype;
  if (dtype === 'float16' || dtype === 'bfloat16') {
    // float32 represents every float16/bfloat16 value exactly (NaN payloads aside).
    const a = t.toTypedArray() as Float32Array;
    return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  }
  const a = t.toTypedArray();
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Count of true entries of a 0/1 array. */
export const count = (a: Uint8Array): number => a.reduce((s, v) => s + v, 0);

/** A deterministic pseudo-random float in [-1, 1) stream for building test data. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

/**
 * A scratch folder for one test file, made before its tests and removed after them (it
 * registers the jest hooks): `path(name)` is a file in it, `write(name, content)` writes one.
 */
export function scratchDir(prefix: string): { readonly dir: string; path: (name: string) => string; write: (name: string, content: string | Buffer) => string } {
  let dir = '';
  beforeAll(() => {
    dir = fs.mkdtempSync(pathLib.join(os.tmpdir(), prefix));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    path: (name) => pathLib.join(dir, name),
    write: (name, content) => {
      const f = pathLib.join(dir, name);
      fs.writeFileSync(f, content);
      return f;
    },
  };
}
