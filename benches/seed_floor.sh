# Sourced by benches/run.sh: the seed procedure's floor, and the seed row on a
# busy sandbox (issue 17). Uses run.sh's helpers (timed, timed_cpu, median, s,
# row, note, teardown, start_sandbox, stop_sandbox).
#
# On the real-Istio bed every peer ends the procedure waiting for the cluster:
# the gateway's address (simulated LoadBalancer), the istiod account the
# operator creates for step 6, the token controller, then istiod's start
# (Deployment, Pod on a kwok Node, pilot-discovery answering /ready) and Sail's
# probe of it (every 3 s, so 0–3 s after istiod is up). No client can shorten
# those; they are the floor. A peer's own time is its wall time minus the time
# it spent in those waits, measured per run from the peer's own record:
# mesh-run's `wait` steps (--output json), the kubectl script's `kubectl wait`
# calls (bash xtrace timestamps), the Ansible tasks named "Wait for"
# (ansible.posix.json callback). Each wait also holds the peer's own reaction
# (mesh-run and kubectl watch, Ansible polls every second and starts a
# process per task), so the split is in kubectl's and Ansible's favour.

# mesh_waits LOG: µs in mesh-run's wait steps (LOG: its --output json, stderr mixed in).
mesh_waits() {
    jq -Rn '[inputs | fromjson? | select(.event == "step" and .action == "wait") | .duration_ms] | add // 0 | . * 1000 | floor' "$1"
}

# mesh_changed LOG: the `changed` count of mesh-run's summary event.
mesh_changed() { jq -Rn '[inputs | fromjson? | select(.event == "summary") | .changed] | last // "?"' "$1"; }

# kubectl_traced TRACE CP DP: benches/external-kubectl.sh with each command's
# start (EPOCHREALTIME) in TRACE. Tracing is bash writing a line per command:
# microseconds against kubectl's ~60 ms process starts.
kubectl_traced() {
    TRACE=$1 bash -c 'PS4="+ \${EPOCHREALTIME} "; exec {BASH_XTRACEFD}>"$TRACE"; set -x; . "$0" "$@"' \
        benches/external-kubectl.sh "$2" "$3"
}

# kubectl_waits TRACE: µs in the script's `kubectl wait` processes (each one
# lasts until the next traced command starts).
kubectl_waits() {
    awk '{ sub(/^\++ /, ""); t[NR] = $1; $1 = ""; c[NR] = $0 }
        END { for (i = 1; i < NR; i++) if (c[i] ~ /^ \/.*kubectl --context [^ ]+ wait /) w += t[i + 1] - t[i]; printf "%d", w * 1e6 }' "$1"
}

# ansible_waits JSON: µs in the playbook's "Wait for" tasks (ansible.posix.json output).
ansible_waits() {
    jq '[.plays[].tasks[] | select(.task.name | startswith("Wait for")) | .task.duration
        | ((.end | sub("\\.[0-9]+Z$"; "Z") | fromdate) + (.end | capture("(?<f>\\.[0-9]+)Z$").f | tonumber))
        - ((.start | sub("\\.[0-9]+Z$"; "Z") | fromdate) + (.start | capture("(?<f>\\.[0-9]+)Z$").f | tonumber))]
        | add // 0 | . * 1e6 | floor' "$1"
}

# own_row NAME MESH_WALLS MESH_WAITS BASE_WALLS BASE_WAITS BASE_NAME TARGET_X:
# a row of the medians of wall − waits (space-separated µs lists, run by run).
own_row() {
    local name=$1 base=$6 target=$7 mw mwt bw bwt i mo=() bo=() m b
    read -ra mw <<<"$2"
    read -ra mwt <<<"$3"
    read -ra bw <<<"$4"
    read -ra bwt <<<"$5"
    for i in "${!mw[@]}"; do mo+=($((mw[i] - mwt[i]))); done
    for i in "${!bw[@]}"; do bo+=($((bw[i] - bwt[i]))); done
    m=$(printf '%s\n' "${mo[@]}" | median | round)
    b=$(printf '%s\n' "${bo[@]}" | median | round)
    row "$name" "$(s "$m")" "$base $(s "$b")" "$(ratio "$m" "$b")" "≥ ${target}× faster" "$(met "$b / $m >= $target")"
    echo "   own (s): mesh-run $(printf '%s\n' "${mo[@]}" | awk '{ printf "%.2f ", $1 / 1e6 }')| $base $(printf '%s\n' "${bo[@]}" | awk '{ printf "%.2f ", $1 / 1e6 }')"
    echo "   waits (s): mesh-run $(printf '%s\n' "${mwt[@]}" | awk '{ printf "%.2f ", $1 / 1e6 }')| $base $(printf '%s\n' "${bwt[@]}" | awk '{ printf "%.2f ", $1 / 1e6 }')"
}

