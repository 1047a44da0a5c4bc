#!/usr/bin/env bash
# Checks that the CUDA build compiles and links, against Debian trixie's CUDA LibTorch
# (libtorch-cuda-dev, contrib) and CUDA toolkit (nvidia-cuda-toolkit, non-free).
#
# A trixie root is made with debootstrap once and cached at
# ${DROPATTACK_TRIXIE_CUDA_ROOT:-/var/cache/dropattack/trixie-cuda} (about 8 GB; the
# first run downloads about 2.5 GB). Inside it, on a copy of the checkout (tracked files
# and untracked ones git does not ignore), it builds
#   (a) the C++ library with its example and tests (-DDROPATTACK_BUILD_TESTS=ON), and
#   (b) the Node addon with cmake-js,
# both with distributed training on c10d with Gloo and NCCL (libgloo-cuda-dev, libnccl-dev),
# for the CUDA architectures in DROPATTACK_CUDA_ARCHITECTURES (default 80;90), and checks
# that the programs and the addon link, that they use the shared CUDA runtime
# (libcudart.so, no cudart_static), and that the kernels are in the binaries for exactly
# those architectures (cuobjdump --list-elf). Nothing is run on a GPU: this is a build
# and link check only.
#
# cuDNN: trixie's nvidia-cudnn package downloads cuDNN from NVIDIA when installed, which
# fails offline. The root gets a stand-in instead: a package named
# dropattack-cudnn-standin that provides the cuDNN package names and ships a stub
# libcudnn.so.9 (every cuDNN function libtorch_cuda.so imports, each aborting when
# called), enough to link and never meant to run.
#
# Needs root (debootstrap, chroot, mounts), debootstrap on the host and deb.debian.org.
# Usage: scripts/check-cuda-build.sh [--prepare-only]
set -euo pipefail
# (All in one block, so bash reads the whole script before running it.)
{
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="${DROPATTACK_TRIXIE_CUDA_ROOT:-/var/cache/dropattack/trixie-cuda}"
mirror="${DROPATTACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
archs="${DROPATTACK_CUDA_ARCHITECTURES:-80;90}"
jobs="${DROPATTACK_JOBS:-2}"
prepare_only=0
case "${1:-}" in
  --prepare-only) prepare_only=1 ;;
  "") ;;
  *) echo "check-cuda-build: unknown argument '$1' (usage: $0 [--prepare-only])" >&2; exit 2 ;;
esac
if ! [[ "$archs" =~ ^[0-9]+[a-z]?(\;[0-9]+[a-z]?)*$ ]]; then
  echo "check-cuda-build: DROPATTACK_CUDA_ARCHITECTURES='$archs' is not a ;-separated list of architectures like 80;90" >&2
  exit 2
fi
if ! [[ "$jobs" =~ ^[1-9][0-9]*$ ]]; then
  echo "check-cuda-build: DROPATTACK_JOBS='$jobs' is not a positive number" >&2
  exit 2
fi

# The root's recipe: a root made with another recipe is made again.
recipe="trixie main,contrib,non-free,non-free-firmware; packages:"
standin_version=2  # the cuDNN stand-in's version: a root with another one gets this one
packages=(g++ cmake make binutils nodejs npm libnode-dev nvidia-cuda-toolkit libtorch-cuda-dev)
recipe+=" ${packages[*]}"
ready="$root/.dropattack-root-ready"
# Added to a root of this recipe when missing (so that adding them does not make the
# whole root again): the headers c10d's Gloo and NCCL process groups include. Gloo's must
# be libgloo-cuda-dev (contrib), the build libtorch-cuda links: the CPU one, libgloo-dev,
# conflicts with it, and installing that would remove libtorch-cuda-dev.
extra_packages=(libgloo-cuda-dev libnccl-dev)

say() { printf 'check-cuda-build: %s\n' "$*"; }
die() { printf 'check-cuda-build: FAIL: %s\n' "$*" >&2; exit 1; }
stamp() { date +%s; }
t_start=$(stamp)

