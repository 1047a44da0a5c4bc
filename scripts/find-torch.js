#!/usr/bin/env node
// LibTorch discovery, the one used by scripts/setup.sh and scripts/install.js. In order:
//   1. TORCH_DIR: a LibTorch's share/cmake/Torch directory, or a LibTorch root containing it;
//   2. a PyTorch install: torch.utils.cmake_prefix_path + /Torch, from `python3` on PATH, then
//      /usr/bin/python3 (a Debian python3-torch ships no CMake files and is passed over: its
//      LibTorch is the one in libtorch-dev);
//   3. the distribution's package: libtorch-dev (`dpkg -L`), else /usr/lib/<multiarch>/cmake/Torch
//      or /usr/share/cmake/Torch.
// As a command it prints the directory (for cmake's TORCH_DIR) on stdout and one line saying
// which LibTorch it is on stderr; with nothing found it explains what to install and exits 1
// (2 for a TORCH_DIR that holds no LibTorch). --quiet drops the line.
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const APT_LINE = 'sudo apt-get install -y --no-install-recommends libtorch-dev libopenblas0-pthread';

/** The directory holding TorchConfig.cmake among `dir`, `dir`/share/cmake/Torch and `dir`/Torch, or null. */
function torchCmakeDir(dir) {
  for (const d of [dir, path.join(dir, 'share', 'cmake', 'Torch'), path.join(dir, 'Torch')]) {
    if (fs.existsSync(path.join(d, 'TorchConfig.cmake')) || fs.existsSync(path.join(d, 'torch-config.cmake'))) {
      return path.resolve(d);
    }
  }
  return null;
}

/** LibTorch's version from TorchConfigVersion.cmake, or null. */
function torchVersion(cmakeDir) {
  try {
    const text = fs.readFileSync(path.join(cmakeDir, 'TorchConfigVersion.cmake'), 'utf8');
    const m = /set\(PACKAGE_VERSION\s+"([^"]+)"\)/.exec(text);
    return m ? m[1] : null;
  } catch {
    return null;
  }
}

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, cmd);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

const PY_PROBE = [
  'import importlib.util, sys',
  "spec = importlib.util.find_spec('torch')",
  "if spec is None: sys.exit(3)",
  'import torch',
  'print(torch.utils.cmake_prefix_path)',
  'print(torch.__version__)',
  'print(torch.__file__)',
].join('\n');

/** Asks one Python for its torch: { found, note }. */
function fromPython(python) {
  const r = spawnSync(python, ['-c', PY_PROBE], { encoding: 'utf8', timeout: 120000 });
  if (r.error) return { note: `${python}: ${r.error.code === 'ETIMEDOUT' ? 'timed out' : r.error.message}` };
  if (r.status === 3) return { note: `${python}: no torch module` };
  if (r.status !== 0) {
    const last = (r.stderr || '').trim().split('\n').pop();
    return { note: `${python}: import torch failed${last ? ` (${last})` : ''}` };
  }
  const [prefix, version, file] = r.stdout.trim().split('\n');
  const dir = prefix ? torchCmakeDir(path.join(prefix, 'Torch')) : null;
  if (!dir) {
    const debian = (file || '').startsWith('/usr/lib/python3/dist-packages/');
    return {
      note:
        `${python}: torch ${version} has no CMake files (${path.join(prefix || '?', 'Torch')})` +
        (debian ? ', as Debian\'s python3-torch; its LibTorch is libtorch-dev' : ''),
    };
  }
  return {
    found: { dir, version: version || torchVersion(dir), source: `the PyTorch of ${python}` },
  };
}

