#!/usr/bin/env bash
# Compiles and runs the built-in models' standalone test (native/engine/models_test.cpp):
# builds each model, runs forward/backward, checks seeding, train/eval, packing, option
# validation, save/load in C++ and, when /usr/bin/python3 (Debian's python3-torch) exists,
# torch.jit.load + forward + backward in Python. Needs libtorch-dev; no Node, no CMake.
#
#   scripts/test-models.sh            # build into a temp dir, run, clean up
#   KEEP_BUILD=1 scripts/test-models.sh   # keep the binary (path printed)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
libdir=/usr/lib/x86_64-linux-gnu
cxx="${CXX:-g++}"

build="$(mktemp -d "${TMPDIR:-/tmp}/test-models.XXXXXX")"
if [[ -z "${KEEP_BUILD:-}" ]]; then
  trap 'rm -rf "$build"' EXIT
else
  echo "build directory: $build"
fi

flags=(-std=c++17 -O1 -D_GLIBCXX_USE_CXX11_ABI=1 -I/usr/include -I/usr/include/torch/csrc/api/include)

start=$SECONDS
# Two translation units compiled in parallel (2 cores).
"$cxx" "${flags[@]}" -c "$root/native/engine/models.cpp" -o "$build/models.o" &
pid=$!
"$cxx" "${flags[@]}" -c "$root/native/engine/models_test.cpp" -o "$build/models_test.o"
wait "$pid"
"$cxx" "$build/models.o" "$build/models_test.o" -o "$build/models_test" \
  -L"$libdir" -Wl,-rpath,"$libdir" -ltorch -ltorch_cpu -lc10
echo "compiled in $((SECONDS - start)) s"

"$build/models_test"