[[ "$(id -u)" = 0 ]] || die "needs root (debootstrap, chroot and mounts)"
command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"

# Mounts inside the root, undone on exit whatever happens.
mounted=()
unmount_all() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null || true
  done
  mounted=()
}
trap unmount_all EXIT
trap 'exit 130' INT TERM
mount_in() { # mount_in <type|--bind> <source> <dir under root>
  local dir="$root$3"
  mkdir -p "$dir"
  if ! mountpoint -q "$dir"; then
    if [[ "$1" = --bind ]]; then mount --bind "$2" "$dir"; else mount -t "$1" "$2" "$dir"; fi
    mounted+=("$dir")
  fi
}
mount_all() {
  mount_in proc proc /proc
  mount_in sysfs sys /sys
  mount_in --bind /dev /dev
  # Private, so that the devpts mounted below never propagates to the host's /dev/pts.
  mount --make-private "$root/dev"
  mountpoint -q "$root/dev/pts" || { mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" && mounted+=("$root/dev/pts"); }
}
# Anything still mounted under the root (e.g. left by a killed run).
stale_mounts() { awk -v r="$root/" 'index($2 "/", r) == 1 { print $2 }' /proc/mounts | sort -r; }
in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
apt_in() { in_root apt-get -o DPkg::Lock::Timeout=900 -o Dpkg::Use-Pty=0 -q "$@"; }

make_root() {
  local t0
  t0=$(stamp)
  for m in $(stale_mounts); do umount "$m" 2>/dev/null || umount -l "$m"; done
  if [[ -e "$root" ]]; then
    say "half-made or outdated root at $root (no matching $(basename "$ready")): removing it and starting again"
    [[ -z "$(stale_mounts)" ]] || die "cannot unmount $(stale_mounts | tr '\n' ' ')"
    rm -rf --one-file-system "$root"
  fi
  mkdir -p "$(dirname "$root")"
  say "debootstrap trixie into $root"
  debootstrap --variant=minbase --components=main,contrib,non-free,non-free-firmware \
    trixie "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || {
    tail -20 "$root.debootstrap.log" >&2
    die "debootstrap failed (log: $root.debootstrap.log)"
  }
  mv "$root.debootstrap.log" "$root/debootstrap.log"
  say "debootstrap done in $(($(stamp) - t0)) s"

  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt" 2>/dev/null \
    || { mkdir -p "$root/etc/ssl/certs" && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"; }
  [[ -f /etc/npmrc ]] && cp /etc/npmrc "$root/etc/npmrc"
  # No services start inside the root.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"

  mount_all
  local log="$root/var/log/dropattack-root-setup.log"
  apt_in update >>"$log" 2>&1 || { tail -20 "$log" >&2; die "apt-get update failed (log: $log)"; }
  say "installing the toolchain: g++ cmake make binutils nodejs npm libnode-dev nvidia-cuda-toolkit (log: $log)"
  apt_in install -y --no-install-recommends g++ cmake make binutils nodejs npm libnode-dev nvidia-cuda-toolkit >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; die "installing the toolchain failed (log: $log)"; }
  say "making the cuDNN stand-in package dropattack-cudnn-standin (for linking only)"
  make_cudnn_standin "$log"
  say "installing libtorch-cuda-dev"
  apt_in install -y --no-install-recommends libtorch-cuda-dev >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; die "installing libtorch-cuda-dev failed (log: $log)"; }
  apt_in clean
  printf '%s\n' "$recipe" >"$ready"
  unmount_all
  say "root ready in $(($(stamp) - t0)) s"
}

