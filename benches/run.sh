#!/usr/bin/env bash
# mesh-run against kubectl (issue 6) and Ansible (issue 17), side by side on
# the same real clusters.
# A benchmark, not a test: it prints figures, writes BENCHMARKS.md, and fails
# only if something does not run at all.
#
#   benches/run.sh                 # everything (~5 minutes on 2 cores)
#   RUNS=3 WAITS=10 benches/run.sh # quicker, noisier
#   benches/run.sh seed wait       # some sections only (seed memory configmaps
#                                  # wait watch scale status bed ansible busy);
#                                  # BENCHMARKS.md untouched
#   WRITE=1 benches/run.sh ansible # the same, and its rows replace theirs in
#                                  # BENCHMARKS.md (benches/benchmarks_md.sh)
#   MESH_RUN=path benches/run.sh   # that binary instead of building the release one
#
# It builds the release binary, starts `mesh-run sandbox --sim-delay 0s` (real
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with two
# fake Nodes per cluster in a network namespace; the simulated Sail Operator
# renders the real Istio charts at once, istiod Pods run as real pilot-discovery
# processes), and measures:
#   1. the seed procedure: playbooks/external.rhai vs benches/external-kubectl.sh
#      (median of RUNS each, alternating, everything deleted between runs
#      outside the timed part), in wall time and in own time: wall time minus
#      the waits on the cluster (istiod's start, Sail's probe), the floor no
#      client can shorten (benches/seed_floor.sh);
#   2. 1,000 ConfigMaps from one file: apply_file vs `kubectl apply --server-side`
#      (a fresh namespace per run);
#   3. wait latency: a ConfigMap is patched while a wait on its value runs;
#      latency = the wait's output line arriving − the patch response (as
#      kubectl -v=6 timestamps it); mesh-run's `wait` (--output json) vs `kubectl wait --for=jsonpath`;
#   4. watch mode, save → first API request of the rerun (benches/watch_latency.sh);
#   5. peak RSS of external.rhai vs kubectl's biggest call of the script, and
#      cold start of `mesh-run check` vs `kubectl version --client`;
#   6. scale: playbooks/external-multi-dataplane.rhai with 1 + 8 clusters vs
#      1 + 1, on a second sandbox of 9 clusters;
#  10. status: `mesh-run status` of the installed 1 + 8 mesh (every cluster read
#      concurrently, remote secrets tried live, istiod asked), median of STATUS_RUNS;
#   7. the test bed itself (BED_RUNS sandboxes of 2 clusters, one after the
#      other): start until DIR/ready, RSS per cluster idle and after
#      external.rhai, each istiod's RSS, istiod's start (the wait on Istio
#      external-istiod's Ready on the control plane) and external.rhai end to
#      end against its floor (istiod's start + the Sail Operator's 3 s probe);
#   8. Ansible (benches/ansible_peer.sh): external.rhai vs
#      benches/external-ansible.yml (kubernetes.core, from a venv that
#      benches/ansible.sh makes once), wall, own time, peak RSS, a rerun with
#      nothing to change, the objects compared, where Ansible's time goes;
#   9. the seed row on a busy sandbox: 4 clusters, each tool on its own pair.
# The machine (cores, CPU, memory, kernel, load) and the git commit go into
# BENCHMARKS.md with the table. kubectl keeps its discovery cache in
# ~/.kube/cache as it does for anyone; one untimed warm-up run fills it.
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
RUNS=${RUNS:-5}
WAITS=${WAITS:-20}
COLD=${COLD:-20}
SAVES=${SAVES:-20}
SCALE_RUNS=${SCALE_RUNS:-3}
SCALE_DATA_PLANES=${SCALE_DATA_PLANES:-8}
STATUS_RUNS=${STATUS_RUNS:-5}
BED_RUNS=${BED_RUNS:-3}
BED_IDLE=${BED_IDLE:-5}
ANSIBLE_RUNS=${ANSIBLE_RUNS:-3}
kubectl=${KUBECTL:-$HOME/.cache/mesh-run/kube/1.37.2/bin/kubectl}
[[ -x $kubectl ]] || { echo "no $kubectl: run scripts/kube-assets.sh first (or set KUBECTL)" >&2; exit 2; }

bin=${MESH_RUN:-}
if [[ -z $bin ]]; then
    cargo build --release --quiet
    bin=$repo/target/release/mesh-run
fi

work=$(mktemp -d -t mesh-run-bench-XXXXXX)
sandbox_pid=""
stop_sandbox() {
    if [[ -n $sandbox_pid ]]; then
        kill -TERM "$sandbox_pid" 2>/dev/null || true
        wait "$sandbox_pid" 2>/dev/null || true
        sandbox_pid=""
    fi
}
trap 'stop_sandbox; rm -rf "$work"' EXIT

