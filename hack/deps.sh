#!/usr/bin/env bash
# Installs what `make test` needs besides Go and git when it is missing: a headless
# Chromium for the dashboard tests and PostgreSQL for the store and HA tests (Debian's
# packages; the tests run initdb and postgres themselves, see internal/pgtest). As root with apt-get it installs
# it; otherwise it stops at once with one line naming what to install, so the suite
# never runs only to fail at the end. Used by `make test` (and so by .ci/run).
#
# `hack/deps.sh real-nodes` installs instead what real nodes (docs/real-nodes.md) run:
# containerd, runc and the CNI plugins (Debian packages), the same way.
set -euo pipefail

if [ "${1:-}" = real-nodes ]; then
  have_real_node_tools() {
    command -v containerd >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 &&
      command -v ip >/dev/null 2>&1 && command -v nft >/dev/null 2>&1 && [ -x /usr/lib/cni/bridge ]
  }
  if have_real_node_tools; then
    exit 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing containerd, runc, containernetworking-plugins, nftables, iproute2 (Debian packages) for real nodes"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc containernetworking-plugins nftables iproute2 >/dev/null
    if have_real_node_tools; then
      exit 0
    fi
    echo "deps: apt-get installed the packages but containerd, runc, ip, nft or /usr/lib/cni/bridge is still missing" >&2
    exit 1
  fi
  echo "deps: real nodes need root and containerd, runc, containernetworking-plugins, nftables, iproute2 (Debian/Ubuntu: sudo apt-get install -y ...)" >&2
  exit 1
fi

have_browser() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
    command -v google-chrome >/dev/null 2>&1
}

have_postgres() {
  [ -n "${OUTPOST_PG_BIN:-}" ] && [ -x "$OUTPOST_PG_BIN/postgres" ] && return 0
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

missing=()
have_browser || missing+=(chromium)
have_postgres || missing+=(postgresql)
if [ ${#missing[@]} = 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing ${missing[*]} (Debian packages) for the dashboard, store and HA tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  ok=1
  have_browser || { echo "deps: apt-get installed chromium but no chromium is on PATH" >&2; ok=0; }
  have_postgres || { echo "deps: apt-get installed postgresql but no /usr/lib/postgresql/*/bin/postgres exists" >&2; ok=0; }
  [ $ok = 1 ] && exit 0
  exit 1
fi
echo "deps: the tests need ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install -y ${missing[*]}) and run make test again" >&2
exit 1
