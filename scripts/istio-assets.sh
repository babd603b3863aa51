#!/usr/bin/env bash
# Installs the Istio side of the sandbox, built from Go modules and cached:
#   ~/.cache/mesh-run/istio/<module version>/bin/{istioctl,pilot-discovery,istio-render}
#   ~/.cache/mesh-run/kwok/<version>/{kwok,stages.yaml}
# istio-render is ours (scripts/istio-build/render): Helm's engine over the
# charts embedded in istio.io/istio/manifests. Versions: scripts/versions.env.
# A second run with the cache present finishes in well under a second.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE_ROOT="${MESH_RUN_CACHE:-$HOME/.cache/mesh-run}"

log() { printf 'istio-assets: %s\n' "$*" >&2; }

command -v go >/dev/null || { log "Go is required to build the Istio test bed (install Go 1.26+)"; exit 1; }

build_istio() {
  local dest="$CACHE_ROOT/istio/$ISTIO_MODULE/bin"
  local missing=()
  for b in istio-render istioctl pilot-discovery; do [ -x "$dest/$b" ] || missing+=("$b"); done
  if [ ${#missing[@]} -eq 0 ]; then log "istio $ISTIO_MODULE: cached in $dest"; return; fi
  # Its own module, not the Kubernetes one: Istio wants Kubernetes libraries
  # and Helm of its own choosing (its go.mod has no replace directives).
  local work="$CACHE_ROOT/build/istio-$ISTIO_MODULE"
  mkdir -p "$work/render" "$dest"
  cp "$HERE/istio-build/render/main.go" "$work/render/main.go"
  printf 'module meshrun.local/istio-build\n\ngo 1.26.0\n\nrequire istio.io/istio %s\n' "$ISTIO_MODULE" >"$work/go.mod"
  (
    cd "$work"
    export CGO_ENABLED=0 GOFLAGS=-mod=mod
    for b in "${missing[@]}"; do
      local pkg
      case $b in
        istio-render) pkg=./render ;;
        istioctl) pkg=istio.io/istio/istioctl/cmd/istioctl ;;
        pilot-discovery) pkg=istio.io/istio/pilot/cmd/pilot-discovery ;;
      esac
      log "istio $ISTIO_MODULE: go build $b (first time: several minutes on 2 cores)"
      go build -trimpath -ldflags="-s -w" -o "$dest/$b.tmp" "$pkg" || { log "building $b failed: rerun scripts/istio-assets.sh"; exit 1; }
      mv "$dest/$b.tmp" "$dest/$b"
    done
  )
  log "istio $ISTIO_MODULE: ready in $dest"
}

build_kwok() {
  local dest="$CACHE_ROOT/kwok/$KWOK_VERSION"
  if [ -x "$dest/kwok" ] && [ -s "$dest/stages.yaml" ]; then log "kwok $KWOK_VERSION: cached in $dest"; return; fi
  local work="$CACHE_ROOT/build/kwok-$KWOK_VERSION"
  mkdir -p "$work" "$dest"
  printf 'module meshrun.local/kwok-build\n\ngo 1.26.0\n\nrequire sigs.k8s.io/kwok %s\n' "$KWOK_VERSION" >"$work/go.mod"
  (
    cd "$work"
    export CGO_ENABLED=0 GOFLAGS=-mod=mod
    log "kwok $KWOK_VERSION: go build kwok"
    go build -trimpath -ldflags="-s -w" -o "$dest/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok || { log "building kwok failed: rerun scripts/istio-assets.sh"; exit 1; }
    mv "$dest/kwok.tmp" "$dest/kwok"
    # kwok 0.8 has no default stages out of cluster: the module's own "fast"
    # node and pod stages plus lease heartbeats, in one file.
    local src
    src=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
    {
      for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
        echo "# from sigs.k8s.io/kwok@$KWOK_VERSION kustomize/stage/$f"
        cat "$src/kustomize/stage/$f"
        echo "---"
      done
    } >"$dest/stages.yaml.tmp"
    mv "$dest/stages.yaml.tmp" "$dest/stages.yaml"
  )
  log "kwok $KWOK_VERSION: ready in $dest"
}

case "${1:-all}" in
  all) build_kwok; build_istio ;;
  kwok) build_kwok ;;
  istio) build_istio ;;
  *) log "unknown part '$1' (known: all, kwok, istio)"; exit 2 ;;
esac
