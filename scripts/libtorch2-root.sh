#!/usr/bin/env bash
# A Debian trixie root with LibTorch 2.6 (CPU), for building and testing the project
# against LibTorch 2.x (scripts/test-libtorch2.sh runs the tests in it).
#
# Idempotent and cached: a finished root carries a stamp naming its package list, and a
# second run with the same list returns at once. The root is made in "$ROOT.partial" and
# moved into place only when complete, so a run that was interrupted leaves no half-made
# root behind; the next run removes the partial one and starts again.
#
#   DROPATTACK_TRIXIE_ROOT   where the root lives (default /var/cache/dropattack/trixie-cpu)
#   DROPATTACK_DEBIAN_MIRROR Debian mirror (default http://deb.debian.org/debian)
#
# Needs root (debootstrap, chroot, mounts). Installs debootstrap on the host when missing.
set -euo pipefail

ROOT=${DROPATTACK_TRIXIE_ROOT:-/var/cache/dropattack/trixie-cpu}
MIRROR=${DROPATTACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=trixie

# What the addon build, the jest suite (Python references use Debian's python3 with torch
# and NumPy, the offline data tests use Fashion-MNIST), ctest and the find_package
# consumer need. libnode-dev: Node's headers under /usr/include/node, so cmake-js builds
# offline with nodedir=/usr. libgloo-dev: the Gloo headers c10d's process group includes
# (distributed training is built and its tests run against LibTorch 2.6 too).
PACKAGES=(
  libtorch-dev libgloo-dev libopenblas0-pthread python3-torch python3-numpy
  g++ make cmake nodejs npm libnode-dev
  dataset-fashion-mnist git ca-certificates
)
STAMP_NAME=.dropattack-root
stamp_text="suite=$SUITE packages=${PACKAGES[*]}"

say() { printf 'libtorch2-root: %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot and mounts need it)"
case "$ROOT" in
  /*) ;;
  *) die "DROPATTACK_TRIXIE_ROOT must be an absolute path, got '$ROOT'" ;;
esac
ROOT=${ROOT%/}
[ "$ROOT" != "" ] && [ "$ROOT" != "/" ] || die "refusing to use / as the root"

if [ -f "$ROOT/$STAMP_NAME" ] && [ "$(cat "$ROOT/$STAMP_NAME")" = "$stamp_text" ]; then
  say "ready at $ROOT (cached)"
  exit 0
fi

mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
flock 9
# Another run may have finished the root while this one waited for the lock.
if [ -f "$ROOT/$STAMP_NAME" ] && [ "$(cat "$ROOT/$STAMP_NAME")" = "$stamp_text" ]; then
  say "ready at $ROOT (cached)"
  exit 0
fi

# Unmounts everything mounted at or below $1, deepest first.
unmount_below() {
  local dir=$1 m
  [ -d "$dir" ] || return 0
  dir=$(realpath "$dir")
  # /proc/self/mounts escapes spaces as \040; the paths here have none.
  for m in $(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}

# Removes a root directory: only after everything below it is unmounted, and never across
# file systems (a bind mount of the host's /dev left behind must not be emptied).
remove_root() {
  local dir=$1
  [ -e "$dir" ] || return 0
  unmount_below "$dir"
  if awk -v d="$(realpath "$dir")" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    die "$dir still has mounts below it; not removing it"
  fi
  rm -rf --one-file-system "$dir"
}

target=
cleanup() {
  local rc=$?
  [ -n "$target" ] && unmount_below "$target"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_pseudo() {
  mount -t proc proc "$1/proc"
  mount -t sysfs sysfs "$1/sys"
  mount --bind /dev "$1/dev"
  # Private, so that what is mounted below it never propagates to the host's /dev.
  mount --make-private "$1/dev"
  mount -t devpts -o newinstance,ptmxmode=0666 devpts "$1/dev/pts" 2>/dev/null || true
  mount -t tmpfs -o mode=1777 tmpfs "$1/dev/shm" 2>/dev/null || true
}

in_root() {
  chroot "$target" /usr/bin/env -i HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

copy_host_config() {
  mkdir -p "$target/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$target/etc/ssl/certs/ca-certificates.crt"
  if [ -f /etc/npmrc ]; then cp /etc/npmrc "$target/etc/npmrc"; fi
  cp /etc/resolv.conf "$target/etc/resolv.conf" 2>/dev/null || true
}

apt_install() {
  in_root apt-get update -qq
  in_root apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >"$target/var/log/dropattack-apt.log" 2>&1 || {
    tail -40 "$target/var/log/dropattack-apt.log" >&2
    die "apt-get install in the root failed (log: $target/var/log/dropattack-apt.log)"
  }
  in_root apt-get clean
}

if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap on the host"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 || {
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends debootstrap >/dev/null
  }
fi

if [ -f "$ROOT/$STAMP_NAME" ]; then
  # A finished root with another package list: install what is new in place.
  say "updating the package set in $ROOT"
  target=$ROOT
  copy_host_config
  mount_pseudo "$target"
  apt_install
  copy_host_config
  unmount_below "$target"
  printf '%s\n' "$stamp_text" >"$ROOT/$STAMP_NAME"
  say "ready at $ROOT"
  exit 0
fi

# No finished root: whatever is there (an unfinished root, a partial one) is redone.
if [ -e "$ROOT" ]; then
  say "removing an unfinished root at $ROOT"
  remove_root "$ROOT"
fi
target=$ROOT.partial
remove_root "$target"

started=$(date +%s)
say "debootstrap $SUITE (minbase) into $target from $MIRROR"
mkdir -p "$target"
debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$target" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 || {
  tail -40 "$ROOT.debootstrap.log" >&2
  die "debootstrap failed (log: $ROOT.debootstrap.log)"
}
unmount_below "$target/proc"
unmount_below "$target/sys"
printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$target/etc/apt/sources.list"
rm -f "$target/etc/apt/sources.list.d/"*.sources 2>/dev/null || true
say "debootstrap done in $(( $(date +%s) - started ))s; installing ${PACKAGES[*]}"

copy_host_config
mount_pseudo "$target"
apt_install
# ca-certificates' postinst rebuilds the bundle; the host's bundle (which may carry a local CA) wins.
copy_host_config
# Node's headers where cmake-js looks for them with nodedir=/usr.
[ -f "$target/usr/include/node/node_api.h" ] || die "libnode-dev did not install /usr/include/node/node_api.h"
printf 'nodedir=/usr\nupdate-notifier=false\nfund=false\naudit=false\n' >"$target/root/.npmrc"
unmount_below "$target"

printf '%s\n' "$stamp_text" >"$target/$STAMP_NAME"
mv "$target" "$ROOT"
target=
say "ready at $ROOT in $(( $(date +%s) - started ))s: $(chroot "$ROOT" dpkg-query -W -f='${Package} ${Version}' libtorch-dev) "
