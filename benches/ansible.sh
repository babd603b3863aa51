#!/usr/bin/env bash
# The Ansible peer of benches/run.sh (issue 17): makes (once) a cached virtual
# environment with Ansible from PyPI (the `ansible` package bundles the
# kubernetes.core collection) and the Python `kubernetes` client it needs, and
# runs ansible-playbook from it. Only the benchmark uses it, not the tests.
#
#   benches/ansible.sh --setup            # make the venv, print its path
#   benches/ansible.sh PLAYBOOK ARGS...   # ansible-playbook PLAYBOOK ARGS... from the venv
#
# ANSIBLE_VENV (default ~/.cache/mesh-run/ansible-venv) is where it lives;
# ANSIBLE_VERSION (default 14.*) and KUBERNETES_VERSION (default 37.*) pin the
# packages; PYTHON picks the interpreter (Ansible 13+ needs Python 3.12+: the
# first python3.1x of 3.12 or later on PATH or under ~/.pyenv by default).
set -euo pipefail

venv=${ANSIBLE_VENV:-$HOME/.cache/mesh-run/ansible-venv}
ansible_version=${ANSIBLE_VERSION:-14.*}
kubernetes_version=${KUBERNETES_VERSION:-37.*}

# python: an interpreter of 3.12 or later.
python() {
    local p
    for p in ${PYTHON:-} python3.14 python3.13 python3.12 python3 "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3; do
        [[ -n $p ]] && command -v "$p" >/dev/null 2>&1 || continue
        # pyenv's shims exist for every installed version, but fail unless it is selected.
        "$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null || continue
        command -v "$p"
        return
    done
    echo "no Python 3.12 or later (Ansible 13+ needs it): set PYTHON" >&2
    exit 2
}

setup() {
    [[ -x $venv/bin/ansible-playbook && -e $venv/.complete ]] && return
    local py
    py=$(python)
    echo "making $venv with $("$py" --version) (ansible $ansible_version, kubernetes $kubernetes_version)" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "ansible==$ansible_version" "kubernetes==$kubernetes_version" >&2
    touch "$venv/.complete"
}

if [[ ${1:-} == --setup ]]; then
    setup
    echo "$venv"
    exit 0
fi
setup
export ANSIBLE_PYTHON_INTERPRETER=$venv/bin/python
# The playbooks run on localhost only: no inventory to warn about.
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
exec "$venv/bin/ansible-playbook" "$@"