# The cuDNN stand-in: an installed package dropattack-cudnn-standin that provides
# nvidia-cudnn (at the version trixie has) and ships a stub libcudnn.so.9 exporting the
# cuDNN functions that LibTorch's libraries import, each one aborting when called.
make_cudnn_standin() {
  local log="$1" work=/tmp/dropattack-cudnn-standin lt cudnn_version pkg=dropattack-cudnn-standin
  lt=$(in_root apt-cache depends libtorch-cuda-dev | sed -n 's/^ *Depends: \(libtorch-cuda-[0-9.]*\)$/\1/p' | head -1)
  [[ -n "$lt" ]] || die "cannot tell which libtorch-cuda-X package libtorch-cuda-dev depends on"
  cudnn_version=$(in_root apt-cache policy nvidia-cudnn | sed -n 's/^ *Candidate: //p')
  [[ -n "$cudnn_version" && "$cudnn_version" != "(none)" ]] || die "no nvidia-cudnn in the archive (contrib missing?)"
  rm -rf "$root$work"
  mkdir -p "$root$work/deb/DEBIAN" "$root$work/deb/usr/lib/x86_64-linux-gnu" "$root$work/deb/usr/share/doc/$pkg" "$root$work/x"
  in_root sh -c "cd $work && apt-get -q download $lt >/dev/null && dpkg-deb -x ${lt}_*.deb x"
  # Every cuDNN function imported by a library that needs libcudnn.
  in_root sh -ec "cd $work
    for so in \$(find x -name '*.so*' -type f); do
      if readelf -d \"\$so\" | grep -q 'NEEDED.*libcudnn'; then
        nm -D --undefined-only \"\$so\" | awk '{ print \$2 }' | grep '^cudnn'
      fi
    done | sort -u >symbols.txt
    readelf -d \$(find x -name '*.so*' -type f) | sed -n 's/.*NEEDED.*\[\(libcudnn[^]]*\)\].*/\1/p' | sort -u >needed.txt"
  [[ -s "$root$work/symbols.txt" ]] || die "found no cuDNN symbols in $lt"
  [[ "$(cat "$root$work/needed.txt")" == "libcudnn.so.9" ]] \
    || die "$lt needs $(tr '\n' ' ' <"$root$work/needed.txt"), the stand-in only makes libcudnn.so.9"
  {
    printf '/* Link-time stand-in for cuDNN (package %s): not cuDNN. */\n' "$pkg"
    printf '#include <stdio.h>\n#include <stdlib.h>\n'
    printf 'static void standin(const char *f) { fprintf(stderr, "%s: %%s called: this libcudnn.so.9 is a link-time stand-in, install cuDNN\\n", f); abort(); }\n' "$pkg"
    sed 's/@.*//' "$root$work/symbols.txt" | sort -u | while read -r sym; do printf 'void %s(void) { standin("%s"); }\n' "$sym" "$sym"; done
  } >"$root$work/stub.c"
  # LibTorch imports them versioned (cudnnCreate@libcudnn.so.9): the same version nodes.
  local v loc first=1
  : >"$root$work/versions.map"
  for v in $(grep -o '@[^@]*$' "$root$work/symbols.txt" | tr -d @ | sort -u); do
    loc=""; ((first)) && loc=" local: *;"; first=0
    printf '%s { global: %s%s };\n' "$v" "$(grep "@$v\$" "$root$work/symbols.txt" | sed 's/@.*//' | tr '\n' ';' | sed 's/;/; /g')" "$loc" >>"$root$work/versions.map"
  done
  in_root gcc -shared -fPIC -O1 -Wl,-soname,libcudnn.so.9 -Wl,--version-script="$work/versions.map" \
    -o "$work/deb/usr/lib/x86_64-linux-gnu/libcudnn.so.9" "$work/stub.c"
  cat >"$root$work/deb/usr/share/doc/$pkg/README" <<EOT
Link-time stand-in for cuDNN, made by dropattack's scripts/check-cuda-build.sh.
libcudnn.so.9 here exports the $(wc -l <"$root$work/symbols.txt") cuDNN functions that $lt imports;
each one prints a message and aborts. It lets programs link against LibTorch's CUDA build
without NVIDIA's cuDNN (trixie's nvidia-cudnn downloads it at install time). Never run with it.
EOT
  cat >"$root$work/deb/DEBIAN/control" <<EOT
