#!/usr/bin/env node
// `npm install dropattack`: makes the native addon available, in this order:
//   1. DROPATTACK_BINARY, when set (it must exist and load);
//   2. prebuilds/<platform>-<arch>/dropattack.node inside the package, when it loads here
//      (it needs the LibTorch it was built against);
//   3. otherwise a build from source with cmake-js, into build/, against the LibTorch that
//      scripts/find-torch.js finds (TORCH_DIR, a PyTorch install, Debian's libtorch-dev).
//      An earlier build there (`npm rebuild dropattack`) is brought up to date incrementally,
//      or configured from scratch when the LibTorch found is another one.
// `npm install --build-from-source` (or DROPATTACK_BUILD_FROM_SOURCE=1) goes straight to 3.
// With no LibTorch it prints what to install and exits 1.
//
// In the development checkout (a git work tree with test/) this does nothing: scripts/setup.sh
// builds the addon there, into the shared build/, only when it is stale, so that `npm ci`
// (which setup.sh itself runs) never starts a second, redundant build.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const { findTorch, describe, notFoundMessage } = require('./find-torch');

const root = path.join(__dirname, '..');
const rel = (p) => path.relative(root, p) || '.';
const say = (msg) => console.log(`dropattack: ${msg}`);

function fail(msg) {
  console.error(msg.startsWith('dropattack:') ? msg : `dropattack: ${msg}`);
  process.exit(1);
}

function isDevelopmentCheckout() {
  return fs.existsSync(path.join(root, '.git')) && fs.existsSync(path.join(root, 'test'));
}

/** Loads an addon in a child process: null when it loads, else the first line of the error. */
function loadError(file) {
  const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1]).backends()', file], { encoding: 'utf8' });
  if (r.status === 0) return null;
  const lines = (r.stderr || r.error?.message || 'unknown error').split('\n').map((l) => l.trim());
  return lines.find((l) => /Error|error:|cannot open/.test(l)) || lines.find((l) => l) || `exit code ${r.status}`;
}

function cachedTorchDir(buildDir) {
  try {
    const m = /^Torch_DIR:[A-Z]+=(.*)$/m.exec(fs.readFileSync(path.join(buildDir, 'CMakeCache.txt'), 'utf8'));
    return m ? m[1] : null;
  } catch {
    return null;
  }
}

function jobs() {
  if (process.env.DROPATTACK_JOBS) return Math.max(1, parseInt(process.env.DROPATTACK_JOBS, 10) || 1);
  const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  // A LibTorch translation unit takes 1 to 2 GB to compile.
  return Math.max(1, Math.min(cpus, Math.floor(os.totalmem() / 2 ** 31)));
}

function buildFromSource() {
  const tried = [];
  let torch;
  try {
    torch = findTorch({ tried });
  } catch (e) {
    if (e.code === 'EBADTORCHDIR') fail(e.message);
    throw e;
  }
  if (!torch) fail(notFoundMessage(tried));
  console.log(describe(torch));

  const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
  if (cmake.error || cmake.status !== 0) {
    fail(
      'building the addon needs cmake (>= 3.18) and a C++17 compiler on PATH; on Debian/Ubuntu:\n' +
        '  sudo apt-get install -y --no-install-recommends cmake g++ make',
    );
  }
  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    fail('cmake-js is not installed next to dropattack (it is a dependency: reinstall the package)');
  }

  const buildDir = path.join(root, 'build');
  const cached = cachedTorchDir(buildDir);
  const command = cached && cached !== torch.dir ? 'rebuild' : 'compile';
  const log = path.join(root, 'build.log');
  const n = jobs();
  say(`building the native addon with cmake-js (${n} job${n > 1 ? 's' : ''}; log: ${log})`);
  const t0 = Date.now();
  const fd = fs.openSync(log, 'w');
  const r = spawnSync(process.execPath, [cmakeJs, command, '-O', 'build', '--parallel', String(n)], {
    cwd: root,
    env: { ...process.env, TORCH_DIR: torch.dir },
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  const addon = path.join(buildDir, 'Release', 'dropattack.node');
  if (r.status !== 0 || !fs.existsSync(addon)) {
    const tail = fs.readFileSync(log, 'utf8').split('\n').slice(-40).join('\n');
    fail(`${tail}\ndropattack: the native build failed (${r.error ? r.error.message : `exit code ${r.status}`}); full log: ${log}`);
  }
  const err = loadError(addon);
  if (err) fail(`the addon was built but does not load: ${err}`);
  say(`built ${rel(addon)} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

function main() {
  if (isDevelopmentCheckout()) {
    say('development checkout: the addon is built by scripts/setup.sh (npm run setup), not here');
    return;
  }
  const fromSource =
    process.env.npm_config_build_from_source === 'true' || /^(1|true)$/.test(process.env.DROPATTACK_BUILD_FROM_SOURCE || '');
  if (!fromSource) {
    if (process.env.DROPATTACK_BINARY) {
      const file = path.resolve(process.env.DROPATTACK_BINARY);
      if (!fs.existsSync(file)) fail(`DROPATTACK_BINARY=${process.env.DROPATTACK_BINARY}: no such file`);
      const err = loadError(file);
      if (err) fail(`DROPATTACK_BINARY=${process.env.DROPATTACK_BINARY} does not load: ${err}`);
      say(`using DROPATTACK_BINARY (${file})`);
      return;
    }
    const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'dropattack.node');
    if (fs.existsSync(prebuilt)) {
      const err = loadError(prebuilt);
      if (!err) {
        say(`using the prebuilt ${rel(prebuilt)}`);
        return;
      }
      say(`the prebuilt ${rel(prebuilt)} does not load here (${err}); building from source`);
    }
  }
  buildFromSource();
}

main();
