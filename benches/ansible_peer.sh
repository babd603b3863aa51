# Sourced by benches/run.sh: Ansible as the second peer (issue 17). Uses
# run.sh's helpers and seed_floor.sh's. The same sandbox pair as the seed row.
#
#   8a. the seed procedure: external.rhai vs benches/external-ansible.yml
#       (kubernetes.core), wall time, medians of ANSIBLE_RUNS, alternating;
#   8b. the same, own time (wall − waits on the cluster, see seed_floor.sh);
#   8c. peak RSS: mesh-run vs Ansible's biggest process;
#   8d. a rerun with nothing to change: mesh-run's all-`unchanged` run vs
#       Ansible's all-`ok` run (each right after its own install);
#   8e. the same objects: mesh-run, the kubectl script and Ansible each on a
#       clean pair, compared by benches/seed-objects.sh;
#   and where Ansible's time goes: ansible-playbook's start (a play with no
#   task), a task's process start (ansible.builtin.ping), a kubernetes.core
#   task (k8s_info of one Namespace: the client's import, kubeconfig,
#   discovery, one GET), the client's import alone.

# ansible_run JSON CP DP [RSS]: the playbook with the json callback into JSON
# (stderr into JSON.err); with RSS, GNU time writes the peak RSS there.
ansible_run() {
    local rss=()
    [[ -z ${4:-} ]] || rss=(/usr/bin/time -f %M -o "$4")
    ANSIBLE_STDOUT_CALLBACK=ansible.posix.json "${rss[@]}" benches/ansible.sh benches/external-ansible.yml \
        -e "cp_context=$2" -e "dp_context=$3" >"$1" 2>"$1.err"
}
ansible_changed() { jq '[.stats[].changed] | add' "$1"; }
ansible_tasks() { jq '[.plays[].tasks[]] | length' "$1"; }

# peak_kib FILE: the "%M" GNU time wrote (the biggest process of the tree, KiB).
peak_kib() { tail -1 "$1"; }

