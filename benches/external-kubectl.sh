#!/usr/bin/env bash
# playbooks/external.rhai as the bash script of kubectl calls a platform
# engineer would write from the seed procedure (OSSM 3, "External control
# plane topology", steps 5 to 8.9), with the same fixes the playbook makes
# (`values:` not `value:`, one cluster name, pinned version, waits where the
# seed races) so both do the same work and the same checks. The baseline of
# benches/run.sh; it is not a supported way to install anything.
#
#   KUBECONFIG=... benches/external-kubectl.sh CONTROL_PLANE_CONTEXT DATA_PLANE_CONTEXT
#
# `istioctl create-remote-secret` is done by hand with kubectl, as people do
# without istioctl: create the token Secret, wait for the token controller to
# fill it, read token and ca.crt, build a kubeconfig with `kubectl config`,
# wrap it in the Secret with `kubectl create secret --dry-run`, label and
# annotate it locally, apply it to the control plane.
#
# KUBECTL (default: the sandbox's kubectl) picks the binary. With
# KUBECTL_RSS_LOG=FILE every call runs under /usr/bin/time and appends
# "max-RSS-KiB command" to FILE (for the peak-memory row of the benchmark).
set -euo pipefail

cp_ctx=${1:?control-plane context}
dp_ctx=${2:?data-plane context}
kubectl_bin=${KUBECTL:-$HOME/.cache/mesh-run/kube/1.37.2/bin/kubectl}
manifests=$(cd "$(dirname "$0")/../stdlib/manifests" && pwd)

ISTIO_VERSION=${ISTIO_VERSION:-1.24.3}
REMOTE_CLUSTER_NAME=${REMOTE_CLUSTER_NAME:-cluster1}
ns=external-istiod
rev=external-istiod

kubectl() {
    if [[ -n ${KUBECTL_RSS_LOG:-} ]]; then
        /usr/bin/time -a -o "$KUBECTL_RSS_LOG" -f "%M kubectl $*" "$kubectl_bin" "$@"
    else
        "$kubectl_bin" "$@"
    fi
}
kcp() { kubectl --context "$cp_ctx" "$@"; }
kdp() { kubectl --context "$dp_ctx" "$@"; }

work=$(mktemp -d -t external-kubectl-XXXXXX)
trap 'rm -rf "$work"' EXIT

# Step 5: the control plane's ingress gateway.
kcp get namespace istio-system >/dev/null 2>&1 || kcp create namespace istio-system
kcp apply -f - <<EOF
apiVersion: sailoperator.io/v1
kind: Istio
metadata:
  name: default
spec:
  version: v${ISTIO_VERSION}
  namespace: istio-system
  values:
    global:
      network: network1
EOF
kcp apply -f "$manifests/controlplane-gateway.yaml"
ip='{.status.loadBalancer.ingress[0].ip}'
kcp wait -n istio-system svc/istio-ingressgateway --for="jsonpath=$ip" --timeout=3m
EXTERNAL_ISTIOD_ADDR=$(kcp get svc istio-ingressgateway -n istio-system -o "jsonpath=$ip")
echo "EXTERNAL_ISTIOD_ADDR=$EXTERNAL_ISTIOD_ADDR"

# Step 6: the remote (config) Istio on the data plane.
kdp get namespace "$ns" >/dev/null 2>&1 || kdp create namespace "$ns"
kdp apply -f - <<EOF
apiVersion: sailoperator.io/v1
kind: Istio
metadata:
  name: $rev
spec:
  version: v${ISTIO_VERSION}
  namespace: $ns
  profile: remote
  values:
    defaultRevision: $rev
    global:
      remotePilotAddress: ${EXTERNAL_ISTIOD_ADDR}
      configCluster: true
    pilot:
      configMap: true
      istiodRemote:
        injectionPath: /inject/cluster/${REMOTE_CLUSTER_NAME}/net/network1
EOF

# Step 7: IstioCNI on the data plane.
kdp get namespace istio-cni >/dev/null 2>&1 || kdp create namespace istio-cni
kdp apply -f - <<EOF
apiVersion: sailoperator.io/v1
kind: IstioCNI
metadata:
  name: default
spec:
  version: v${ISTIO_VERSION}
  namespace: istio-cni
EOF

# Steps 8.1-8.3.
kcp get namespace "$ns" >/dev/null 2>&1 || kcp create namespace "$ns"
kcp create serviceaccount istiod-service-account -n "$ns"
DATA_PLANE_API_SERVER=${DATA_PLANE_API_SERVER:-$(kubectl config view --minify --context "$dp_ctx" -o 'jsonpath={.clusters[0].cluster.server}')}

