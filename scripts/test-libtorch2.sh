#!/usr/bin/env bash
# Builds and tests the checkout against Debian trixie's LibTorch 2.6 (CPU), inside the root
# that scripts/libtorch2-root.sh makes: the checkout's files (tracked, and untracked ones
# git does not ignore; on CI the two are the same) are copied to /src in the root, then npm ci, the addon (cmake-js), TypeScript, the whole jest suite, and the C++ library
# (build, ctest, install, find_package consumer). Prints the LibTorch version tested and the
# time of each phase; exits non-zero when any phase fails.
#
#   DROPATTACK_TRIXIE_ROOT       the root (default /var/cache/dropattack/trixie-cpu)
#   DROPATTACK_JEST_ARGS         extra arguments for jest (e.g. a test file), default none
#   DROPATTACK_JEST_TIMEOUT      seconds before the jest run is stopped (default 2400)
#   DROPATTACK_TEST_REV          test this commit (git archive) instead of the working tree
#
# node_modules, the addon build (build/) and the C++ build (build-cpp/) are kept in the root
# between runs, so a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROOT=${DROPATTACK_TRIXIE_ROOT:-/var/cache/dropattack/trixie-cpu}
ROOT=${ROOT%/}
JEST_TIMEOUT=${DROPATTACK_JEST_TIMEOUT:-2400}
SRC=/src
jobs=$(nproc 2>/dev/null || echo 2)

say() { printf 'test-libtorch2: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (chroot and mounts need it)"
[ -f "$ROOT/.dropattack-root" ] || die "no finished root at $ROOT: run scripts/libtorch2-root.sh first"
case "$JEST_TIMEOUT" in
  '' | *[!0-9]*) die "DROPATTACK_JEST_TIMEOUT must be a whole number of seconds, got '$JEST_TIMEOUT'" ;;
esac

exec 9>"$ROOT.test.lock"
flock 9