# seed_pairs PREFIX CP_A DP_A CP_B DP_B: RUNS alternating runs, external.rhai
# on pair A and the kubectl script on pair B, each after a warm-up on its
# pair; rows PREFIXa (wall) and PREFIXb (own time), a note with the CPU.
seed_pairs() {
    local prefix=$1 label=$2 cpa=$3 dpa=$4 cpb=$5 dpb=$6
    local sets=(--set "CTX_CONTROL_PLANE_CLUSTER=$cpa" --set "CTX_DATA_PLANE_CLUSTER=$dpa")
    local mesh=() kube=() mwait=() kwait=() mcpu=() kcpu=() mown=() kown=() i t w c sb
    timed "$work/$prefix-warmup-mesh-run.log" "$bin" playbooks/external.rhai "${sets[@]}" >/dev/null
    teardown "$cpa" "$dpa"
    timed "$work/$prefix-warmup-kubectl.log" benches/external-kubectl.sh "$cpb" "$dpb" >/dev/null
    teardown "$cpb" "$dpb"
    for i in $(seq 1 "$RUNS"); do
        t=$(timed_cpu "$work/$prefix-mesh-run-$i.log" "$bin" playbooks/external.rhai "${sets[@]}" --output json)
        read -r w c sb <<<"$t"
        mesh+=("$w") mcpu+=($((c + sb))) mown+=("$c")
        mwait+=("$(mesh_waits "$work/$prefix-mesh-run-$i.log")")
        teardown "$cpa" "$dpa"
        t=$(timed_cpu "$work/$prefix-kubectl-$i.log" kubectl_traced "$work/$prefix-kubectl-$i.trace" "$cpb" "$dpb")
        read -r w c sb <<<"$t"
        kube+=("$w") kcpu+=($((c + sb))) kown+=("$c")
        kwait+=("$(kubectl_waits "$work/$prefix-kubectl-$i.trace")")
        teardown "$cpb" "$dpb"
    done
    local m k
    m=$(printf '%s\n' "${mesh[@]}" | median | round)
    k=$(printf '%s\n' "${kube[@]}" | median | round)
    row "${prefix}a. seed procedure, $label, median of $RUNS" "$(s "$m")" "kubectl script $(s "$k")" "$(ratio "$m" "$k")" "≥ 10× faster" \
        "$(met "$k / $m >= 10")"
    echo "   all runs (s): mesh-run $(printf '%s\n' "${mesh[@]}" | awk '{ printf "%.2f ", $1 / 1e6 }')| kubectl $(printf '%s\n' "${kube[@]}" | awk '{ printf "%.2f ", $1 / 1e6 }')"
    own_row "${prefix}b. seed, own time (wall − waits on the cluster), $label" "${mesh[*]}" "${mwait[*]}" "${kube[*]}" "${kwait[*]}" \
        "kubectl script" 10
    local mw kw mc kc_ mo ko
    mo=$(printf '%s\n' "${mown[@]}" | median | round)
    ko=$(printf '%s\n' "${kown[@]}" | median | round)
    mw=$(printf '%s\n' "${mwait[@]}" | median | round)
    kw=$(printf '%s\n' "${kwait[@]}" | median | round)
    mc=$(printf '%s\n' "${mcpu[@]}" | median | round)
    kc_=$(printf '%s\n' "${kcpu[@]}" | median | round)
    note "${prefix}. Seed, $label (medians): mesh-run waited $(s "$mw") of its $(s "$m") on the cluster (the operator's istiod account," \
        "istiod's start, Sail's probe), the kubectl script $(s "$kw") of $(s "$k"): the floor, less what a client's own" \
        "steps overlap (a slower client is still applying while istiod starts, and waits less)." \
        "CPU per run, the sandbox's processes + the client: $(s "$mc") with mesh-run (its own $(s "$mo")), $(s "$kc_") with kubectl" \
        "(its own $(s "$ko")): mesh-run's own time is mostly waiting for API responses, the API servers sharing the cores" \
        "($(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg))."
}

# The seed row on a busy sandbox: 4 clusters (two pairs, both warmed), each
# tool on its own pair, so both pairs' API servers, etcds, controllers and
# istiods share the cores while each tool runs.
seed_busy() {
    echo "sandbox: control-plane, data-plane, cp2, dp2 (--sim-delay 0s)"
    start_sandbox busy control-plane,data-plane,cp2,dp2
    # What the idle sandbox itself takes of the cores, against the machine's load.
    local stats before after
    mapfile -t stats < <(sandbox_stats "$sandbox_dir")
    before=$(cpu_us "${stats[@]}")
    sleep 5
    after=$(cpu_us "${stats[@]}")
    note "9. The idle 4-cluster sandbox (4 API servers, etcds, controller managers, schedulers, kwoks, the simulators) uses" \
        "$(awk -v c=$((after - before)) 'BEGIN { printf "%.2f", c / 5e6 }') cores of $(nproc); the machine's load average meanwhile:" \
        "$(cut -d' ' -f1-3 /proc/loadavg)."
    seed_pairs 9 "4-cluster sandbox, each tool on its own pair" control-plane data-plane cp2 dp2
    stop_sandbox
}
