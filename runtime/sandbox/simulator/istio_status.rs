//! The status the simulated Sail Operator writes, computed from plain facts
//! (no client, no I/O). Follows sail-operator's `determineStatus` for `Istio`
//! and `IstioCNI`; see shared/reference/sail-operator-status.md.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// What the simulated operator knows about the cluster an object lives on.
#[derive(Debug, Default)]
pub struct Facts {
    /// Namespace name → labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// `status.state` of the IstioCNI named `default`, `None` when it does not exist.
    pub cni_default_state: Option<Option<String>>,
    /// For a `remote` profile: an external control plane can reach this cluster.
    pub remote_istiod_ready: bool,
}

/// A condition before its `lastTransitionTime` is filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub kind: &'static str,
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

fn condition(kind: &'static str, status: &'static str, reason: &'static str, message: &str) -> Condition {
    Condition {
        kind,
        status,
        reason,
        message: message.to_string(),
    }
}

fn str_at<'a>(spec: &'a Value, pointer: &str) -> Option<&'a str> {
    spec.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `"true"` or `true`: Helm values are untyped, users write both.
fn truthy(spec: &Value, pointer: &str) -> Option<bool> {
    match spec.pointer(pointer)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s == "true"),
        _ => None,
    }
}

/// `InPlace` (the default): the Istio's name; `RevisionBased`: `<name>-<version with . → ->`.
pub fn revision_name(name: &str, spec: &Value) -> String {
    match (str_at(spec, "/updateStrategy/type"), str_at(spec, "/version")) {
        (Some("RevisionBased"), Some(version)) => format!("{name}-{}", version.replace('.', "-")),
        _ => name.to_string(),
    }
}

pub fn is_remote(spec: &Value) -> bool {
    str_at(spec, "/profile") == Some("remote") || str_at(spec, "/values/profile") == Some("remote")
}

/// `pilot.env.EXTERNAL_ISTIOD: "true"`: the Istio is an external control plane.
pub fn is_external_control_plane(spec: &Value) -> bool {
    truthy(spec, "/values/pilot/env/EXTERNAL_ISTIOD") == Some(true)
}

/// A `remote` Istio on a config cluster, for which the chart renders ServiceAccount `istiod-<rev>`.
pub fn renders_config_cluster_account(spec: &Value) -> bool {
    is_remote(spec) && truthy(spec, "/values/global/configCluster") == Some(true)
}

/// Errors the operator reports before it renders anything.
fn validate(spec: &Value, facts: &Facts) -> Result<(), String> {
    if str_at(spec, "/version").is_none() {
        return Err("validation error: spec.version not set".into());
    }
    let Some(namespace) = str_at(spec, "/namespace") else {
        return Err("validation error: spec.namespace not set".into());
    };
    if !facts.namespaces.contains_key(namespace) {
        // Raised by the IstioRevision controller; the Istio copies its condition.
        return Err(format!(
            "error reconciling resource: validation error: namespace \"{namespace}\" doesn't exist"
        ));
    }
    Ok(())
}

/// Needs the IstioCNI `default`: `pilot.cni.enabled: true`, or on OpenShift unless disabled.
fn needs_cni(spec: &Value) -> bool {
    let openshift = str_at(spec, "/values/global/platform") == Some("openshift")
        || str_at(spec, "/profile").is_some_and(|p| p.starts_with("openshift"));
    match truthy(spec, "/values/pilot/cni/enabled") {
        Some(enabled) => enabled,
        None => openshift,
    }
}

fn dependencies(spec: &Value, facts: &Facts) -> Condition {
    if !needs_cni(spec) {
        return condition("DependenciesHealthy", "True", "DependenciesHealthy", "");
    }
    match &facts.cni_default_state {
        None => condition(
            "DependenciesHealthy",
            "False",
            "IstioCNINotFound",
            "IstioCNI resource does not exist",
        ),
        Some(Some(state)) if state == "Healthy" => condition("DependenciesHealthy", "True", "DependenciesHealthy", ""),
        Some(_) => condition(
            "DependenciesHealthy",
            "False",
            "IstioCNINotHealthy",
            "IstioCNI resource status indicates that the component is not healthy",
        ),
    }
}

