#!/usr/bin/env bash
# The objects the seed procedure (steps 5 to 8.9) leaves on both clusters, as
# one normalized JSON document, so benches/run.sh can check that mesh-run,
# the kubectl script and the Ansible playbook did the same work: what each
# object says (labels, annotations, spec, Secret type and data), not how it
# got there (no uid, resourceVersion, managedFields, timestamps, status, or
# the client-side-apply annotation, nor mesh-run's ApplySet label (its record
# of what it created, for pruning), nor what the API server allocates:
# cluster IPs, node ports). The remote secret's kubeconfig is
# compared by meaning (kubectl parses it; the token is replaced by whether it
# is the data plane's token Secret's), since each tool writes its own YAML.
#
#   KUBECONFIG=... benches/seed-objects.sh CONTROL_PLANE_CONTEXT DATA_PLANE_CONTEXT >objects.json
set -euo pipefail

cp_ctx=${1:?control-plane context}
dp_ctx=${2:?data-plane context}
kubectl=${KUBECTL:-$HOME/.cache/mesh-run/kube/1.37.2/bin/kubectl}
ns=external-istiod
work=$(mktemp -d -t seed-objects-XXXXXX)
trap 'rm -rf "$work"' EXIT

# get CONTEXT ARGS...: the objects as a JSON list (a missing one fails).
get() {
    local ctx=$1
    shift
    "$kubectl" --context "$ctx" get "$@" -o json | jq --arg ctx "$ctx" '(.items // [.]) | map(. + { context: $ctx })'
}

{
    get "$cp_ctx" namespace istio-system "$ns"
    get "$cp_ctx" istio default "$ns"
    get "$cp_ctx" -n istio-system -f "$(dirname "$0")/../stdlib/manifests/controlplane-gateway.yaml"
    get "$cp_ctx" -n "$ns" serviceaccount istiod-service-account
    get "$cp_ctx" -n "$ns" secret istio-kubeconfig
    get "$cp_ctx" -n "$ns" gateway.networking.istio.io/external-istiod-gw virtualservice.networking.istio.io/external-istiod-vs
    get "$dp_ctx" namespace "$ns" istio-cni
    get "$dp_ctx" istio "$ns"
    get "$dp_ctx" istiocni default
} | jq -s 'add' >"$work/objects.json"

# The remote secret's kubeconfig, parsed by kubectl.
jq -r '.[] | select(.kind == "Secret" and .metadata.name == "istio-kubeconfig") | .data.config | @base64d' "$work/objects.json" >"$work/config"
"$kubectl" config view --kubeconfig "$work/config" --raw -o json >"$work/config.json"
token=$("$kubectl" --context "$dp_ctx" get secret -n "$ns" "istiod-$ns-istio-remote-secret-token" -o 'jsonpath={.data.token}' | base64 -d)

jq --slurpfile config "$work/config.json" --arg token "$token" '
    def kubeconfig: $config[0] | .users |= map(.user.token |= if . == $token then "<the token Secret'"'"'s token>" else "<another token>" end);
    map({
        context, apiVersion, kind,
        name: .metadata.name, namespace: .metadata.namespace,
        labels: (.metadata.labels // {} | del(.["kubernetes.io/metadata.name"], .["applyset.kubernetes.io/part-of"])),
        annotations: (.metadata.annotations // {} | del(.["kubectl.kubernetes.io/last-applied-configuration"], .["deployment.kubernetes.io/revision"])),
        spec: (.spec // null | if type == "object" then del(.clusterIP, .clusterIPs, .finalizers, .ports[]?.nodePort) else . end),
        type: (.type // null),
        data: (if .kind == "Secret" then (.data | keys) else null end),
        kubeconfig: (if .kind == "Secret" and .metadata.name == "istio-kubeconfig" then kubeconfig else null end)
    }) | sort_by(.context, .kind, .namespace, .name)' "$work/objects.json"
