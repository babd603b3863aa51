#!/usr/bin/env bash
# The main job on a fresh machine, in one command: install the Kubernetes and
# Istio test-bed binaries (cached), build mesh-run, start two local real
# clusters (a real istiod, the simulated Sail Operator), run
# playbooks/external.rhai, stop the clusters. As root (the sandbox's network
# namespace); without root the sandbox falls back and says so.
#
#   scripts/demo.sh [extra mesh-run options, e.g. --dry-run or --output json]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/kube-assets.sh current
scripts/istio-assets.sh
cargo build --release --locked --quiet
bin=target/release/mesh-run
dir=$(mktemp -d /tmp/mesh-run-demo.XXXXXX)
rmdir "$dir"

"$bin" sandbox --dir "$dir" --sim-delay 1s >"$dir.sandbox.log" 2>&1 &
sandbox=$!
trap 'kill -TERM $sandbox 2>/dev/null; wait $sandbox 2>/dev/null; rm -f "$dir.sandbox.log"' EXIT
until [ -f "$dir/ready" ]; do
  if ! kill -0 $sandbox 2>/dev/null; then cat "$dir.sandbox.log" >&2; exit 1; fi
  sleep 0.2
done
export KUBECONFIG="$dir/kubeconfig"
"$bin" playbooks/external.rhai \
  --set CTX_CONTROL_PLANE_CLUSTER=control-plane \
  --set CTX_DATA_PLANE_CLUSTER=data-plane "$@"