# Step 8.4: the remote secret, by hand. The operator creates the account
# once it reconciles step 6 (the playbook waits for it too).
sa=istiod-$rev
kdp wait -n "$ns" "serviceaccount/$sa" --for=create --timeout=3m
kdp get serviceaccount "$sa" -n "$ns" -o name >/dev/null
token_secret=$sa-istio-remote-secret-token
kdp apply -f - <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: $token_secret
  namespace: $ns
  annotations:
    kubernetes.io/service-account.name: $sa
type: kubernetes.io/service-account-token
EOF
kdp wait -n "$ns" "secret/$token_secret" --for='jsonpath={.data.token}' --timeout=5s
token=$(kdp get secret "$token_secret" -n "$ns" -o 'jsonpath={.data.token}' | base64 -d)
kdp get secret "$token_secret" -n "$ns" -o 'jsonpath={.data.ca\.crt}' | base64 -d >"$work/ca.crt"
remote_kubeconfig=$work/config
kubectl config --kubeconfig="$remote_kubeconfig" set-cluster "$REMOTE_CLUSTER_NAME" \
    --server="$DATA_PLANE_API_SERVER" --certificate-authority="$work/ca.crt" --embed-certs=true >/dev/null
kubectl config --kubeconfig="$remote_kubeconfig" set-credentials "$REMOTE_CLUSTER_NAME" --token="$token" >/dev/null
kubectl config --kubeconfig="$remote_kubeconfig" set-context "$REMOTE_CLUSTER_NAME" \
    --cluster="$REMOTE_CLUSTER_NAME" --user="$REMOTE_CLUSTER_NAME" >/dev/null
kubectl config --kubeconfig="$remote_kubeconfig" use-context "$REMOTE_CLUSTER_NAME" >/dev/null
kubectl create secret generic istio-kubeconfig -n "$ns" --from-file=config="$remote_kubeconfig" --dry-run=client -o yaml |
    kubectl label --local -f - istio/multiCluster=true -o yaml |
    kubectl annotate --local -f - "networking.istio.io/cluster=$REMOTE_CLUSTER_NAME" -o yaml |
    kcp apply -f -

# Step 8.5: the external istiod.
kcp apply -f - <<EOF
apiVersion: sailoperator.io/v1
kind: Istio
metadata:
  name: $rev
spec:
  version: v${ISTIO_VERSION}
  namespace: $ns
  profile: empty
  values:
    meshConfig:
      rootNamespace: $ns
      defaultConfig:
        discoveryAddress: ${EXTERNAL_ISTIOD_ADDR}:15012
    pilot:
      enabled: true
      volumes:
        - name: config-volume
          configMap:
            name: istio-$rev
        - name: inject-volume
          configMap:
            name: istio-sidecar-injector-$rev
      volumeMounts:
        - name: config-volume
          mountPath: /etc/istio/config
        - name: inject-volume
          mountPath: /var/lib/istio/inject
      env:
        INJECTION_WEBHOOK_CONFIG_NAME: "istio-sidecar-injector-$rev-$ns"
        VALIDATION_WEBHOOK_CONFIG_NAME: "istio-validator-$rev-$ns"
        EXTERNAL_ISTIOD: "true"
        LOCAL_CLUSTER_SECRET_WATCHER: "true"
        CLUSTER_ID: ${REMOTE_CLUSTER_NAME}
        SHARED_MESH_CONFIG: istio
    global:
      caAddress: ${EXTERNAL_ISTIOD_ADDR}:15012
      configValidation: false
      meshID: mesh1
      multiCluster:
        clusterName: ${REMOTE_CLUSTER_NAME}
      network: network1
EOF

# Step 8.6: Gateway and VirtualService to the external istiod.
kcp apply -f - <<EOF
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: external-istiod-gw
  namespace: $ns
spec:
  selector:
    istio: ingressgateway
  servers:
    - port:
        number: 15012
        protocol: tls
        name: tls-XDS
      tls:
        mode: PASSTHROUGH
      hosts:
      - "*"
    - port:
        number: 15017
        protocol: tls
        name: tls-WEBHOOK
      tls:
        mode: PASSTHROUGH
      hosts:
      - "*"
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: external-istiod-vs
  namespace: $ns
spec:
    hosts:
    - "*"
    gateways:
    - external-istiod-gw
    tls:
    - match:
      - port: 15012
        sniHosts:
        - "*"
      route:
      - destination:
          host: istiod-$rev.$ns.svc.cluster.local
          port:
            number: 15012
    - match:
      - port: 15017
        sniHosts:
        - "*"
      route:
      - destination:
          host: istiod-$rev.$ns.svc.cluster.local
          port:
            number: 443
EOF

# Steps 8.7-8.9.
kcp wait --for condition=Ready "istio/$rev" --timeout=3m
kdp wait --for condition=Ready "istio/$rev" --timeout=3m
kdp wait --for condition=Ready istiocni/default --timeout=3m
