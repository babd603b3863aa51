#!/usr/bin/env bash
# Installs the real Kubernetes binaries mesh-run's sandbox and tests run:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl,
# one folder per version under ~/.cache/mesh-run/kube/<version>/bin.
# Versions are pinned in scripts/versions.env.
#
#   scripts/kube-assets.sh              # the current version (default for sandbox and tests)
#   scripts/kube-assets.sh 1.30.4       # the second version (OpenShift 4.17), built the same way
#   scripts/kube-assets.sh all          # both
#
# A second run with the cache present finishes in well under a second.
# If KUBEBUILDER_ASSETS names a folder holding etcd and kube-apiserver (the
# envtest convention), nothing is built: mesh-run uses that folder.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CURRENT=$KUBE_VERSION
OLDEST=$KUBE_OLDEST_VERSION
CACHE_ROOT="${MESH_RUN_CACHE:-$HOME/.cache/mesh-run}"

log() { printf 'kube-assets: %s\n' "$*" >&2; }

have_all() { # have_all DIR BINARY... -> true if DIR holds every binary
  local d=$1
  shift
  for b in "$@"; do [ -x "$d/$b" ] || return 1; done
}

# go_line GO.MOD: its `go` directive (and `godebug` lines), for a build module of our own.
go_line() { grep -E '^(go|godebug) ' "$1"; }

# build_from_modules VERSION ETCD_VERSION: Kubernetes VERSION from k8s.io/kubernetes
# on the Go module proxy, with the etcd its release used.
build_from_modules() {
  local version=$1 etcd_version=$2 dest="$CACHE_ROOT/kube/$1/bin"
  local commands=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  if have_all "$dest" etcd "${commands[@]}"; then log "$version: cached in $dest"; return; fi
  command -v go >/dev/null || { log "Go is required to build Kubernetes $version (install Go 1.26+)"; exit 1; }
  local staging="v0.${version#1.}"
  local work="$CACHE_ROOT/build/kube-$version"
  mkdir -p "$work" "$dest"
  log "$version: building what is missing of etcd ${commands[*]} from k8s.io/kubernetes@v$version (first time: ~10-20 min on 2 cores)"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
  # with folders of its own tree; outside that tree we replace each with the
  # published module of the same release.
  go mod download -json "k8s.io/kubernetes@v$version" >/dev/null
  local kmod
  kmod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$version.mod"
  # The release's own `go` line: Go's GODEBUG defaults follow the main module's
  # go version, so 1.30 runs with the Go 1.22 behaviour it was released with.
  {
    echo "module meshrun.local/kube-build"
    echo
    go_line "$kmod"
    echo
    echo "require k8s.io/kubernetes v$version"
    echo
    echo "replace ("
    sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$kmod" | while read -r m; do
      printf '\t%s => %s %s\n' "$m" "$m" "$staging"
    done
    echo ")"
  } >"$work/go.mod"
  # The version stamps Kubernetes' own build sets (hack/lib/version.sh): /version's
  # gitVersion, and major/minor (1.30 reports them only when stamped; 1.37 derives them).
  local stamps="" pkg minor=${version#1.}
  minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamps+=" -X $pkg.gitVersion=v$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  done
  (
    cd "$work"
    export CGO_ENABLED=0 GOFLAGS=-mod=mod
    for cmd in "${commands[@]}"; do
      [ -x "$dest/$cmd" ] && continue
      log "$version: go build $cmd"
      go build -trimpath -ldflags="-s -w $stamps" \
        -o "$dest/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
      mv "$dest/$cmd.tmp" "$dest/$cmd"
    done
  )
  if [ -x "$dest/etcd" ]; then log "$version: ready in $dest"; return; fi
  local ework="$CACHE_ROOT/build/etcd-$etcd_version"
  mkdir -p "$ework"
  cp "$HERE/kube-build/etcd/main.go" "$ework/main.go"
  (
    cd "$ework"
    if [ ! -f go.mod ]; then
      go mod download -json "go.etcd.io/etcd/server/v3@$etcd_version" >/dev/null
      local emod
      emod="$(go env GOMODCACHE)/cache/download/go.etcd.io/etcd/server/v3/@v/$etcd_version.mod"
      # etcd 3.5 requires reflect2 1.0.1, which walks Go maps through runtime
      # internals changed in Go 1.18 (a segfault in mapiterinit); 1.0.2 is the
      # upstream fix, same API. Requiring it here raises it for 3.5, not for 3.7.
      {
        echo "module meshrun.local/etcd-build"; echo; go_line "$emod"; echo
        echo "require ("
        printf '\tgo.etcd.io/etcd/server/v3 %s\n\tgithub.com/modern-go/reflect2 v1.0.2\n' "$etcd_version"
        echo ")"
      } >go.mod
    fi
    export CGO_ENABLED=0 GOFLAGS=-mod=mod
    log "$version: go build etcd $etcd_version"
    go build -trimpath -ldflags="-s -w" -o "$dest/etcd.tmp" .
    mv "$dest/etcd.tmp" "$dest/etcd"
  )
  log "$version: ready in $dest"
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]; then
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS holds etcd and kube-apiserver: nothing to build"
  exit 0
fi

case "${1:-current}" in
  current | "$CURRENT") build_from_modules "$CURRENT" "$ETCD_VERSION" ;;
  oldest | "$OLDEST") build_from_modules "$OLDEST" "$ETCD_OLDEST_VERSION" ;;
  all) build_from_modules "$CURRENT" "$ETCD_VERSION"; build_from_modules "$OLDEST" "$ETCD_OLDEST_VERSION" ;;
  *) log "unknown version '$1' (known: $CURRENT, $OLDEST, all)"; exit 2 ;;
esac
