#!/usr/bin/env bash
# One-command set-up, safe to run again: quick when everything is in place.
#  1. Debian packages (LibTorch, OpenBLAS, Python's torch for fixtures and the peer):
#     installed when missing and running as root; otherwise the exact apt-get line.
#  2. npm dependencies (npm ci) when node_modules is missing or older than the lockfile.
#  3. The native addon (cmake-js) when missing or older than its sources.
#  4. The TypeScript build (dist/) when missing or older than its sources.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf 'dropattack setup: %s\n' "$*"; }

PACKAGES=(libtorch-dev libopenblas0-pthread python3-torch dataset-fashion-mnist)

if [ -z "${TORCH_DIR:-}" ] && command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      say "missing Debian packages: ${missing[*]}" >&2
      say "install them with:" >&2
      printf '  sudo apt-get update && sudo apt-get install -y --no-install-recommends %s\n' "${missing[*]}" >&2
      exit 1
    fi
  fi
elif [ -z "${TORCH_DIR:-}" ]; then
  say "no dpkg here: set TORCH_DIR to a LibTorch's share/cmake/Torch directory" >&2
  exit 1
fi

if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi

addon=build/Release/dropattack.node
if [ ! -f "$addon" ] || [ -n "$(find native CMakeLists.txt package.json -newer "$addon" -type f -print -quit)" ]; then
  say "building the native addon"
  npx --no-install cmake-js compile -O build --parallel "$(nproc 2>/dev/null || echo 2)" >build.log 2>&1 || {
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
