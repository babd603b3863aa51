#!/usr/bin/env bash
# The test command (README "Tests"; CI runs exactly this): installs what the
# tests need (cached), then runs every test against real API servers:
# all of them on the current Kubernetes, the primitives' tests on 1.20.2 too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/kube-assets.sh current
scripts/kube-assets.sh 1.20.2

cargo build --locked --all-targets
cargo test --locked "$@"
MESH_RUN_TEST_KUBE_VERSION=1.20.2 cargo test --locked --test integration primitives:: "$@"

# Nothing the tests started may outlive them.
cache="${MESH_RUN_CACHE:-$HOME/.cache/mesh-run}/kube"
if pgrep -f "^$cache/.*/bin/(etcd|kube-apiserver|kube-controller-manager)" >/dev/null; then
  echo "error: the tests left Kubernetes processes running:" >&2
  pgrep -af "^$cache/.*/bin/(etcd|kube-apiserver|kube-controller-manager)" | cut -c1-160 >&2
  exit 1
fi
