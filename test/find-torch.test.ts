// LibTorch discovery (scripts/find-torch.js), against fake LibTorch directories and fake Pythons.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

interface Found {
  dir: string;
  version: string | null;
  source: string;
}
interface FindTorch {
  findTorch(o?: { env?: Record<string, string | undefined>; tried?: string[]; pythons?: string[] }): Found | null;
  describe(t: Found): string;
  notFoundMessage(tried: string[]): string;
  APT_LINE: string;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ft = require('../scripts/find-torch.js') as FindTorch;
const SCRIPT = path.join(__dirname, '..', 'scripts', 'find-torch.js');

let tmp: string;
let libtorch: string; // a fake LibTorch root
let cmakeDir: string; // its share/cmake/Torch

function fakePython(name: string, body: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'find-torch-'));
  libtorch = path.join(tmp, 'libtorch');
  cmakeDir = path.join(libtorch, 'share', 'cmake', 'Torch');
  fs.mkdirSync(cmakeDir, { recursive: true });
  fs.writeFileSync(path.join(cmakeDir, 'TorchConfig.cmake'), '# fake\n');
  fs.writeFileSync(path.join(cmakeDir, 'TorchConfigVersion.cmake'), 'set(PACKAGE_VERSION "9.8.7")\n');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('find-torch', () => {
  test('TORCH_DIR: the cmake directory itself, or a LibTorch root', () => {
    for (const dir of [cmakeDir, libtorch]) {
      const t = ft.findTorch({ env: { TORCH_DIR: dir }, pythons: [] });
      expect(t).toEqual({ dir: cmakeDir, version: '9.8.7', source: 'TORCH_DIR' });
      expect(ft.describe(t!)).toBe(`dropattack: LibTorch 9.8.7 from TORCH_DIR (${cmakeDir})`);
    }
  });

  test('a TORCH_DIR without a LibTorch is an error naming it, not passed over', () => {
    const bad = path.join(tmp, 'nothing-here');
    expect(() => ft.findTorch({ env: { TORCH_DIR: bad } })).toThrow(`TORCH_DIR=${bad} holds no LibTorch`);
    const r = spawnSync(process.execPath, [SCRIPT], { env: { ...process.env, TORCH_DIR: bad }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`TORCH_DIR=${bad} holds no LibTorch`);
  });

  test('the command prints the directory on stdout and the line on stderr', () => {
    const r = spawnSync(process.execPath, [SCRIPT], { env: { ...process.env, TORCH_DIR: libtorch }, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${cmakeDir}\n`);
    expect(r.stderr).toBe(`dropattack: LibTorch 9.8.7 from TORCH_DIR (${cmakeDir})\n`);
    const q = spawnSync(process.execPath, [SCRIPT, '--quiet'], { env: { ...process.env, TORCH_DIR: libtorch }, encoding: 'utf8' });
    expect([q.status, q.stdout, q.stderr]).toEqual([0, `${cmakeDir}\n`, '']);
  });

  test('a PyTorch with CMake files is used; Pythons without torch or without CMake files are passed over', () => {
    const noTorch = fakePython('py-none', 'exit 3');
    const broken = fakePython('py-broken', 'echo "ImportError: libtorch_cpu.so: cannot open" >&2; exit 1');
    const noCmake = fakePython('py-nocmake', `printf '%s\\n' ${tmp}/nowhere 1.13.0a0 /usr/lib/python3/dist-packages/torch/__init__.py`);
    const good = fakePython('py-good', `printf '%s\\n' ${path.join(libtorch, 'share', 'cmake')} 2.5.1+cpu ${libtorch}/__init__.py`);
    const tried: string[] = [];
    const t = ft.findTorch({ env: {}, tried, pythons: [noTorch, broken, noCmake, good] });
    expect(t).toEqual({ dir: cmakeDir, version: '2.5.1+cpu', source: `the PyTorch of ${good}` });
    expect(tried).toEqual([
      'TORCH_DIR: not set',
      `PyTorch: ${noTorch}: no torch module`,
      `PyTorch: ${broken}: import torch failed (ImportError: libtorch_cpu.so: cannot open)`,
      `PyTorch: ${noCmake}: torch 1.13.0a0 has no CMake files (${tmp}/nowhere/Torch), as Debian's python3-torch; its LibTorch is libtorch-dev`,
    ]);
  });

  test('without TORCH_DIR or a PyTorch: the distribution package, or a message with the apt line', () => {
    const tried: string[] = [];
    const t = ft.findTorch({ env: {}, tried, pythons: [fakePython('py-none2', 'exit 3')] });
    const dpkg = spawnSync('dpkg-query', ['-W', '-f=${Status}', 'libtorch-dev'], { encoding: 'utf8' });
    if (dpkg.status === 0 && dpkg.stdout.includes('install ok installed')) {
      expect(t?.source).toBe('the Debian package libtorch-dev');
      expect(fs.existsSync(path.join(t!.dir, 'TorchConfig.cmake'))).toBe(true);
    } else if (t === null) {
      expect(tried[tried.length - 1]).toMatch(/^distribution: /);
    }
    const msg = ft.notFoundMessage(['TORCH_DIR: not set']);
    expect(msg).toContain('sudo apt-get install -y --no-install-recommends libtorch-dev libopenblas0-pthread');
    expect(msg).toContain('TORCH_DIR=');
    expect(msg).toContain('  - TORCH_DIR: not set');
  });
});
