#!/usr/bin/env bash
# The test command (README "Tests"; CI runs exactly this): installs what the
# tests need (cached), then runs every test against real API servers:
# all of them on the current Kubernetes, then the integration tests again on the
# oldest version (scripts/versions.env KUBE_OLDEST_VERSION), real istiod included.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/kube-assets.sh current
scripts/kube-assets.sh oldest
scripts/istio-assets.sh

# Nothing the tests start may outlive them (sandboxes started by hand are not ours).
cache="${MESH_RUN_CACHE:-$HOME/.cache/mesh-run}/kube"
kwok="${MESH_RUN_CACHE:-$HOME/.cache/mesh-run}/kwok"
istio="${MESH_RUN_CACHE:-$HOME/.cache/mesh-run}/istio"
pattern="^($cache/.*/bin/(etcd|kube-apiserver|kube-controller-manager|kube-scheduler)|$kwok/.*/kwok |$istio/.*/bin/pilot-discovery )"
before=$(pgrep -f "$pattern" | sort || true)
# Nor network namespaces and veths of sandboxes (named after their PIDs).
networks() { { ip netns list 2>/dev/null | grep -o '^mesh-run-[0-9]*'; ip -o link show 2>/dev/null | grep -o ' mrh[0-9]*' | tr -d ' '; } | sort || true; }
networks_before=$(networks)

# Every kube-apiserver, controller manager and istiod holds inotify instances
# (certificate and mesh-config reloads): with the suite's many sandboxes the
# default 128 per user runs out, and `mesh-run watch` then cannot start.
if [ "$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo 0)" -lt 1024 ]; then
  sysctl -qw fs.inotify.max_user_instances=1024 2>/dev/null ||
    echo "note: fs.inotify.max_user_instances is below 1024 and cannot be raised here: watch tests may fail with 'Too many open files'" >&2
fi

cargo build --locked --all-targets
cargo test --locked "$@"
MESH_RUN_TEST_KUBE_VERSION=oldest cargo test --locked --test integration "$@"

leaked=$(comm -13 <(echo "$before") <(pgrep -f "$pattern" | sort || true))
if [ -n "$leaked" ]; then
  echo "error: the tests left Kubernetes or istiod processes running:" >&2
  for pid in $leaked; do ps -o pid=,args= -p "$pid" | cut -c1-160 >&2 || true; done
  exit 1
fi
echo "no etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok or pilot-discovery left running by the tests"

left=$(comm -13 <(echo "$networks_before") <(networks))
if [ -n "$left" ]; then
  echo "error: the tests left network namespaces or veths of sandboxes:" $left >&2
  exit 1
fi
echo "no sandbox network namespace or veth left by the tests"