ansible_peer() {
    benches/ansible.sh --setup >/dev/null
    local cp=control-plane dp=data-plane venv
    venv=${ANSIBLE_VENV:-$HOME/.cache/mesh-run/ansible-venv}
    local sets=(--set "CTX_CONTROL_PLANE_CLUSTER=$cp" --set "CTX_DATA_PLANE_CLUSTER=$dp")

    # 8e, also the warm-up (page cache, kubectl's and the Python client's discovery caches).
    local peer same=yes differ=()
    "$bin" playbooks/external.rhai "${sets[@]}" >"$work/objects-mesh-run.log" 2>&1
    benches/seed-objects.sh "$cp" "$dp" >"$work/objects-mesh-run.json"
    teardown "$cp" "$dp"
    benches/external-kubectl.sh "$cp" "$dp" >"$work/objects-kubectl.log" 2>&1
    benches/seed-objects.sh "$cp" "$dp" >"$work/objects-kubectl.json"
    teardown "$cp" "$dp"
    ansible_run "$work/objects-ansible.log" "$cp" "$dp" || { echo "Ansible failed: $work/objects-ansible.log" >&2; exit 1; }
    benches/seed-objects.sh "$cp" "$dp" >"$work/objects-ansible.json"
    teardown "$cp" "$dp"
    for peer in kubectl ansible; do
        if ! diff "$work/objects-mesh-run.json" "$work/objects-$peer.json" >"$work/objects-$peer.diff"; then
            same="**no**"
            differ+=("$peer: $(grep -c '^[<>]' "$work/objects-$peer.diff") differing lines ($work/objects-$peer.diff)")
        fi
    done
    row "8e. same objects on both clusters ($(jq length "$work/objects-mesh-run.json") compared)" "external.rhai" \
        "kubectl script, Ansible playbook" "—" "identical" "$same"
    ((${#differ[@]} == 0)) || printf '   %s\n' "${differ[@]}"

    local mesh=() ans=() mwait=() await=() mrss=() arss=() mre=() are=() mchg=() achg=() i w
    for i in $(seq 1 "$ANSIBLE_RUNS"); do
        w=$(timed "$work/a-mesh-run-$i.log" /usr/bin/time -f %M -o "$work/a-mesh-run-$i.rss" \
            "$bin" playbooks/external.rhai "${sets[@]}" --output json)
        mesh+=("$w") mwait+=("$(mesh_waits "$work/a-mesh-run-$i.log")") mrss+=("$(peak_kib "$work/a-mesh-run-$i.rss")")
        mre+=("$(timed "$work/a-mesh-run-rerun-$i.log" "$bin" playbooks/external.rhai "${sets[@]}" --output json)")
        mchg+=("$(mesh_changed "$work/a-mesh-run-rerun-$i.log")")
        teardown "$cp" "$dp"
        w=$(timed /dev/null ansible_run "$work/a-ansible-$i.json" "$cp" "$dp" "$work/a-ansible-$i.rss")
        ans+=("$w") await+=("$(ansible_waits "$work/a-ansible-$i.json")") arss+=("$(peak_kib "$work/a-ansible-$i.rss")")
        are+=("$(timed /dev/null ansible_run "$work/a-ansible-rerun-$i.json" "$cp" "$dp")")
        achg+=("$(ansible_changed "$work/a-ansible-rerun-$i.json")")
        teardown "$cp" "$dp"
    done
    local m a
    m=$(printf '%s\n' "${mesh[@]}" | median | round)
    a=$(printf '%s\n' "${ans[@]}" | median | round)
    row "8a. seed procedure vs Ansible, median of $ANSIBLE_RUNS" "$(s "$m")" "Ansible (kubernetes.core) $(s "$a")" "$(ratio "$m" "$a")" \
        "≥ 50× faster" "$(met "$a / $m >= 50")"
    echo "   all runs (s): mesh-run $(printf '%s\n' "${mesh[@]}" | awk '{ printf "%.2f ", $1 / 1e6 }')| Ansible $(printf '%s\n' "${ans[@]}" | awk '{ printf "%.2f ", $1 / 1e6 }')"
    own_row "8b. seed vs Ansible, own time (wall − waits on the cluster)" "${mesh[*]}" "${mwait[*]}" "${ans[*]}" "${await[*]}" Ansible 50
    m=$(printf '%s\n' "${mrss[@]}" | median | round)
    a=$(printf '%s\n' "${arss[@]}" | median | round)
    row "8c. peak RSS, seed vs Ansible" "$(mb "$m")" "Ansible's biggest process $(mb "$a")" "$(ratio "$m" "$a")" "—" "—"
    m=$(printf '%s\n' "${mre[@]}" | median | round)
    a=$(printf '%s\n' "${are[@]}" | median | round)
    row "8d. rerun, nothing to change, median of $ANSIBLE_RUNS" "$(s "$m") (changed: ${mchg[*]})" \
        "Ansible all-ok $(s "$a") (changed: ${achg[*]})" "$(ratio "$m" "$a")" "≥ 50× faster" "$(met "$a / $m >= 50")"

    # Where Ansible's time goes: plays of N tasks against a play of none.
    local n=10 kind t0 t1 t2 imp nothing
    for kind in none ping k8s; do
        {
            echo "- hosts: localhost"
            echo "  connection: local"
            echo "  gather_facts: false"
            echo "  tasks:"
            [[ $kind == none ]] && echo "    - { name: nothing, ansible.builtin.meta: noop }"
            for i in $(seq 1 "$n"); do
                [[ $kind == ping ]] && echo "    - ansible.builtin.ping:"
                [[ $kind == k8s ]] && echo "    - kubernetes.core.k8s_info: { context: $cp, kind: Namespace, name: default }"
            done
        } >"$work/overhead-$kind.yml"
    done
    local none=() ping=() k8s=() imps=() nothings=()
    for i in $(seq 0 "$ANSIBLE_RUNS"); do
        t0=$(timed /dev/null benches/ansible.sh "$work/overhead-none.yml")
        t1=$(timed /dev/null benches/ansible.sh "$work/overhead-ping.yml")
        t2=$(timed /dev/null benches/ansible.sh "$work/overhead-k8s.yml")
        nothing=$(timed /dev/null "$venv/bin/python" -c pass)
        imp=$(timed /dev/null "$venv/bin/python" -c 'import kubernetes.dynamic, kubernetes.config')
        ((i == 0)) && continue
        none+=("$t0") ping+=($(((t1 - t0) / n))) k8s+=($(((t2 - t0) / n))) imps+=($((imp - nothing))) nothings+=("$nothing")
    done
    local tn tp tk ti tpy tasks waits
    tn=$(printf '%s\n' "${none[@]}" | median | round)
    tp=$(printf '%s\n' "${ping[@]}" | median | round)
    tk=$(printf '%s\n' "${k8s[@]}" | median | round)
    ti=$(printf '%s\n' "${imps[@]}" | median | round)
    tpy=$(printf '%s\n' "${nothings[@]}" | median | round)
    tasks=$(ansible_tasks "$work/a-ansible-1.json")
    waits=$(jq '[.plays[].tasks[] | select(.task.name | startswith("Wait for"))] | length' "$work/a-ansible-1.json")
    note "8. Where Ansible's time goes (medians of $ANSIBLE_RUNS, load $(cut -d' ' -f1-3 /proc/loadavg)): ansible-playbook starts in $(s "$tn")" \
        "(a play of one no-op); each task then starts a Python process with the module (ansible.builtin.ping: $(s "$tp") a task," \
        "Python itself $(s "$tpy")), and a kubernetes.core task costs $(s "$tk") (k8s_info of one Namespace: the Python client's import," \
        "$(s "$ti") alone, kubeconfig, discovery, one GET). The playbook has $tasks tasks, $waits of them waits that poll every second;" \
        "mesh-run runs in one process, keeps its connections and watches. $(
            "$venv/bin/python" -c 'import importlib.metadata as m; print("Ansible", m.version("ansible"), "(core", m.version("ansible-core") + "), Python client kubernetes", m.version("kubernetes"), end="")')."
}
