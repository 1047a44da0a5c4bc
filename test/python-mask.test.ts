import { execFileSync } from 'child_process';
import * as path from 'path';

import { dropMask } from '../lib';
import { u8 } from './helpers/util';

// Debian's python3 (with python3-torch's NumPy), not whatever python3 is first on PATH.
const PYTHON = process.env.DROPATTACK_PYTHON ?? '/usr/bin/python3';
const SCRIPT = path.join(__dirname, '..', 'python', 'dropattack_mask.py');

describe('the Python mask (python/dropattack_mask.py)', () => {
  test.each([
    [1000, 0.5, 0n, 0n],
    [4099, 0.3, 123456789n, 42n],
    [257, 0.9, (1n << 64n) - 1n, (1n << 40n) + 7n],
    [64, 1, 5n, 5n],
    [64, 0, 5n, 5n],
  ])('numel %i p %p seed %p counter %p equals the native mask', (numel, p, seed, counter) => {
    const out = execFileSync(PYTHON, [SCRIPT, String(numel), String(p), String(seed), String(counter)], { encoding: 'utf8' }).trim();
    const native = Array.from(u8(dropMask(numel, { p, seed, counter }))).join('');
    expect(out).toHaveLength(numel);
    expect(out).toBe(native);
  });
});