unmount_below() {
  local dir m
  dir=$(realpath "$1")
  for m in $(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}
for d in proc sys dev; do unmount_below "$ROOT/$d"; done

declare -a phase_names=() phase_times=() phase_results=()
failed=0
summary() {
  local i
  printf '\n==== LibTorch 2 (trixie) phases\n'
  for i in "${!phase_names[@]}"; do
    printf '  %-34s %6ss  %s\n' "${phase_names[$i]}" "${phase_times[$i]}" "${phase_results[$i]}"
  done
}
cleanup() {
  local rc=$?
  # proc, sys, dev, and anything a test mounted and left behind.
  unmount_below "$ROOT"
  summary
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --make-private "$ROOT/dev"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts" 2>/dev/null || true
mount -t tmpfs -o mode=1777 tmpfs "$ROOT/dev/shm" 2>/dev/null || true

# Runs a command in the root, in /src, with a clean environment.
in_root() {
  chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 CI=true TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    npm_config_nodedir=/usr DROPATTACK_PYTHON=/usr/bin/python3 \
    /bin/bash -c 'cd /src && "$@"' in-root "$@"
}

# phase NAME CMD...: runs CMD, records its time and result; returns its status.
phase() {
  local name=$1 start rc=0
  shift
  printf '\n==== [libtorch2] %s\n' "$name"
  start=$(date +%s)
  "$@" || rc=$?
  phase_names+=("$name")
  phase_times+=("$(($(date +%s) - start))")
  if [ $rc = 0 ]; then phase_results+=("ok"); else phase_results+=("FAILED (exit $rc)"); failed=1; fi
  return $rc
}
skip() {
  phase_names+=("$1")
  phase_times+=("-")
  phase_results+=("skipped: $2")
  failed=1
}

copy_sources() {
  local stage=$ROOT/src.stage dst=$ROOT$SRC what
  rm -rf --one-file-system "$stage"
  mkdir -p "$stage" "$dst"
  if [ -n "${DROPATTACK_TEST_REV:-}" ]; then
    git archive --format=tar "$DROPATTACK_TEST_REV" | tar -x -C "$stage" || return 1
    what="commit $(git rev-parse --short "$DROPATTACK_TEST_REV")"
  else
    git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
      if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done | xargs -0 cp --parents --no-dereference --preserve=mode -t "$stage" || return 1
    what="working tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo ', with local changes')"
  fi
  # Modes as git records them: executable or not.
  find "$stage" -type f -perm /111 -exec chmod 755 {} +
  find "$stage" -type f ! -perm /111 -exec chmod 644 {} +
  # Synced by content: a file that differs is replaced (with a new modification time, so the
  # kept builds redo what depends on it), an unchanged one keeps its time, and one that is no
  # longer there goes. node_modules, build/ and build-cpp/ stay.
  local changed=0 removed=0 f
  while IFS= read -r -d '' f; do
    if [ -f "$dst/$f" ] && [ ! -L "$dst/$f" ] && [ ! -L "$stage/$f" ] && cmp -s "$stage/$f" "$dst/$f" &&
      [ "$(stat -c %a "$stage/$f")" = "$(stat -c %a "$dst/$f")" ]; then
      continue
    fi
    mkdir -p "$(dirname "$dst/$f")"
    rm -rf --one-file-system "${dst:?}/$f"
    cp --no-dereference --preserve=mode "$stage/$f" "$dst/$f" || return 1
    changed=$((changed + 1))
  done < <(cd "$stage" && find . \( -type f -o -type l \) -printf '%P\0')
  while IFS= read -r -d '' f; do
    if [ ! -e "$stage/$f" ] && [ ! -L "$stage/$f" ]; then
      rm -f "$dst/$f"
      removed=$((removed + 1))
    fi
  done < <(cd "$dst" && find . \( -path ./node_modules -o -path ./build -o -path ./build-cpp \) -prune -o \
    \( -type f -o -type l \) -printf '%P\0')
  find "$dst" -mindepth 1 -depth -type d -empty ! -path "$dst/node_modules" ! -path "$dst/node_modules/*" \
    ! -path "$dst/build" ! -path "$dst/build/*" ! -path "$dst/build-cpp" ! -path "$dst/build-cpp/*" -delete
  rm -rf --one-file-system "$stage"
  say "$what: $changed files updated and $removed removed in $dst"
}

npm_install() {
  in_root bash -c 'set -e
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
      # No dependency has an install script; the package'"'"'s own would build the addon,
      # which the next phase does.
      npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    else
      echo "node_modules is up to date with package-lock.json"
    fi
    node --version'
}

build_addon() {
  in_root bash -c "set -e
    npx --no-install cmake-js compile -O build --parallel $jobs >/tmp/dropattack-addon-build.log 2>&1 || { tail -60 /tmp/dropattack-addon-build.log; exit 1; }
    grep '^Torch_DIR' build/CMakeCache.txt; ls -l build/Release/dropattack.node"
}

compile_ts() {
  in_root npx --no-install tsc -p tsconfig.build.json
}

libtorch_version() {
  in_root node -e '
    const b = require("./dist/lib").backends();
    console.log("LibTorch tested: " + b.libtorch);
    console.log(JSON.stringify(b));
    if (!/^2\./.test(b.libtorch)) { console.error("expected LibTorch 2.x, got " + b.libtorch); process.exit(1); }'
}

run_jest() {
  # shellcheck disable=SC2086
  in_root timeout --kill-after=30 "$JEST_TIMEOUT" npx --no-install jest --ci ${DROPATTACK_JEST_ARGS:-}
}

cpp_library() {
  in_root bash -c "set -e
    cmake -S . -B build-cpp -DDROPATTACK_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=Release >/tmp/dropattack-cpp-configure.log 2>&1 || { tail -40 /tmp/dropattack-cpp-configure.log; exit 1; }
    cmake --build build-cpp -j $jobs >/tmp/dropattack-cpp-build.log 2>&1 || { tail -60 /tmp/dropattack-cpp-build.log; exit 1; }
    ctest --test-dir build-cpp --output-on-failure
    rm -rf /tmp/dropattack-prefix /tmp/dropattack-consumer
    cmake --install build-cpp --prefix /tmp/dropattack-prefix >/dev/null
    cmake -S test/cpp/consumer -B /tmp/dropattack-consumer -DCMAKE_PREFIX_PATH=/tmp/dropattack-prefix >/dev/null
    cmake --build /tmp/dropattack-consumer -j $jobs >/dev/null
    /tmp/dropattack-consumer/consumer --steps 5 | tail -1
    rm -rf /tmp/dropattack-prefix /tmp/dropattack-consumer"
}

say "root $ROOT: $(chroot "$ROOT" dpkg-query -W -f='libtorch-dev ${Version}, ' libtorch-dev)$(chroot "$ROOT" dpkg-query -W -f='nodejs ${Version}' nodejs)"
phase "copy sources" copy_sources
if phase "npm ci" npm_install; then
  addon_ok=0
  phase "addon (cmake-js)" build_addon && addon_ok=1
  ts_ok=0
  phase "TypeScript" compile_ts && ts_ok=1
  if [ $addon_ok = 1 ] && [ $ts_ok = 1 ]; then
    phase "LibTorch version" libtorch_version || true
    phase "jest (whole suite)" run_jest || true
  else
    skip "jest (whole suite)" "the addon or TypeScript build failed"
  fi
else
  skip "addon, TypeScript, jest" "npm ci failed"
fi
phase "C++ library (ctest, consumer)" cpp_library || true

if [ $failed = 0 ]; then say "all phases passed"; else say "some phases failed"; fi
exit $failed
