#!/usr/bin/env bash
# Installs the real Kubernetes binaries mesh-run's sandbox and tests run:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl,
# one folder per version under ~/.cache/mesh-run/kube/<version>/bin.
# Versions are pinned in scripts/versions.env.
#
#   scripts/kube-assets.sh              # the current version (default for sandbox and tests)
#   scripts/kube-assets.sh 1.20.2       # Debian's 1.20.2 (built from Debian's source package)
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
ETCD_CURRENT=$ETCD_VERSION
LEGACY=$KUBE_LEGACY_VERSION
CACHE_ROOT="${MESH_RUN_CACHE:-$HOME/.cache/mesh-run}"

log() { printf 'kube-assets: %s\n' "$*" >&2; }

have_all() { # have_all DIR BINARY... -> true if DIR holds every binary
  local d=$1
  shift
  for b in "$@"; do [ -x "$d/$b" ] || return 1; done
}

build_current() {
  local version=$CURRENT dest="$CACHE_ROOT/kube/$CURRENT/bin"
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
  {
    echo "module meshrun.local/kube-build"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes v$version"
    echo
    echo "replace ("
    sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$kmod" | while read -r m; do
      printf '\t%s => %s %s\n' "$m" "$m" "$staging"
    done
    echo ")"
  } >"$work/go.mod"
  (
    cd "$work"
    export CGO_ENABLED=0 GOFLAGS=-mod=mod
    for cmd in "${commands[@]}"; do
      [ -x "$dest/$cmd" ] && continue
      log "$version: go build $cmd"
      go build -trimpath -ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$version -X k8s.io/client-go/pkg/version.gitVersion=v$version" \
        -o "$dest/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
      mv "$dest/$cmd.tmp" "$dest/$cmd"
    done
  )
  if [ -x "$dest/etcd" ]; then log "$version: ready in $dest"; return; fi
  local ework="$CACHE_ROOT/build/etcd-$ETCD_CURRENT"
  mkdir -p "$ework"
  cp "$HERE/kube-build/etcd/main.go" "$ework/main.go"
  (
    cd "$ework"
    [ -f go.mod ] || printf 'module meshrun.local/etcd-build\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_CURRENT" >go.mod
    export CGO_ENABLED=0 GOFLAGS=-mod=mod
    log "$version: go build etcd $ETCD_CURRENT"
    go build -trimpath -ldflags="-s -w" -o "$dest/etcd.tmp" .
    mv "$dest/etcd.tmp" "$dest/etcd"
  )
  log "$version: ready in $dest"
}

build_legacy() {
  local version=$LEGACY dest="$CACHE_ROOT/kube/$LEGACY/bin"
  if have_all "$dest" etcd kube-apiserver kube-controller-manager kubectl; then log "$version: cached in $dest"; return; fi
  mkdir -p "$dest"
  log "$version: installing Debian's golang-go and rsync (to build), etcd-server and kubernetes-client (unpacked into the cache)"
  if [ ! -f /etc/apt/sources.list.d/debian-src.sources ]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >/etc/apt/sources.list.d/debian-src.sources
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go rsync >/dev/null
  # etcd and kubectl are unpacked, not installed: some machines ship another
  # package owning /usr/bin/kubectl, and etcd-server would start a service.
  local debs="$CACHE_ROOT/build/debs-$version"
  mkdir -p "$debs"
  (cd "$debs" && apt-get download etcd-server kubernetes-client >/dev/null)
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$debs/root"; done
  for b in etcd kubectl; do # via rename: a running sandbox may be using the old file
    cp "$debs/root/usr/bin/$b" "$dest/$b.tmp" && mv "$dest/$b.tmp" "$dest/$b"
  done
  local work="$CACHE_ROOT/build/kube-$version"
  mkdir -p "$work"
  if [ ! -d "$work/src" ]; then
    (cd "$work" && apt-get source --download-only kubernetes >/dev/null)
    local orig
    orig=$(ls "$work"/kubernetes_*.orig.tar.gz | head -n1)
    mkdir -p "$work/src" && tar -xzf "$orig" -C "$work/src" --strip-components=1
  fi
  ORIG_PATH=$PATH
  (
    cd "$work/src"
    # 2020 code is built with Debian's Go 1.19, not the machine's newer Go.
    export PATH=/usr/lib/go/bin:$PATH GOPATH=$PWD/.go CGO_ENABLED=0 GOFLAGS= GOTOOLCHAIN=local HOME=${HOME:-/root}
    mkdir -p .go/src/k8s.io && ln -sfn ../../.. .go/src/k8s.io/kubernetes
    # The vendored reflect2 1.0.1 walks Go maps through runtime internals that
    # changed in Go 1.18: with Debian's Go 1.19 the apiserver segfaults
    # (mapiterinit) on the first custom resource it decodes. reflect2 1.0.2 is
    # the upstream fix (same API); swap it in, from the Go module proxy.
    local reflect2
    reflect2=$(env -u GOFLAGS PATH="$ORIG_PATH" GOTOOLCHAIN=local go mod download -json github.com/modern-go/reflect2@v1.0.2 | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    chmod -R u+w vendor/github.com/modern-go/reflect2
    rm -f vendor/github.com/modern-go/reflect2/*.go
    cp "$reflect2"/*.go vendor/github.com/modern-go/reflect2/
    chmod -R u+w vendor/github.com/modern-go/reflect2
    log "$version: make kube-apiserver kube-controller-manager (~5 min on 2 cores)"
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$work/make.log" 2>&1 || { tail -30 "$work/make.log" >&2; exit 1; }
    for b in kube-apiserver kube-controller-manager; do
      cp "_output/bin/$b" "$dest/$b.tmp" && mv "$dest/$b.tmp" "$dest/$b"
    done
  )
  log "$version: ready in $dest"
}

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]; then
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS holds etcd and kube-apiserver: nothing to build"
  exit 0
fi

case "${1:-current}" in
  current | "$CURRENT") build_current ;;
  legacy | "$LEGACY") build_legacy ;;
  all) build_current; build_legacy ;;
  *) log "unknown version '$1' (known: $CURRENT, $LEGACY, all)"; exit 2 ;;
esac
