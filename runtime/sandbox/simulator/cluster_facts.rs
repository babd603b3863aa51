//! What the simulated Sail Operator reads off a cluster's watched state for
//! a status: the probe's verdict on a webhook configuration, an istiod
//! Deployment's or CNI DaemonSet's readiness, the revision counts, and (only
//! without a network namespace) whether a remote secret reaches a cluster.

use kube::api::DynamicObject;
use kube::{Resource, ResourceExt};
use serde_json::Value;

use super::istio_status::{self, Condition};
use super::remote_access::{RemoteAccess, SecretSource};
use super::watched_cluster::ClusterState;

/// What Sail's probe wrote on the revision's injection webhook configuration.
pub fn remote_probe_verdict(state: &ClusterState, spec: &Value, revision: &str) -> Result<(), String> {
    let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or("istio-system");
    let name = istio_status::injector_webhook_name(revision, namespace);
    let webhook = state.webhooks.state().into_iter().find(|w| w.name_any() == name);
    let annotations = webhook.as_ref().map(|w| w.annotations());
    istio_status::remote_probe(&name, annotations)
}

/// `(replicas, readyReplicas)` of Deployment `istiod[-<revision>]` in the revision's namespace.
pub fn istiod_deployment(state: &ClusterState, spec: &Value, revision: &str) -> Option<(i32, i32)> {
    let namespace = spec.get("namespace").and_then(Value::as_str)?;
    let name = if revision == "default" {
        "istiod".to_string()
    } else {
        format!("istiod-{revision}")
    };
    let deployment = state
        .deployments
        .state()
        .into_iter()
        .find(|d| d.name_any() == name && d.namespace().as_deref() == Some(namespace))?;
    let status = deployment.status.clone().unwrap_or_default();
    Some((status.replicas.unwrap_or(0), status.ready_replicas.unwrap_or(0)))
}

/// `(desiredNumberScheduled, numberReady)` of DaemonSet `istio-cni-node` in the IstioCNI's namespace.
pub fn cni_daemonset(state: &ClusterState, spec: &Value) -> Option<(i32, i32)> {
    let namespace = spec.get("namespace").and_then(Value::as_str)?;
    let daemonset = state
        .daemonsets
        .state()
        .into_iter()
        .find(|d| d.name_any() == "istio-cni-node" && d.namespace().as_deref() == Some(namespace))?;
    let status = daemonset.status.clone().unwrap_or_default();
    Some((status.desired_number_scheduled, status.number_ready))
}

/// `(total, ready, inUse)` over the IstioRevisions `istio` owns; the active
/// one counts with the conditions just computed (the store may lag).
pub fn revision_counts(state: &ClusterState, istio: &DynamicObject, active: &str, conditions: &[Condition]) -> (usize, usize, usize) {
    let is_true = |kind: &str, conditions: &[Condition]| conditions.iter().any(|c| c.kind == kind && c.status == "True");
    let mut counts = (
        1,
        usize::from(is_true("Ready", conditions)),
        usize::from(is_true("InUse", conditions)),
    );
    for revision in state.revisions.state() {
        let owned = revision
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == istio.metadata.uid.as_ref());
        if !owned || revision.name_any() == active {
            continue;
        }
        let status_true = |kind: &str| {
            revision
                .data
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|list| list.iter().any(|c| c["type"] == kind && c["status"] == "True"))
        };
        counts.0 += 1;
        counts.1 += usize::from(status_true("Ready"));
        counts.2 += usize::from(status_true("InUse"));
    }
    counts
}

/// Some other cluster runs an external control plane (an Istio with
/// `EXTERNAL_ISTIOD=true`) whose namespace holds a remote secret that
/// authenticates to `target`.
pub async fn remote_reachable(target: &ClusterState, all: &[ClusterState], access: &mut RemoteAccess) -> bool {
    for other in all.iter().filter(|c| c.view.name != target.view.name) {
        let namespaces: Vec<String> = other
            .istios
            .state()
            .iter()
            .filter_map(|i| i.data.get("spec"))
            .filter(|spec| istio_status::is_external_control_plane(spec))
            .map(|spec| spec.get("namespace").and_then(Value::as_str).unwrap_or("istio-system").to_string())
            .collect();
        for secret in other.remote_secrets.state() {
            let namespace = secret.namespace().unwrap_or_default();
            if !namespaces.contains(&namespace) {
                continue;
            }
            for (key, value) in secret.data.iter().flatten() {
                let source = SecretSource {
                    cluster: &other.view.name,
                    namespace: &namespace,
                    name: &secret.name_any(),
                    uid: secret.meta().uid.as_deref().unwrap_or(""),
                    resource_version: secret.meta().resource_version.as_deref().unwrap_or(""),
                    key,
                };
                if access.authenticates(&target.view, &source, &value.0).await {
                    return true;
                }
            }
        }
    }
    false
}