# start_sandbox NAME CLUSTERS: a sandbox in $work/NAME; exports its KUBECONFIG.
start_sandbox() {
    local dir=$work/$1
    "$bin" sandbox --sim-delay 0s --dir "$dir" --clusters "$2" >"$work/$1.log" 2>&1 &
    sandbox_pid=$!
    sandbox_dir=$dir
    for _ in $(seq 1 1800); do
        [[ $(cat "$dir/ready" 2>/dev/null) == "$sandbox_pid" ]] && break
        kill -0 "$sandbox_pid" 2>/dev/null || { cat "$work/$1.log" >&2; exit 1; }
        sleep 0.1
    done
    [[ $(cat "$dir/ready" 2>/dev/null) == "$sandbox_pid" ]] || { echo "sandbox $1 not ready after 180s" >&2; exit 1; }
    export KUBECONFIG=$dir/kubeconfig
}

now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
# round: a median of an even count (x.5) as a whole number, for $((...)).
round() { awk '{ printf "%d", $1 + 0.5 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
s() { awk -v u="$1" 'BEGIN { printf "%.2f s", u / 1e6 }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.1f ms", u / 1e3 }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }

# timed LOG CMD...: runs CMD (output to LOG), prints its wall time in µs; a failure stops the bench.
timed() {
    local log=$1 start end
    shift
    start=$(now_us)
    "$@" >"$log" 2>&1 || { echo "failed: $* (log: $log)" >&2; tail -20 "$log" >&2; exit 1; }
    end=$(now_us)
    echo $((end - start))
}

# sandbox_stats DIR: the /proc/PID/stat files of the sandbox started in DIR:
# its etcds, API servers, controller managers and the simulator (every
# process whose command line names DIR).
sandbox_stats() {
    local f
    for f in /proc/[0-9]*/cmdline; do
        grep -qF -- "$1" "$f" 2>/dev/null && echo "${f%/cmdline}/stat"
    done
}

# cpu_us STAT...: CPU time (µs, user + system) those processes used so far.
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{ t += $14 + $15 } END { printf "%d", t * 1e6 / hz }' "$@"; }

# timed_cpu LOG CMD...: like `timed`, and where the CPU went:
# "WALL_US CLIENT_CPU_US SANDBOX_CPU_US" (the command's own CPU; the sandbox's
# during the command, read just before and just after it). CPU, unlike wall
# time, does not shrink with concurrency: the sum divided by the cores is the
# least wall time any client could take for the same work on this machine.
timed_cpu() {
    local log=$1 stats before wall after u0 s0 u1 s1
    shift
    mapfile -t stats < <(sandbox_stats "$sandbox_dir")
    before=$(cpu_us "${stats[@]}")
    # `times` (a redirect, not a pipe: a subshell would see no children)
    # before and after: the difference is the command's CPU.
    times >"$log.times"
    wall=$(timed "$log" "$@")
    times >>"$log.times"
    after=$(cpu_us "${stats[@]}")
    read -r u0 s0 < <(sed -n 2p "$log.times")
    read -r u1 s1 < <(sed -n 4p "$log.times")
    echo "$wall $(($(secs_us "$u1") + $(secs_us "$s1") - $(secs_us "$u0") - $(secs_us "$s0"))) $((after - before))"
}
# secs_us 0m0.123s -> 123000
secs_us() { awk -v t="$1" 'BEGIN { split(t, p, "m"); sub("s", "", p[2]); printf "%d", (p[1] * 60 + p[2]) * 1e6 }'; }

# The table: one row per figure, printed as it is measured.
rows=()
# row NAME MESH_RUN BASELINE RATIO TARGET MET
row() {
    rows+=("| $1 | $2 | $3 | $4 | $5 | $6 |")
    printf '%-44s mesh-run %-10s  %-26s ratio %-7s target %-12s %s\n' "$1" "$2" "$3" "$4" "$5" "$6"
}
# Notes under the table: where the time goes, for the rows that need it.
notes=()
note() {
    notes+=("$*")
    echo "   $*"
}
# faster-by MESH_US BASELINE_US TARGET_X: "12.3×" and whether it meets the target.
ratio() { awk -v m="$1" -v b="$2" 'BEGIN { printf "%.1f×", b / m }'; }
met() { awk "BEGIN { print ($1) ? \"yes\" : \"**no**\" }"; }

# --- 1. the seed procedure --------------------------------------------------

kc() { "$kubectl" --context "$@"; }
# Deletes what external.rhai creates on CP and the data planes DPS..., Istio
# resources first, each cluster concurrently. (Waits for these pids only: a
# bare `wait` would wait for the sandbox too.)
teardown() {
    local cp=$1 pids=()
    shift
    kc "$cp" delete istio default external-istiod --ignore-not-found >/dev/null & pids+=($!)
    for dp in "$@"; do
        kc "$dp" delete istio external-istiod --ignore-not-found >/dev/null & pids+=($!)
        kc "$dp" delete istiocni default --ignore-not-found >/dev/null & pids+=($!)
    done
    wait "${pids[@]}"
    pids=()
    kc "$cp" delete namespace istio-system external-istiod --ignore-not-found >/dev/null & pids+=($!)
    for dp in "$@"; do
        kc "$dp" delete namespace external-istiod istio-cni --ignore-not-found >/dev/null & pids+=($!)
    done
    wait "${pids[@]}"
}

seed_procedure() {
    seed_pairs 1 "2-cluster sandbox" control-plane data-plane control-plane data-plane
}

# --- 5. peak memory and cold start -----------------------------------------

memory_and_cold_start() {
    local sets=(--set CTX_CONTROL_PLANE_CLUSTER=control-plane --set CTX_DATA_PLANE_CLUSTER=data-plane)
    /usr/bin/time -v "$bin" playbooks/external.rhai "${sets[@]}" >"$work/rss-mesh-run.log" 2>&1
    local mesh_kb
    mesh_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/rss-mesh-run.log")
    teardown control-plane data-plane
    KUBECTL_RSS_LOG=$work/rss-kubectl.txt benches/external-kubectl.sh control-plane data-plane >/dev/null 2>&1
    teardown control-plane data-plane
    local kube_kb kube_call
    kube_kb=$(sort -n "$work/rss-kubectl.txt" | tail -1 | cut -d' ' -f1)
    kube_call=$(sort -n "$work/rss-kubectl.txt" | tail -1 | cut -d' ' -f2- | cut -c1-60)
    row "5a. peak RSS, external.rhai" "$(mb "$mesh_kb")" "kubectl's biggest call $(mb "$kube_kb")" "$(ratio "$mesh_kb" "$kube_kb")" "≤ 40 MB" \
        "$(met "$mesh_kb <= 40 * 1024")"
    echo "   kubectl's biggest call: $kube_call"

    local mesh=() kube=()
    "$bin" check playbooks/external.rhai >/dev/null
    "$kubectl" version --client >/dev/null
    for _ in $(seq 1 "$COLD"); do
        mesh+=("$(timed /dev/null "$bin" check playbooks/external.rhai)")
        kube+=("$(timed /dev/null "$kubectl" version --client)")
    done
    local m k
    m=$(printf '%s\n' "${mesh[@]}" | median)
    k=$(printf '%s\n' "${kube[@]}" | median)
    row "5b. cold start, \`check external.rhai\` ($COLD)" "$(ms "$m")" "\`kubectl version --client\` $(ms "$k")" "$(ratio "$m" "$k")" "≤ 30 ms" \
        "$(met "$m <= 30000")"
}

# --- 2. 1,000 ConfigMaps ----------------------------------------------------

configmaps() {
    local dir=$work/configmaps
    mkdir -p "$dir"
    for i in $(seq 1 1000); do
        printf -- '---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%04d\n  labels:\n    bench: configmaps\ndata:\n  index: "%d"\n  payload: "%s"\n' \
            "$i" "$i" "value-of-configmap-$i"
    done >"$dir/cms.yaml"
    cat >"$dir/apply.rhai" <<'EOF'
let c = cluster(input("CTX"));
c.apply_file("cms.yaml", #{ namespace: input("NS") });
EOF
    local mesh=() kube=() mesh_cpu=() kube_cpu=() mesh_own=() kube_own=()
    for i in $(seq 0 "$RUNS"); do
        kc control-plane create namespace "cms-mesh-run-$i" >/dev/null
        kc control-plane create namespace "cms-kubectl-$i" >/dev/null
        local m k mw mc ms kw kc_ ks
        # An ApplySet per run (--instance), as kubectl's apply without --prune keeps
        # each namespace's objects: one set for all runs would prune the previous
        # run's 1,000 ConfigMaps (correctly: the playbook no longer applies them).
        m=$(timed_cpu "$work/cms-mesh-run-$i.log" "$bin" "$dir/apply.rhai" --set CTX=control-plane --set "NS=cms-mesh-run-$i" --instance "run-$i" --output json)
        k=$(timed_cpu "$work/cms-kubectl-$i.log" "$kubectl" --context control-plane apply --server-side -f "$dir/cms.yaml" -n "cms-kubectl-$i")
        read -r mw mc ms <<<"$m"
        read -r kw kc_ ks <<<"$k"
        # Run 0 warms up both; its namespaces and the others stay until the sandbox stops.
        if ((i > 0)); then
            mesh+=("$mw") kube+=("$kw")
            mesh_cpu+=("$ms") kube_cpu+=("$ks") mesh_own+=("$mc") kube_own+=("$kc_")
        fi
    done
    m=$(printf '%s\n' "${mesh[@]}" | median)
    k=$(printf '%s\n' "${kube[@]}" | median)
    row "2. 1,000 ConfigMaps, one file, median of $RUNS" "$(s "$m")" "\`kubectl apply --server-side\` $(s "$k")" "$(ratio "$m" "$k")" "≥ 5× faster" \
        "$(met "$k / $m >= 5")"
    local sm so sk sko floor
    sm=$(printf '%s\n' "${mesh_cpu[@]}" | median)
    so=$(printf '%s\n' "${mesh_own[@]}" | median)
    sk=$(printf '%s\n' "${kube_cpu[@]}" | median)
    sko=$(printf '%s\n' "${kube_own[@]}" | median)
    floor=$(((sm + so) / $(nproc)))
    note "2. CPU per run (medians): with mesh-run, the sandbox (API server, etcd, controller manager) $(s "$sm") + mesh-run $(s "$so");" \
        "with kubectl, the sandbox $(s "$sk") + kubectl $(s "$sko"). The 1,000 server-side applies alone need $(s "$sm") of CPU, so on" \
        "$(nproc) cores no client can finish in less than $(s "$floor") ((sandbox + client CPU) / cores): here the best possible ratio" \
        "is $(ratio "$floor" "$k"), and mesh-run takes $(awk -v m="$m" -v f="$floor" 'BEGIN { printf "%.2f", m / f }')× that floor."
}

# --- 3. wait latency ---------------------------------------------------------

# patch_value NS VALUE: sets data.v of ConfigMap `latency`; prints when the
# response arrived (µs since the epoch): the timestamp kubectl logs (-v=6) on
# receiving it, so neither kubectl's start nor its exit counts as latency.
patch_value() {
    local logged
    logged=$(kc control-plane patch configmap latency -n "$1" --type=merge -p "{\"data\":{\"v\":\"$2\"}}" -v=6 2>&1 |
        sed -n 's/^I[0-9]\{4\} \([0-9:.]*\) .*"Response" verb="PATCH".*/\1/p')
    date -d "$(date +%F) $logged" +%s%6N
}

wait_latency() {
    local ns=wait-latency
    kc control-plane create namespace "$ns" >/dev/null
    kc control-plane create configmap latency -n "$ns" --from-literal=v=0 >/dev/null

    # mesh-run: one playbook waiting WAITS times, for v=1, then v=2, ...
    cat >"$work/wait.rhai" <<'EOF'
let c = cluster(input("CTX"));
for i in 1..=parse_int(input("WAITS")) {
    c.wait("configmap/latency", #{ namespace: input("NS"), "for": `jsonpath={.data.v}=${i}`, timeout: "60s" });
}
EOF
    local mesh=() kube=() line patched out pid
    coproc WAIT { exec "$bin" "$work/wait.rhai" --set CTX=control-plane --set "NS=$ns" --set "WAITS=$WAITS" --output json 2>"$work/wait.err"; }
    # Own copies: bash forgets a coprocess's descriptors and pid once it exits.
    pid=$WAIT_PID
    exec {out}<&"${WAIT[0]}"
    for i in $(seq 1 "$WAITS"); do
        # The wait's first progress event: it has listed the object and is watching.
        while IFS= read -r -t 30 line <&"$out" && [[ $line != *'"event":"progress"'* ]]; do :; done
        sleep 0.2
        patched=$(patch_value "$ns" "$i")
        while IFS= read -r -t 30 line <&"$out" && [[ $line != *'"event":"step"'* ]]; do :; done
        mesh+=($(($(now_us) - patched)))
    done
    wait "$pid" || { cat "$work/wait.err" >&2; exit 1; }
    exec {out}<&-

    # kubectl wait: one process per wait, watching for a second before the patch.
    for i in $(seq $((WAITS + 1)) $((2 * WAITS))); do
        coproc KWAIT { exec "$kubectl" --context control-plane wait -n "$ns" configmap/latency --for="jsonpath={.data.v}=$i" --timeout=60s 2>&1; }
        pid=$KWAIT_PID
        exec {out}<&"${KWAIT[0]}"
        sleep 1
        patched=$(patch_value "$ns" "$i")
        IFS= read -r -t 30 line <&"$out"
        kube+=($(($(now_us) - patched)))
        wait "$pid"
        exec {out}<&-
    done
    local m k
    m=$(printf '%s\n' "${mesh[@]}" | median)
    k=$(printf '%s\n' "${kube[@]}" | median)
    row "3. wait latency, median of $WAITS" "$(ms "$m")" "\`kubectl wait\` $(ms "$k")" "$(ratio "$m" "$k")" "≤ 20 ms" "$(met "$m <= 20000")"
    echo "   all (ms): mesh-run $(printf '%s\n' "${mesh[@]}" | awk '{ printf "%.1f ", $1 / 1e3 }')"
    echo "             kubectl $(printf '%s\n' "${kube[@]}" | awk '{ printf "%.1f ", $1 / 1e3 }')"
}

# --- 4. watch mode -----------------------------------------------------------

watch_mode() {
    MESH_RUN=$bin benches/watch_latency.sh "$SAVES" >"$work/watch.log" 2>&1 || { cat "$work/watch.log" >&2; exit 1; }
    local m
    m=$(sed -n 's/.*first API request of rerun: *\([0-9.]*\) ms.*/\1/p' "$work/watch.log")
    row "4. watch: save → first request, median of $SAVES" "$m ms" "—" "—" "≤ 150 ms" "$(met "$m <= 150")"
}

# --- 6. scale ----------------------------------------------------------------

scale() {
    local playbook=playbooks/external-multi-dataplane.rhai
    [[ -e $playbook ]] || { row "6. scale 1 + $SCALE_DATA_PLANES vs 1 + 1" "—" "—" "—" "≤ 2×" "($playbook missing)"; return; }
    local dps=() one=() many=()
    for i in $(seq 1 "$SCALE_DATA_PLANES"); do dps+=("dp$i"); done
    start_sandbox scale "control-plane,$(IFS=,; echo "${dps[*]}")"
    local all
    all=$(IFS=,; echo "${dps[*]}")
    local cpu1=() cpun=()
    for i in $(seq 0 "$SCALE_RUNS"); do
        local t1 tn w1 c1 s1 wn cn sn
        t1=$(timed_cpu "$work/scale-1-$i.log" "$bin" "$playbook" --set CTX_CONTROL_PLANE_CLUSTER=control-plane --set CTX_DATA_PLANE_CLUSTERS=dp1 --output json)
        teardown control-plane dp1
        tn=$(timed_cpu "$work/scale-n-$i.log" "$bin" "$playbook" --set CTX_CONTROL_PLANE_CLUSTER=control-plane --set "CTX_DATA_PLANE_CLUSTERS=$all" --output json)
        ((i < SCALE_RUNS)) || ! want status || status_of_mesh
        teardown control-plane "${dps[@]}"
        read -r w1 c1 s1 <<<"$t1"
        read -r wn cn sn <<<"$tn"
        if ((i > 0)); then
            one+=("$w1") many+=("$wn")
            cpu1+=($((c1 + s1))) cpun+=($((cn + sn)))
        fi
    done
    stop_sandbox
    local m1 mn c1m cnm floor
    m1=$(printf '%s\n' "${one[@]}" | median)
    mn=$(printf '%s\n' "${many[@]}" | median)
    row "6. scale: 1 + $SCALE_DATA_PLANES clusters, median of $SCALE_RUNS" "$(s "$mn")" "1 + 1 clusters $(s "$m1")" \
        "$(awk -v a="$mn" -v b="$m1" 'BEGIN { printf "%.1f×", a / b }')" "≤ 2× the 1 + 1" "$(met "$mn / $m1 <= 2")"
    c1m=$(printf '%s\n' "${cpu1[@]}" | median)
    cnm=$(printf '%s\n' "${cpun[@]}" | median)
    floor=$((cnm / $(nproc)))
    note "6. CPU per run (medians, sandbox + mesh-run): 1 + 1 $(s "$c1m"), 1 + $SCALE_DATA_PLANES $(s "$cnm"): each data plane costs its API" \
        "server, etcd and the simulated operator about $(s $(((cnm - c1m) / (SCALE_DATA_PLANES - 1)))) of CPU. On $(nproc) cores 1 + $SCALE_DATA_PLANES" \
        "cannot take less than $(s "$floor") (CPU / cores), i.e. $(awk -v f="$floor" -v b="$m1" 'BEGIN { printf "%.1f×", f / b }') the 1 + 1 run even with" \
        "perfect overlap; mesh-run takes $(awk -v m="$mn" -v f="$floor" 'BEGIN { printf "%.2f", m / f }')× that floor."
}

# --- 10. status ----------------------------------------------------------------

# status_checked ARGS...: `mesh-run status`, which may find failed checks (exit 1) but must run.
status_checked() {
    local code=0
    "$bin" status "$@" || code=$?
    ((code <= 1))
}

# status_of_mesh: on a sandbox of control-plane + dp1..dpN (N = SCALE_DATA_PLANES,
# started here unless `scale` left one), the mesh installed once, then
# `mesh-run status` of all 1 + N clusters, median of STATUS_RUNS after a warm-up.
status_of_mesh() {
    local dps=() times=() all i
    for i in $(seq 1 "$SCALE_DATA_PLANES"); do dps+=("dp$i"); done
    all=$(IFS=,; echo "${dps[*]}")
    [[ -n $sandbox_pid ]] || start_sandbox status "control-plane,$all"
    timed "$work/status-install.log" "$bin" playbooks/external-multi-dataplane.rhai \
        --set CTX_CONTROL_PLANE_CLUSTER=control-plane --set "CTX_DATA_PLANE_CLUSTERS=$all" >/dev/null
    for i in $(seq 0 "$STATUS_RUNS"); do
        local t
        t=$(timed "$work/status-$i.log" status_checked --context "control-plane,$all" --output json)
        ((i > 0)) && times+=("$t")
    done
    local m failed
    m=$(printf '%s\n' "${times[@]}" | median | round)
    failed=$(grep -c '"verdict": "fail"' "$work/status-$STATUS_RUNS.log" || true)
    row "10. status of 1 + $SCALE_DATA_PLANES clusters, median of $STATUS_RUNS" "$(s "$m")" "—" "—" "≤ 1 s" "$(met "$m <= 1000000")"
    note "10. status read $((SCALE_DATA_PLANES + 1)) clusters concurrently, tried $SCALE_DATA_PLANES remote secrets live and asked istiod's" \
        "/debug/clusterz; $failed check(s) failed on the installed mesh."
}

# --- 7. the real-Istio test bed --------------------------------------------

# proc_table DIR: one line per process whose command line or working directory
# names DIR: "PID RSS_KIB COMM CWD CMDLINE" (all but RSS may hold spaces only in
# CMDLINE). Bash builtins read /proc, so no helper of ours (whose own command
# line would name DIR) counts itself; `find` prints the working directories.
proc_table() {
    local dir=$1 pid p cwd rss comm key value args
    local -A cwds=()
    while read -r pid cwd; do
        cwds[$pid]=$cwd
    done < <(find /proc -mindepth 2 -maxdepth 2 -name cwd -printf '%h %l\n' 2>/dev/null | sed 's|^/proc/||')
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        cwd=${cwds[$pid]:-}
        args=()
        mapfile -d '' args 2>/dev/null <"$p/cmdline" || continue
        [[ "$cwd/" == "$dir/"* || " ${args[*]} " == *"$dir/"* || " ${args[*]} " == *"$dir "* ]] || continue
        rss=0 comm=?
        while read -r key value _; do
            case $key in
                Name:) comm=$value ;;
                VmRSS:) rss=$value ;;
            esac
        done 2>/dev/null <"$p/status"
        echo "$pid $rss $comm ${cwd:--} ${args[*]}"
    done
}

# bed_memory DIR LABEL CLUSTER...: RSS per cluster (its etcd, API server,
# controller manager, scheduler and kwok: every process naming DIR/CLUSTER/,
# istiods excepted), each istiod (pilot-discovery, or a process in
# DIR/CLUSTER/istiod/) on its own, and the sandbox process (the simulators).
bed_memory() {
    local dir=$1 label=$2 table c sums=() istiods=() line pid rss comm cwd rest kib names
    shift 2
    table=$(proc_table "$dir")
    for c in "$@"; do
        kib=0 names=()
        while read -r pid rss comm cwd rest; do
            line="$cwd/ $rest"
            [[ $line == *"$dir/$c/"* ]] || continue
            if [[ $comm == pilot-discovery || $line == *"$dir/$c/istiod/"* ]]; then
                istiods+=("$c: ${cwd##*/} $(mb "$rss")")
            else
                kib=$((kib + rss))
                names+=("$comm $(mb "$rss")")
            fi
        done <<<"$table"
        sums+=("$c $(mb "$kib")")
        local each="no processes"
        ((${#names[@]})) && each=$(printf '%s\n' "${names[@]}" | sort | paste -sd';' | sed 's/;/, /g')
        echo "   $label, $c: $(mb "$kib") ($each)"
    done
    local sandbox_kib
    sandbox_kib=$(awk -v p="$sandbox_pid" '$1 == p { print $2 }' <<<"$table")
    bed_sums=$(IFS=';'; echo "${sums[*]}" | sed 's/;/, /g')
    bed_sandbox=$(mb "${sandbox_kib:-0}")
    if ((${#istiods[@]})); then
        bed_istiods=$(printf '%s\n' "${istiods[@]}" | paste -sd';' | sed 's/;/, /g')
    else
        bed_istiods="no istiod processes"
    fi
}

# bed_run LOG: external.rhai on the bed with --output json, each line
# prefixed with the µs it arrived at; prints its wall time in µs. Its exit
# status is external.rhai's.
bed_run() {
    local log=$1 start status line
    start=$(now_us)
    set +e
    "$bin" playbooks/external.rhai "${bed_sets[@]}" --output json 2>"$log.err" |
        while IFS= read -r line; do echo "$(now_us) $line"; done >"$log"
    status=${PIPESTATUS[0]}
    set -e
    echo $(($(now_us) - start))
    return "$status"
}

# bed_istiod LOG: "CP_WAIT_MS APPLY_TO_READY_US DP_WAIT_MS" for Istio
# external-istiod: the duration of the `wait` on its Ready condition on
# control-plane (istiod's start), from the `apply` step's event arriving to
# that wait's, and the data plane's wait after it (Sail's probe of istiod).
bed_istiod() {
    jq -nrR '
        [inputs | capture("^(?<t>[0-9]+) (?<j>.*)$") | (.j | fromjson?) as $e | select($e.event == "step")
            | $e + { t: (.t | tonumber), object: ($e.object | ascii_downcase) }
            | select(.object == "istio external-istiod" or .object == "istio/external-istiod")] as $steps
        | ($steps | map(select(.cluster == "control-plane" and .action == "apply")) | first) as $applied
        | ($steps | map(select(.cluster == "control-plane" and .action == "wait")) | first) as $ready
        | ($steps | map(select(.cluster == "data-plane" and .action == "wait")) | first) as $remote
        | if $ready == null then empty
          else "\($ready.duration_ms) \($ready.t - ($applied.t // $ready.t)) \($remote.duration_ms // 0)" end' "$1" | grep .
}

# bed_failure LOG: why a run of external.rhai failed (its error event, and
# where its last wait stood).
bed_failure() {
    local err progress
    err=$(cut -d' ' -f2- "$1" | jq -r 'select(.event == "error") | "\(.kind): \(.message)"' 2>/dev/null | head -1)
    progress=$(cut -d' ' -f2- "$1" | jq -r 'select(.event == "progress") | "\(.cluster) \(.object): \(.state)"' 2>/dev/null | tail -1)
    echo "${err:-$(tail -1 "$1.err")}${progress:+ (last wait: $progress)}" | cut -c1-300
}

# bed_diagnose DIR: after a failed run, where the istiods stand (their Pods,
# the sandbox's last lines about them).
bed_diagnose() {
    local ctx
    for ctx in control-plane data-plane; do
        "$kubectl" --context "$ctx" get pods -A -l app=istiod -o wide --no-headers 2>&1 | sed "s/^/   $ctx: /"
    done
    grep -i istiod "$1.log" 2>/dev/null | tail -5 | sed 's/^/   sandbox: /' || true
}

bed_teardown() {
    "$bin" playbooks/teardown.rhai --set CTX_CONTROL_PLANE_CLUSTER=control-plane --set CTX_DATA_PLANE_CLUSTER=data-plane \
        >"$1" 2>&1 || { echo "   teardown.rhai failed (log: $1): $(tail -1 "$1")"; return 1; }
}

bed() {
    local starts=() own=() i t0 t1 dir
    # 1. Start: launch until DIR/ready (both kwok Nodes per cluster Ready).
    for i in $(seq 1 "$BED_RUNS"); do
        stop_sandbox
        t0=$(now_us)
        start_sandbox "bed-$i" control-plane,data-plane
        t1=$(now_us)
        starts+=($((t1 - t0)))
        dir=$sandbox_dir
        # The sandbox prints its line just after writing DIR/ready.
        for _ in $(seq 1 50); do grep -q 'cluster(s) ready in' "$work/bed-$i.log" && break; sleep 0.1; done
        own+=("$(sed -n 's/^sandbox: .* cluster(s) ready in \([0-9.]*\)s$/\1/p' "$work/bed-$i.log" | tail -1)")
    done
    local m o
    m=$(printf '%s\n' "${starts[@]}" | median)
    o=$(printf '%s\n' "${own[@]}" | awk 'NF' | median)
    row "7a. bed: sandbox start (2 clusters, 2 Nodes each), median of $BED_RUNS" "$(s "$m")" "sandbox's own \"ready in\" ${o} s" "—" "≤ 20 s" \
        "$(met "$m <= 20e6")"
    echo "   all (s): $(printf '%s\n' "${starts[@]}" | awk '{ printf "%.2f ", $1 / 1e6 }')| own: ${own[*]}"

    # 2. Memory, idle: the last sandbox, left alone for BED_IDLE seconds.
    local server
    server=$("$kubectl" config view --minify --context data-plane -o jsonpath='{.clusters[0].cluster.server}')
    bed_sets=(--set CTX_CONTROL_PLANE_CLUSTER=control-plane --set CTX_DATA_PLANE_CLUSTER=data-plane --set "DATA_PLANE_API_SERVER=$server")
    sleep "$BED_IDLE"
    bed_memory "$dir" idle control-plane data-plane
    row "7b. bed: RSS per cluster, idle" "$bed_sums" "sandbox process (simulators) $bed_sandbox" "—" "—" "—"
    echo "   istiod: $bed_istiods"

    # 3. external.rhai, BED_RUNS times, teardown.rhai between; memory after the first.
    local runs=() waits=() gaps=() remotes=() failed="" wall ist gap remote after="after external.rhai"
    for i in $(seq 1 "$BED_RUNS"); do
        if ! wall=$(bed_run "$work/bed-external-$i.log"); then
            failed="external.rhai run $i failed after $(s "$wall"): $(bed_failure "$work/bed-external-$i.log")"
            echo "   $failed"
            bed_diagnose "$dir"
            if ((i == 1)); then
                after="after a failed external.rhai"
                bed_memory "$dir" "$after" control-plane data-plane
            fi
            break
        fi
        runs+=("$wall")
        if read -r ist gap remote < <(bed_istiod "$work/bed-external-$i.log"); then
            waits+=("$ist") gaps+=("$gap") remotes+=("$remote")
        fi
        if ((i == 1)); then
            sleep "$BED_IDLE"
            bed_memory "$dir" "$after" control-plane data-plane
        fi
        bed_teardown "$work/bed-teardown-$i.log" || { failed="teardown.rhai failed after run $i"; break; }
    done
    row "7c. bed: RSS per cluster, $after" "$bed_sums" "sandbox process (simulators) $bed_sandbox" "—" "—" "—"
    row "7d. bed: each istiod's RSS, $after" "$bed_istiods" "—" "—" "—" "—"
    if ((${#waits[@]})); then
        local w g e floor
        w=$(printf '%s\n' "${waits[@]}" | median | round)
        g=$(printf '%s\n' "${gaps[@]}" | median | round)
        row "7e. bed: istiod start (Istio external-istiod Ready), median of ${#waits[@]}" "$(s "$((w * 1000))")" \
            "applied → Ready $(s "$g")" "—" "—" "—"
        e=$(printf '%s\n' "${runs[@]}" | median | round)
        floor=$((w * 1000 + 3000000))
        row "7f. bed: external.rhai end to end, median of ${#runs[@]}" "$(s "$e")" "floor: istiod start + Sail's 3 s probe $(s "$floor")" \
            "$(awk -v e="$e" -v f="$floor" 'BEGIN { printf "%.2f× floor", e / f }')" "—" "—"
        echo "   all (s): $(printf '%s\n' "${runs[@]}" | awk '{ printf "%.2f ", $1 / 1e6 }')| istiod wait (ms): ${waits[*]} | data plane's wait (ms): ${remotes[*]}"
        local r
        r=$(printf '%s\n' "${remotes[@]}" | median | round)
        note "7f. external.rhai on the real bed (medians): $(s "$((e - w * 1000 - r * 1000))") of steps before the waits" \
            "(renders, applies, the data plane's istiod ServiceAccount), $(s "$((w * 1000))") for the external istiod to start" \
            "(its Istio Ready on control-plane: Deployment, Pod on a kwok Node, pilot-discovery answering /ready), then" \
            "$(s "$((r * 1000))") until the data plane's Istio is Ready (Sail probes the remote istiod every 3 s: 0–3 s after it is up)."
    else
        local why="not measured: ${failed:+external.rhai failed, see note 7}"
        [[ -n $failed ]] || why+="no wait step on istio/external-istiod in its events"
        row "7e. bed: istiod start (Istio external-istiod Ready)" "—" "$why" "—" "—" "—"
        row "7f. bed: external.rhai end to end" "—" "$why" "—" "—" "—"
    fi
    [[ -z $failed ]] || note "7. $failed"
    stop_sandbox
}

# --- 8., 9. and the seed's floor: Ansible, the busy sandbox ---------------------

. benches/seed_floor.sh
. benches/ansible_peer.sh

# --- the run -------------------------------------------------------------------

# Sections to run: all by default (only then is BENCHMARKS.md written).
sections=${*:-seed memory configmaps wait watch scale status bed ansible busy}
want() { [[ " $sections " == *" $1 "* ]]; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
if want seed || want memory || want configmaps || want wait || want ansible; then
    echo "sandbox: control-plane, data-plane (--sim-delay 0s)"
    start_sandbox main control-plane,data-plane
    want seed && seed_procedure
    want memory && memory_and_cold_start
    want configmaps && configmaps
    want wait && wait_latency
    want ansible && ansible_peer
    stop_sandbox
fi
want watch && watch_mode
want scale && scale
# With `scale`, status ran on its sandbox; alone, it starts one of its own.
if want status && ! want scale; then
    status_of_mesh
    stop_sandbox
fi
want bed && bed
want busy && seed_busy
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- runtime stdlib playbooks Cargo.toml Cargo.lock || commit="$commit (+ uncommitted changes)"
if [[ $# -gt 0 ]]; then
    [[ ${WRITE:-} == 1 ]] || exit 0
    . benches/benchmarks_md.sh
    kept_rows=() kept_notes=()
    merge_benchmarks
    echo
    echo "merged into: BENCHMARKS.md"
    exit 0
fi
{
    echo "# Benchmarks: mesh-run vs kubectl and Ansible"
    echo
    echo "Written by \`benches/run.sh\` (see the README, \"Benchmarks\"). Each row is measured side by side in"
    echo "one run, on the same sandbox clusters (\`mesh-run sandbox --sim-delay 0s\`: real etcd, kube-apiserver,"
    echo "kube-controller-manager, kube-scheduler and kwok with two fake Nodes per cluster in a network namespace;"
    echo "simulated Sail Operator rendering the real Istio charts; istiod Pods as real pilot-discovery processes), release build."
    echo
    echo "| benchmark | mesh-run | baseline | ratio | target | met |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${rows[@]}" | sort -V
    echo
    if ((${#notes[@]})); then
        echo "Where the time goes (CPU is measured per process from /proc; it does not shrink with concurrency):"
        echo
        printf -- '- %s\n' "${notes[@]}"
        echo
    fi
    echo "Machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1),"
    echo "$(free -g | awk '/^Mem:/ { print $2 }') GB memory, Linux $(uname -r); load average before / after: $load_before / $load_after"
    echo "(the sandbox's API servers share these cores with mesh-run and kubectl; other work on the machine adds noise)."
    echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'). mesh-run commit: $commit. kubectl: $("$kubectl" version --client | head -1)."
    echo
    echo "Ratios are the peer ÷ mesh-run (kubectl, or Ansible in rows 8; how many times faster, or smaller),"
    echo "except scale (1 + 8 ÷ 1 + 1) and 7f (external.rhai ÷ its floor). Rows b: own time = wall time minus the"
    echo "peer's waits on the cluster (see benches/seed_floor.sh); each wait holds the peer's own reaction too."
    echo "Medians of RUNS=$RUNS (seed, busy seed, ConfigMaps), ANSIBLE_RUNS=$ANSIBLE_RUNS (Ansible), WAITS=$WAITS (wait latency), SAVES=$SAVES (watch),"
    echo "COLD=$COLD (cold start), SCALE_RUNS=$SCALE_RUNS (scale), STATUS_RUNS=$STATUS_RUNS (status), each after an untimed warm-up;"
    echo "BED_RUNS=$BED_RUNS (test bed: sandbox starts and external.rhai runs, no warm-up: a first start is what users see)."
} >BENCHMARKS.md
echo
echo "written: BENCHMARKS.md"
