#!/usr/bin/env bash
# Installs what `make test` needs besides Go and git when it is missing: a headless
# Chromium for the dashboard tests (Debian's package). As root with apt-get it installs
# it; otherwise it stops at once with one line naming what to install, so the suite
# never runs only to fail at the end. Used by `make test` (and so by .ci/run).
set -euo pipefail

have_browser() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
    command -v google-chrome >/dev/null 2>&1
}

if have_browser; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing chromium (Debian package) for the dashboard tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  if have_browser; then
    exit 0
  fi
  echo "deps: apt-get installed chromium but no chromium is on PATH" >&2
  exit 1
fi
echo "deps: the dashboard tests need Chromium: install it (Debian/Ubuntu: sudo apt-get install -y chromium) and run make test again" >&2
exit 1