Package: $pkg
Version: $standin_version
Architecture: amd64
Maintainer: dropattack <root@localhost>
Provides: nvidia-cudnn (= $cudnn_version), libcudnn.so.9
Conflicts: nvidia-cudnn
Section: misc
Priority: optional
Description: link-time stand-in for cuDNN (not cuDNN)
 A stub libcudnn.so.9 whose functions abort, to link against libtorch-cuda without
 cuDNN. For build checks only.
EOT
  in_root dpkg-deb --root-owner-group --build "$work/deb" "$work/$pkg.deb" >/dev/null
  in_root dpkg -i "$work/$pkg.deb" >>"$log" 2>&1 || die "installing $pkg failed (log: $log)"
  rm -rf "$root$work"
}

if [[ -f "$ready" && "$(cat "$ready")" == "$recipe" ]]; then
  say "reusing the trixie root at $root"
  if [[ "$(in_root dpkg-query -W -f='${Version}' dropattack-cudnn-standin 2>/dev/null)" != "$standin_version" ]]; then
    say "updating the cuDNN stand-in to version $standin_version"
    mount_all
    make_cudnn_standin "$root/var/log/dropattack-root-setup.log"
    unmount_all
  fi
else
  make_root
fi
missing_extra=()
for p in libtorch-cuda-dev "${extra_packages[@]}"; do
  in_root dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing_extra+=("$p")
