#!/usr/bin/env bash
# One-command set-up, safe to run again: quick when everything is in place.
#  1. Debian packages: the test fixtures' (python3-torch, dataset-fashion-mnist) and, unless
#     another LibTorch is found (scripts/find-torch.js), LibTorch's (libtorch-dev,
#     libopenblas0-pthread); installed when missing and running as root, otherwise the exact
#     apt-get line. With Debian's LibTorch, the Gloo headers (libgloo-dev; libgloo-cuda-dev
#     with the CUDA one) for distributed
#     training too: installed when running as root, else only suggested (the addon builds
#     without distributed training). Skipped when TORCH_DIR is set.
#  2. npm dependencies (npm ci) when node_modules is missing or older than the lockfile.
#  3. The native addon (cmake-js) when missing, older than its sources, or built against
#     another LibTorch than TORCH_DIR; it says which LibTorch it builds against.
#  4. The TypeScript build (dist/) when missing or older than its sources.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'dropattack setup: %s\n' "$*"; }

TEST_PACKAGES=(python3-torch dataset-fashion-mnist)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if [ -z "${TORCH_DIR:-}" ] && command -v dpkg-query >/dev/null 2>&1; then
  wanted=("${TEST_PACKAGES[@]}")
  if installed libtorch-dev; then
    wanted+=(libopenblas0-pthread)
  elif ! node scripts/find-torch.js --quiet >/dev/null; then
    # No LibTorch anywhere (find-torch.js exits 2 only for a bad TORCH_DIR, unset here).
    wanted+=(libtorch-dev libopenblas0-pthread)
  fi
  missing=()
  for pkg in "${wanted[@]}"; do
    installed "$pkg" || missing+=("$pkg")
  done
  # Debian's CUDA LibTorch (libtorch-cuda-dev, contrib) links Gloo's CUDA build, whose
  # headers are libgloo-cuda-dev: the CPU libgloo-dev conflicts with it (installing that
  # would remove libtorch-cuda-dev).
  gloo=libgloo-dev
  if installed libtorch-cuda-dev; then gloo=libgloo-cuda-dev; fi
  if installed libtorch-dev || installed libtorch-cuda-dev || [[ " ${missing[*]} " == *" libtorch-dev "* ]]; then
    if ! installed "$gloo"; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        missing+=("$gloo")
      else
        say "note: without $gloo the addon has no distributed training (sudo apt-get install -y --no-install-recommends $gloo)"
      fi
    fi
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get -o DPkg::Lock::Timeout=900 update -qq
      apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      say "missing Debian packages: ${missing[*]}" >&2
      say "install them with:" >&2
      printf '  sudo apt-get update && sudo apt-get install -y --no-install-recommends %s\n' "${missing[*]}" >&2
      exit 1
    fi
  fi
fi

if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi

addon=build/Release/dropattack.node
# The LibTorch the build was configured with, and the one asked for (TORCH_DIR: cheap to
# resolve; otherwise discovery runs only when a build is due, as it may import torch).
cached_torch=$(sed -n 's/^Torch_DIR:[A-Z]*=//p' build/CMakeCache.txt 2>/dev/null || true)
torch_dir=
if [ -n "${TORCH_DIR:-}" ]; then
  torch_dir=$(node scripts/find-torch.js --quiet) || exit 1 # it says what is wrong with TORCH_DIR
fi
# Installing libgloo-dev (its dpkg file list is written then) adds distributed training.
gloo_list=$(ls /var/lib/dpkg/info/libgloo-dev*.list /var/lib/dpkg/info/libgloo-cuda-dev*.list 2>/dev/null | head -1 || true)
if [ ! -f "$addon" ] || [ -n "$(find native CMakeLists.txt package.json $gloo_list -newer "$addon" -type f -print -quit)" ] ||
  { [ -n "$torch_dir" ] && [ "$torch_dir" != "$cached_torch" ]; }; then
  torch_dir=$(node scripts/find-torch.js) || exit 1
  command=compile
  if [ -n "$cached_torch" ] && [ "$cached_torch" != "$torch_dir" ]; then
    command=rebuild # another LibTorch: configure from scratch
  fi
  say "building the native addon"
  TORCH_DIR="$torch_dir" npx --no-install cmake-js "$command" -O build --parallel "$(nproc 2>/dev/null || echo 2)" >build.log 2>&1 || {
    tail -50 build.log >&2
    say "native build failed (full log: build.log)" >&2
    exit 1
  }
  touch "$addon"
fi

stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find lib examples bench tsconfig.json tsconfig.build.json -newer "$stamp" -type f -print -quit 2>/dev/null)" ]; then
  say "compiling TypeScript"
  npx --no-install tsc -p tsconfig.build.json
  touch "$stamp"
fi
