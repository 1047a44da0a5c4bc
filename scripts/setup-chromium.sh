#!/usr/bin/env bash
# Headless Chromium for the report's browser test (test/app/report-browser.test.ts): Debian's
# `chromium` package, installed only when missing and only by root; otherwise the exact
# apt-get line. Prints the browser's path on success. Safe to run again: quick when present.
set -euo pipefail

say() { printf 'dropattack setup-chromium: %s\n' "$*" >&2; }

find_browser() {
  for b in "${CHROMIUM:-}" chromium chromium-browser; do
    [ -n "$b" ] && command -v "$b" >/dev/null 2>&1 && { command -v "$b"; return 0; }
  done
  return 1
}

if find_browser; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends chromium >/dev/null
  find_browser && exit 0
  say "chromium was installed but is not on PATH"
  exit 1
fi
say "headless Chromium is missing; install it with:"
printf '  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium\n' >&2
exit 1
