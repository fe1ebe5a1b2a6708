#!/usr/bin/env bash
# Builds the local Kubernetes testbed from the Go module proxy alone and caches the
# binaries by version under $BIN (default: ./bin):
#   $BIN/k8s-$K8S_VERSION/{kube-apiserver,kube-controller-manager,kube-scheduler,kubectl}
#   $BIN/etcd-$ETCD_VERSION/etcd
#   $BIN/kwok-$KWOK_VERSION/{kwok,stages.yaml}
# With REAL_NODES=1 (make testbin-real-nodes) also what real nodes run (docs/real-nodes.md):
#   $BIN/k8s-$K8S_VERSION/{kubelet,kube-proxy}
#   $BIN/pause/pause (internal/ociimage/pause, the pod sandbox program)
# The pinned versions live in the helper modules next to this script (hack/testbin/*/go.mod),
# never in the main module. A binary that is already present is not rebuilt, so a second run
# takes seconds; delete a directory to force a rebuild.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN=${BIN:-$root/bin}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

modver() { # modver <helper dir> <module path>: the version pinned in that helper's go.mod
  (cd "$here/$1" && go list -m -f '{{.Version}}' "$2")
}
K8S_VERSION=$(modver k8s k8s.io/kubernetes)
ETCD_VERSION=$(modver etcd go.etcd.io/etcd/server/v3)
KWOK_VERSION=$(modver kwok sigs.k8s.io/kwok)

# A cold build compiles Kubernetes for minutes without a word from go: say what is
# being built and how long it has taken, every PROGRESS_EVERY seconds.
PROGRESS_EVERY=${PROGRESS_EVERY:-30}
ticker=""
stop_ticker() {
  if [ -n "$ticker" ]; then kill "$ticker" 2>/dev/null || true; wait "$ticker" 2>/dev/null || true; ticker=""; fi
}
trap stop_ticker EXIT
start_ticker() { # start_ticker <what>
  local what=$1 start=$SECONDS
  stop_ticker
  ( while sleep "$PROGRESS_EVERY"; do
      echo "testbin: building $what: $((SECONDS - start)) s so far (a cold build takes about 7-20 minutes on 2 cores; later runs reuse it)"
    done ) &
  ticker=$!
}

build() { # build <helper dir> <out dir> <ldflags> <package>...
  local dir=$1 out=$2 ldflags=$3; shift 3
  local missing=()
  for pkg in "$@"; do
    [ -x "$out/$(basename "$pkg")" ] || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "testbin: $out is up to date"
    return
  fi
  echo "testbin: building ${missing[*]} into $out (a cold build of Kubernetes takes several minutes)"
  mkdir -p "$out"
  local tmp
  tmp=$(mktemp -d "$out/.build.XXXXXX")
  start_ticker "${missing[*]##*/}"
  (cd "$here/$dir" && go build -trimpath -ldflags="-s -w $ldflags" -o "$tmp/" "${missing[@]}")
  stop_ticker
  # Move into place only after the whole build succeeded, so an interrupted build never
  # leaves a half-written binary that looks installed.
  for pkg in "${missing[@]}"; do mv "$tmp/$(basename "$pkg")" "$out/"; done
  rmdir "$tmp"
}

etcd="$BIN/etcd-$ETCD_VERSION/etcd"
if [ -x "$etcd" ]; then
  echo "testbin: $etcd is up to date"
else
  echo "testbin: building etcd $ETCD_VERSION"
  mkdir -p "$(dirname "$etcd")"
  start_ticker "etcd"
  (cd "$here/etcd" && go build -trimpath -ldflags='-s -w' -o "$etcd.tmp" go.etcd.io/etcd/server/v3)
  stop_ticker
  mv "$etcd.tmp" "$etcd"
fi
build kwok "$BIN/kwok-$KWOK_VERSION" "" sigs.k8s.io/kwok/cmd/kwok
# Kubernetes stamps its version at link time; without it the binaries say v0.0.0-master.
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
k8sver=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8sver+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
build k8s "$BIN/k8s-$K8S_VERSION" "$k8sver" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl

if [ "${REAL_NODES:-}" = 1 ]; then
  build k8s "$BIN/k8s-$K8S_VERSION" "$k8sver" \
    k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy
  # Small and from this module: rebuilt every time, so it follows the source.
  mkdir -p "$BIN/pause"
  (cd "$root" && go build -trimpath -ldflags='-s -w' -o "$BIN/pause/pause.tmp" ./internal/ociimage/pause)
  mv "$BIN/pause/pause.tmp" "$BIN/pause/pause"
fi

# kwok needs stage definitions: nodes become Ready and keep a heartbeat, pods become Running.
stages="$BIN/kwok-$KWOK_VERSION/stages.yaml"
if [ ! -s "$stages" ]; then
  kwokdir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  tmp=$(mktemp "$stages.XXXXXX")
  for s in node/fast node/heartbeat pod/fast; do
    for f in "$kwokdir/kustomize/stage/$s"/*.yaml; do
      case "$(basename "$f")" in kustomization.yaml) continue ;; esac
      echo "---"; cat "$f"
    done
  done > "$tmp"
  mv "$tmp" "$stages"
fi
echo "testbin: ready in $BIN (k8s $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)"
