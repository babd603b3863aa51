#!/usr/bin/env bash
# How long `mesh-run watch` takes from a save to the first API request of the
# rerun it triggers (issue 5; target: median ≤ 150 ms). A benchmark, not a
# test: it prints figures and fails only if something does not run at all.
#
#   cargo build --release && MESH_RUN=target/release/mesh-run benches/watch_latency.sh [SAVES]
#
# It starts its own one-cluster sandbox (the Kubernetes binaries of
# scripts/kube-assets.sh), watches a playbook whose first step is
# `ensure_namespace` (one GET to the API server), and saves it SAVES times
# (default 20), each save an editor's atomic save (write a temp file, rename).
# `--output json` prints each step when it ends, with its duration: the
# rerun's first request started at (arrival of that step − its duration).
# Save → that start is the latency: the debounce window, building the run's
# engine and kube client, the TLS connection. Save → `rerun` event is the
# debounce alone.
set -euo pipefail

saves=${1:-20}
bin=${MESH_RUN:-target/debug/mesh-run}
[[ -x $bin ]] || { echo "no $bin: cargo build first (or set MESH_RUN)" >&2; exit 2; }
bin=$(realpath "$bin")

work=$(mktemp -d -t mesh-run-watch-latency-XXXXXX)
sandbox_pid=""
watch_pid=""
cleanup() {
    [[ -n $watch_pid ]] && kill -INT "$watch_pid" 2>/dev/null || true
    if [[ -n $sandbox_pid ]]; then
        kill -TERM "$sandbox_pid" 2>/dev/null || true
        wait "$sandbox_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

now_us() { echo "${EPOCHREALTIME/[.,]/}"; }

"$bin" sandbox --clusters bench --dir "$work/sandbox" >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 1 1200); do
    [[ $(cat "$work/sandbox/ready" 2>/dev/null) == "$sandbox_pid" ]] && break
    kill -0 "$sandbox_pid" 2>/dev/null || { cat "$work/sandbox.log" >&2; exit 1; }
    sleep 0.1
done
[[ $(cat "$work/sandbox/ready" 2>/dev/null) == "$sandbox_pid" ]] || { echo "sandbox not ready after 120s" >&2; exit 1; }

mkdir "$work/playbook"
playbook=$work/playbook/main.rhai
write_playbook() {
    cat >"$playbook.tmp" <<EOF
let c = cluster("bench");
c.ensure_namespace("watch-latency");
c.apply(#{ apiVersion: "v1", kind: "ConfigMap",
    metadata: #{ name: "latency", namespace: "watch-latency" }, data: #{ save: "$1" } });
EOF
    mv "$playbook.tmp" "$playbook"
}
write_playbook 0

coproc WATCH { KUBECONFIG=$work/sandbox/kubeconfig exec "$bin" watch "$playbook" --output json 2>"$work/watch.err"; }
watch_pid=$WATCH_PID

# Reads events until the run's summary; sets first_step_us (its start) and rerun_us.
read_run() {
    first_step_us="" rerun_us=""
    while IFS= read -r -t 30 line <&"${WATCH[0]}"; do
        local at
        at=$(now_us)
        case $line in
        *'"event":"rerun"'*) rerun_us=$at ;;
        *'"event":"step"'*)
            if [[ -z $first_step_us && $line =~ \"duration_ms\":([0-9]+) ]]; then
                first_step_us=$((at - BASH_REMATCH[1] * 1000))
            fi
            ;;
        *'"event":"summary"'*) return 0 ;;
        esac
    done
    echo "no end of run; stderr:" >&2
    cat "$work/watch.err" >&2
    exit 1
}

median_ms() { sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m / 1000 }'; }

read_run # the first run
to_request=() to_rerun=()
for i in $(seq 1 "$saves"); do
    sleep 0.3
    saved=$(now_us)
    write_playbook "$i"
    read_run
    to_request+=($((first_step_us - saved)))
    to_rerun+=($((rerun_us - saved)))
done

echo "mesh-run watch, $saves saves ($bin):"
echo "  median save → rerun starts:               $(printf '%s\n' "${to_rerun[@]}" | median_ms) ms"
echo "  median save → first API request of rerun: $(printf '%s\n' "${to_request[@]}" | median_ms) ms (target ≤ 150 ms)"
echo "  all, save → first request (ms):           $(printf '%s\n' "${to_request[@]}" | awk '{ printf "%d ", $1 / 1000 }')"