done
if ((${#missing_extra[@]})); then
  say "installing ${missing_extra[*]}"
  mount_all
  # libtorch-cuda-dev named too, so that apt never resolves a conflict by removing it.
  { apt_in update && apt_in install -y --no-install-recommends libtorch-cuda-dev "${extra_packages[@]}" && apt_in clean; } \
    >>"$root/var/log/dropattack-root-setup.log" 2>&1 \
    || { tail -20 "$root/var/log/dropattack-root-setup.log" >&2; die "installing ${missing_extra[*]} failed"; }
  unmount_all
fi
t_root=$(stamp)
if ((prepare_only)); then
  say "root prepared in $((t_root - t_start)) s"
  exit 0
fi

# ---- the builds, inside the root, on a copy of the checkout's files
say "copying the checkout's files (git ls-files: tracked, and untracked ones not ignored)"
work="$root/work"
rm -rf --one-file-system "$work"
mkdir -p "$work/src"
(cd "$src" && git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf -) | tar -C "$work/src" -xf -
mount_all
# The npm packages: the checkout's node_modules, read-only, when it has cmake-js;
# otherwise npm ci inside the root.
if [[ -f "$src/node_modules/cmake-js/package.json" && -f "$src/node_modules/node-addon-api/package.json" ]]; then
  mkdir -p "$work/src/node_modules"
  mount_in --bind "$src/node_modules" /work/src/node_modules
  mount -o remount,bind,ro "$work/src/node_modules"
  node_modules_from="the checkout's node_modules (read-only)"
else
  say "no node_modules with cmake-js in $src: npm ci inside the root"
  in_root sh -c 'cd /work/src && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error' \
    || die "npm ci failed inside the root"
  node_modules_from="npm ci inside the root"
fi

t_builds=$(stamp)
cmake_args=(-DCMAKE_BUILD_TYPE=Release "-DDROPATTACK_CUDA_ARCHITECTURES=$archs")
say "(a) C++ library, example and tests (CUDA architectures $archs)"
if ! in_root cmake -S /work/src -B /work/build-cpp -DDROPATTACK_BUILD_TESTS=ON "${cmake_args[@]}" >"$work/cpp-configure.log" 2>&1; then
  tail -40 "$work/cpp-configure.log" >&2; die "(a) configure failed (log: $work/cpp-configure.log)"
fi
if ! in_root nice cmake --build /work/build-cpp -j "$jobs" >"$work/cpp-build.log" 2>&1; then
  grep -E 'error|undefined reference' "$work/cpp-build.log" | head -30 >&2
  tail -30 "$work/cpp-build.log" >&2; die "(a) build failed (log: $work/cpp-build.log)"
fi
t_a=$(stamp)
say "(b) Node addon with cmake-js (CUDA architectures $archs)"
if ! in_root sh -c "cd /work/src && npm_config_nodedir=/usr nice node node_modules/cmake-js/bin/cmake-js compile \
    -O /work/build-addon --parallel $jobs --CDDROPATTACK_CUDA_ARCHITECTURES='$archs' --CDCMAKE_BUILD_TYPE=Release" \
    >"$work/addon-build.log" 2>&1; then
  grep -E 'error|undefined reference' "$work/addon-build.log" | head -30 >&2
  tail -30 "$work/addon-build.log" >&2; die "(b) cmake-js build failed (log: $work/addon-build.log)"
fi
t_b=$(stamp)

# ---- checks
failures=0
report=()
ok() { report+=("  ok    $*"); }
bad() { report+=("  FAIL  $*"); failures=$((failures + 1)); }

addon=/work/build-addon/Release/dropattack.node
binaries=("$addon")
for exe in train_mlp engine_test models_test gpu_check; do
  if [[ -f "$work/build-cpp/$exe" ]]; then binaries+=("/work/build-cpp/$exe"); fi
done
[[ -f "$root$addon" ]] && ok "the addon links: $addon" || bad "no addon at $addon"
for exe in train_mlp engine_test; do
  [[ -f "$work/build-cpp/$exe" ]] && ok "$exe links" || bad "$exe missing"
done

want_archs=$(tr ';' '\n' <<<"$archs" | sed 's/^/sm_/' | sort -u | tr '\n' ' ')
for bin in "${binaries[@]}"; do
  [[ -f "$root$bin" ]] || continue
  name=$(basename "$bin")
  needed=$(in_root readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  elf=$(in_root cuobjdump --list-elf "$bin" 2>/dev/null | grep -o 'sm_[0-9]*[a-z]\?' | sort -u | tr '\n' ' ' || true)
  ptx=$(in_root cuobjdump --list-ptx "$bin" 2>/dev/null | grep -o 'sm_[0-9]*[a-z]\?' | sort -u | tr '\n' ' ' || true)
  # The addon, the example and the engine test call the op; other programs may not, and
  # then the linker leaves the CUDA objects (and the need for cudart) out of them.
  uses_op=0
  case "$name" in dropattack.node | train_mlp | engine_test) uses_op=1 ;; esac
  if ((!uses_op)) && [[ -z "$elf" ]]; then
    ok "$name: does not link the CUDA op (no kernels, no cudart needed)"
  elif grep -q 'libcudart\.so' <<<"$needed"; then
    ok "$name: needs $(grep -o 'libcudart\.so[.0-9]*' <<<"$needed") (shared CUDA runtime)"
  else
    bad "$name: no libcudart.so among its NEEDED libraries ($needed)"
  fi
  # A statically linked cudart defines the runtime API in the binary itself.
  static_syms=$(in_root nm --defined-only "$bin" 2>/dev/null | awk '$3 ~ /^cuda(LaunchKernel|Malloc|GetDeviceCount|StreamSynchronize)$/' | wc -l)
  [[ "$static_syms" = 0 ]] && ok "$name: no cudart_static in it (no CUDA runtime functions defined)" \
    || bad "$name: defines $static_syms CUDA runtime functions: cudart_static linked in"
  if ((!uses_op)) && [[ -z "$elf" ]]; then
    :
  elif [[ "$elf" == "$want_archs" ]]; then
    ok "$name: kernels for $elf(cuobjdump --list-elf; PTX: ${ptx:-none})"
  else
    bad "$name: kernels for '${elf:-none}', wanted '$want_archs' (PTX: ${ptx:-none})"
  fi
done
# The link lines: the shared runtime only, and no host compiler's (GCC 13's) library directory.
links=$(find "$work/build-cpp" "$work/build-addon" -name link.txt)
if grep -l 'cudart_static' $links >/dev/null 2>&1; then
  bad "cudart_static on a link line: $(grep -l cudart_static $links | sed "s|$root||" | tr '\n' ' ')"
else
  ok "no cudart_static on any link line ($(wc -l <<<"$links") link lines)"
fi
if grep -l -- '-L[^ ]*/gcc/' $links >/dev/null 2>&1; then
  bad "a GCC library directory on a link line: $(grep -o -- '-L[^ ]*/gcc/[^ ]*' $links | sort -u | tr '\n' ' ')"
else
  ok "no GCC library directory (-L.../gcc/...) on any link line"
fi
# Distributed training was built with both process groups.
for log in "$work/cpp-configure.log" "$work/addon-build.log"; do
  if grep -q 'dropattack: distributed training on c10d (gloo, nccl)' "$log"; then
    ok "$(basename "$log" .log): distributed training on c10d with gloo and nccl"
  else
    bad "$(basename "$log" .log): not built with both process groups: $(grep -o 'dropattack: .*distributed.*' "$log" | head -1)"
  fi
done
if dist=$(in_root node -e "console.log(JSON.stringify(require('$addon').distributedInfo()))" 2>/dev/null) &&
  grep -q '"nccl"' <<<"$dist"; then
  ok "the addon's distributedInfo(): $dist"
else
  bad "the addon's distributedInfo() has no nccl: ${dist:-(did not load)}"
fi
# The addon loads in trixie's node (CPU; the CUDA runtime finds no GPU here).
if backends=$(in_root node -e "const b = require('$addon').backends(); console.log(JSON.stringify({cuda: b.cuda, cudaDeviceCount: b.cudaDeviceCount, cudaKernels: b.cudaKernels, libtorch: b.libtorch}))" 2>"$work/addon-load.log"); then
  if grep -q '"cudaKernels":true' <<<"$backends"; then
    ok "the addon loads in node $(in_root node --version): $backends"
  else
    bad "the addon loads but was built without the CUDA kernels: $backends"
  fi
else
  bad "the addon does not load: $(tail -3 "$work/addon-load.log" | tr '\n' ' ')"
fi

t_end=$(stamp)
torch_version=$(in_root dpkg-query -W -f='${Version}' libtorch-cuda-dev)
cuda_version=$(in_root dpkg-query -W -f='${Version}' nvidia-cuda-toolkit)
host_cxx=$(in_root sh -c 'c++ --version | head -1')
echo
echo "==== CUDA build check (Debian trixie root: $root)"
echo "  LibTorch: libtorch-cuda-dev $torch_version; CUDA toolkit: nvidia-cuda-toolkit $cuda_version; C++: $host_cxx"
echo "  cuDNN: dropattack-cudnn-standin (a stub libcudnn.so.9 for linking; not cuDNN)"
echo "  npm packages: $node_modules_from"
echo "  CUDA architectures asked for: $archs"
printf '%s\n' "${report[@]}"
echo "  Not run: no GPU here, and the cuDNN stand-in cannot run; this checks compiling and linking only."
echo "  Times: root $((t_root - t_start)) s, (a) C++ library and tests $((t_a - t_builds)) s, (b) addon $((t_b - t_a)) s, checks $((t_end - t_b)) s, total $((t_end - t_start)) s"
echo "  Disk: root $(du -sh --one-file-system "$root" | cut -f1) (builds included)"
if ((failures)); then
  echo "==== FAILED: $failures check(s)"
  exit 1
fi
echo "==== PASSED"
exit 0
}