/// `in use`: a namespace selects this revision for injection (no pods run here).
fn in_use(revision: &str, facts: &Facts) -> bool {
    facts.namespaces.values().any(|labels| {
        labels.get("istio.io/rev").map(String::as_str) == Some(revision)
            || (revision == "default" && labels.get("istio-injection").map(String::as_str) == Some("enabled"))
    })
}

/// The status of an `Istio` (without transition times; see [`finish`]).
pub fn istio(name: &str, spec: &Value, facts: &Facts) -> (Vec<Condition>, Value) {
    let revision = revision_name(name, spec);
    match validate(spec, facts) {
        Err(message) => {
            let conditions = reconcile_error(&message);
            // A namespace error comes from an IstioRevision that exists; spec errors stop before one is created.
            let exists = message.starts_with("error reconciling resource");
            let mut extra = json!({"revisions": {"total": u8::from(exists), "ready": 0, "inUse": 0}});
            if exists {
                extra["activeRevisionName"] = json!(revision);
            }
            (conditions, extra)
        }
        Ok(()) => {
            // The sandbox has no kubelet, so a local istiod Deployment can never become ready:
            // the simulator reports Ready directly. Only the cross-cluster `remote` case is checked.
            let ready = if !is_remote(spec) || facts.remote_istiod_ready {
                condition("Ready", "True", "Ready", "")
            } else {
                condition("Ready", "False", "RemoteIstiodNotReady", "readiness probe on remote istiod failed")
            };
            let ready_count = u8::from(ready.status == "True");
            let conditions = vec![condition("Reconciled", "True", "Reconciled", ""), ready, dependencies(spec, facts)];
            let extra = json!({
                "activeRevisionName": revision,
                "revisions": {"total": 1, "ready": ready_count, "inUse": u8::from(in_use(&revision, facts))},
            });
            (conditions, extra)
        }
    }
}

/// The status of an `IstioCNI`: `Reconciled` and `Ready` (its DaemonSet is taken as ready).
pub fn istio_cni(spec: &Value, facts: &Facts) -> (Vec<Condition>, Value) {
    match validate(spec, facts) {
        Err(message) if message.starts_with("error reconciling resource") => (reconcile_error(&message), json!({})),
        Err(message) => (reconcile_error(&format!("error reconciling resource: {message}")), json!({})),
        Ok(()) => (
            vec![
                condition("Reconciled", "True", "Reconciled", ""),
                condition("Ready", "True", "Ready", ""),
            ],
            json!({}),
        ),
    }
}

fn reconcile_error(message: &str) -> Vec<Condition> {
    vec![
        condition("Reconciled", "False", "ReconcileError", message),
        condition(
            "Ready",
            "Unknown",
            "ReconcileError",
            "cannot determine readiness due to reconciliation error",
        ),
    ]
}

/// The full status: conditions with `lastTransitionTime` kept from `previous`
/// while a condition's status stays the same, `state` = reason of the first
/// condition that is not True (else `Healthy`), and `observedGeneration`.
pub fn finish(conditions: &[Condition], extra: Value, generation: i64, previous: Option<&Value>, now: &str) -> Value {
    let previous_conditions = previous.and_then(|p| p.get("conditions")).and_then(Value::as_array);
    let rendered: Vec<Value> = conditions
        .iter()
        .map(|c| {
            let before = previous_conditions
                .and_then(|list| list.iter().find(|p| p["type"] == c.kind))
                .filter(|p| p["status"] == c.status);
            let since = before
                .and_then(|p| p.get("lastTransitionTime"))
                .cloned()
                .unwrap_or_else(|| json!(now));
            let mut value = json!({"type": c.kind, "status": c.status, "reason": c.reason, "lastTransitionTime": since});
            if !c.message.is_empty() {
                value["message"] = json!(c.message);
            }
            value
        })
        .collect();
    let state = conditions
        .iter()
        .find(|c| c.status != "True")
        .map(|c| c.reason)
        .unwrap_or("Healthy");
    let mut status = json!({"observedGeneration": generation, "conditions": rendered, "state": state});
    if let (Value::Object(status), Value::Object(extra)) = (&mut status, extra) {
        status.extend(extra);
    }
    status
}

#[cfg(test)]
mod tests;
