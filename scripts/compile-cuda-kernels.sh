#!/usr/bin/env bash
# Compiles every native/ops/cuda/*.cu with nvcc for sm_80 and sm_90, outside CMake.
#
# The kernels must build with nvcc and the project's own headers alone (no LibTorch), so
# they can be checked on a machine whose LibTorch has no CUDA: this script is that check.
# Objects go to a temporary directory that is removed afterwards; the first failing file
# fails the script. nvcc is $NVCC, else the one on PATH, else /usr/local/cuda/bin/nvcc.
# Extra arguments are passed to nvcc (e.g. -Xptxas -v).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

nvcc="${NVCC:-}"
if [[ -z "$nvcc" ]]; then
  if command -v nvcc >/dev/null 2>&1; then
    nvcc="$(command -v nvcc)"
  elif [[ -x /usr/local/cuda/bin/nvcc ]]; then
    nvcc=/usr/local/cuda/bin/nvcc
  fi
fi
if [[ -n "${NVCC:-}" && ! -x "$nvcc" ]]; then
  echo "compile-cuda-kernels: NVCC=$NVCC is not an executable nvcc" >&2
  exit 1
fi
if [[ -z "$nvcc" ]]; then
  echo "compile-cuda-kernels: nvcc not found (set NVCC, put nvcc on PATH, or install the CUDA toolkit in /usr/local/cuda)" >&2
  exit 1
fi

shopt -s nullglob
sources=("$root"/native/ops/cuda/*.cu)
if [[ ${#sources[@]} -eq 0 ]]; then
  echo "compile-cuda-kernels: no .cu files under native/ops/cuda" >&2
  exit 1
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

flags=(-std=c++17 -O3
  -gencode arch=compute_80,code=sm_80
  -gencode arch=compute_90,code=sm_90
  -Werror all-warnings
  -Xcompiler -Wall,-Wextra,-Wno-unknown-pragmas)

for src in "${sources[@]}"; do
  rel="${src#"$root"/}"
  obj="$out/$(basename "$src" .cu).o"
  if ! "$nvcc" "${flags[@]}" "$@" -c "$src" -o "$obj"; then
    echo "FAIL $rel" >&2
    exit 1
  fi
  echo "ok   $rel ($(stat -c %s "$obj") bytes, sm_80 sm_90)"
done