function multiarch() {
  const r = spawnSync('dpkg-architecture', ['-qDEB_HOST_MULTIARCH'], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  const gnu = { x64: 'x86_64', arm64: 'aarch64', ppc64: 'powerpc64le', s390x: 's390x', riscv64: 'riscv64' }[process.arch];
  return gnu ? `${gnu}-linux-gnu` : null;
}

/** The distribution's LibTorch: { found, note }. */
function fromDistribution() {
  const r = spawnSync('dpkg', ['-L', 'libtorch-dev'], { encoding: 'utf8' });
  if (r.status === 0) {
    const config = r.stdout.split('\n').find((l) => /\/cmake\/Torch\/TorchConfig\.cmake$/.test(l));
    const dir = config && torchCmakeDir(path.dirname(config));
    if (dir) return { found: { dir, version: torchVersion(dir), source: 'the Debian package libtorch-dev' } };
    return { note: 'libtorch-dev: installed without TorchConfig.cmake' };
  }
  const arch = multiarch();
  for (const d of [arch && `/usr/lib/${arch}/cmake/Torch`, '/usr/share/cmake/Torch'].filter(Boolean)) {
    const dir = torchCmakeDir(d);
    if (dir) return { found: { dir, version: torchVersion(dir), source: 'the system (no dpkg)' } };
  }
  return { note: r.error ? 'no dpkg, and no /usr/lib/<multiarch>/cmake/Torch or /usr/share/cmake/Torch' : 'libtorch-dev is not installed' };
}

/**
 * Finds a LibTorch. Returns { dir, version, source } (dir: the share/cmake/Torch directory),
 * or null with `tried` filled with what was looked at and why it did not fit.
 * A TORCH_DIR that holds no LibTorch throws (an explicit choice is not passed over).
 * options: env (default process.env), tried (an array to fill), pythons (the Pythons to ask,
 * default `python3` on PATH then /usr/bin/python3).
 */
function findTorch(options = {}) {
  const env = options.env || process.env;
  const tried = options.tried || [];
  if (env.TORCH_DIR) {
    const dir = torchCmakeDir(env.TORCH_DIR);
    if (!dir) {
      const err = new Error(
        `dropattack: TORCH_DIR=${env.TORCH_DIR} holds no LibTorch: expected TorchConfig.cmake in it or in ` +
          `${path.join(env.TORCH_DIR, 'share', 'cmake', 'Torch')}`,
      );
      err.code = 'EBADTORCHDIR';
      throw err;
    }
    return { dir, version: torchVersion(dir), source: 'TORCH_DIR' };
  }
  tried.push('TORCH_DIR: not set');

  const pythons = [];
  const onPath = which('python3');
  for (const p of options.pythons || [onPath, '/usr/bin/python3']) {
    if (!p || !fs.existsSync(p)) continue;
    let real = p;
    try {
      real = fs.realpathSync(p);
    } catch {
      // keep p
    }
    if (!pythons.some((q) => q.real === real)) pythons.push({ name: p === onPath ? `python3 (${p})` : p, exe: p, real });
  }
  if (pythons.length === 0) tried.push('PyTorch: no python3 on PATH or at /usr/bin/python3');
  for (const py of pythons) {
    const r = fromPython(py.exe);
    if (r.found) return r.found;
    tried.push(`PyTorch: ${r.note.replace(py.exe, py.name)}`);
  }

  const d = fromDistribution();
  if (d.found) return d.found;
  tried.push(`distribution: ${d.note}`);
  return null;
}

/** The one line saying which LibTorch is used. */
function describe(t) {
  return `dropattack: LibTorch ${t.version || '(unknown version)'} from ${t.source} (${t.dir})`;
}

/** What to do when no LibTorch is found. */
function notFoundMessage(tried) {
  return [
    'dropattack: no LibTorch found. Looked at:',
    ...tried.map((t) => `  - ${t}`),
    'Install Debian\'s LibTorch (Debian 12 or later, Ubuntu), then install dropattack again:',
    `  ${APT_LINE}`,
    'or point TORCH_DIR at a LibTorch (its root, or its share/cmake/Torch directory), e.g.:',
    '  TORCH_DIR=/opt/libtorch npm install dropattack',
  ].join('\n');
}

module.exports = { findTorch, describe, notFoundMessage, torchCmakeDir, torchVersion, APT_LINE };

if (require.main === module) {
  const quiet = process.argv.includes('--quiet');
  const tried = [];
  let t;
  try {
    t = findTorch({ tried });
  } catch (e) {
    if (e.code !== 'EBADTORCHDIR') throw e;
    console.error(e.message);
    process.exit(2);
  }
  if (!t) {
    if (!quiet) console.error(notFoundMessage(tried));
    process.exit(1);
  }
  if (!quiet) console.error(describe(t));
  console.log(t.dir);
}
