//! The status the simulated Sail Operator writes, computed from plain facts
//! (no client, no I/O). Follows sail-operator's `determineStatus` for `Istio`
//! and `IstioCNI`; see shared/reference/sail-operator-status.md.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// What the simulated operator knows about the cluster an object lives on.
#[derive(Debug)]
pub struct Facts {
    /// Namespace name → labels.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// `status.state` of the IstioCNI named `default`, `None` when it does not exist.
    pub cni_default_state: Option<Option<String>>,
    /// For a `remote` profile: Sail's readiness probe of the remote istiod,
    /// with the message of the Ready condition when it fails.
    pub remote_probe: Result<(), String>,
    /// Pods run here (kwok nodes): readiness follows the workloads, as on a real
    /// cluster. Without nodes a local istiod or CNI DaemonSet is taken as ready.
    pub nodes: bool,
    /// `(status.replicas, status.readyReplicas)` of the revision's istiod Deployment, when it exists.
    pub istiod: Option<(i32, i32)>,
    /// `(desiredNumberScheduled, numberReady)` of DaemonSet `istio-cni-node`, when it exists.
    pub cni_daemonset: Option<(i32, i32)>,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            namespaces: BTreeMap::new(),
            cni_default_state: None,
            remote_probe: Err(PROBE_FAILED.into()),
            nodes: false,
            istiod: None,
            cni_daemonset: None,
        }
    }
}

/// Sail's message when the probe annotation says `"false"`.
pub const PROBE_FAILED: &str = "readiness probe on remote istiod failed";

/// The Ready verdict Sail reads off the injection webhook configuration
/// `name` (`None`: it does not exist) of a remote revision.
pub fn remote_probe(name: &str, annotations: Option<&BTreeMap<String, String>>) -> Result<(), String> {
    let Some(annotations) = annotations else {
        return Err(format!("MutatingWebhookConfiguration {name} not found"));
    };
    match annotations.get("sailoperator.io/readinessProbe.status").map(String::as_str) {
        Some("true") => Ok(()),
        Some("false") => Err(PROBE_FAILED.into()),
        _ => Err(format!(
            "invalid or missing annotation sailoperator.io/readinessProbe.status on MutatingWebhookConfiguration {name}"
        )),
    }
}

/// `istio-sidecar-injector[-<revision>][-<namespace> unless istio-system]`.
pub fn injector_webhook_name(revision: &str, namespace: &str) -> String {
    let mut name = "istio-sidecar-injector".to_string();
    if revision != "default" && !revision.is_empty() {
        name = format!("{name}-{revision}");
    }
    if namespace != "istio-system" {
        name = format!("{name}-{namespace}");
    }
    name
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

/// Errors on the `Istio` itself, before any IstioRevision exists.
pub fn istio_spec_error(spec: &Value) -> Option<String> {
    if str_at(spec, "/version").is_none() {
        return Some("validation error: spec.version not set".into());
    }
    if str_at(spec, "/namespace").is_none() {
        return Some("validation error: spec.namespace not set".into());
    }
    None
}

/// Raised by the IstioRevision (and IstioCNI) controller before it renders.
pub fn namespace_error(spec: &Value, facts: &Facts) -> Option<String> {
    let namespace = str_at(spec, "/namespace")?;
    (!facts.namespaces.contains_key(namespace))
        .then(|| format!("error reconciling resource: validation error: namespace \"{namespace}\" doesn't exist"))
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

/// A namespace selects this revision for injection.
fn in_use(revision: &str, facts: &Facts) -> bool {
    facts.namespaces.values().any(|labels| {
        labels.get("istio.io/rev").map(String::as_str) == Some(revision)
            || (revision == "default" && labels.get("istio-injection").map(String::as_str) == Some("enabled"))
    })
}

/// `Ready` of a revision whose istiod runs here: its Deployment's pods.
fn local_ready(facts: &Facts) -> Condition {
    if !facts.nodes {
        // No kubelets (no network namespace for kwok): the Deployment can never be ready.
        return condition("Ready", "True", "Ready", "");
    }
    match facts.istiod {
        None => condition("Ready", "False", "IstiodNotReady", "istiod Deployment not found"),
        Some((0, _)) => condition("Ready", "False", "IstiodNotReady", "istiod Deployment is scaled to zero replicas"),
        Some((replicas, ready)) if ready >= replicas => condition("Ready", "True", "Ready", ""),
        Some(_) => condition("Ready", "False", "IstiodNotReady", "not all istiod pods are ready"),
    }
}

/// The conditions of an `IstioRevision` (spec: version, namespace, computed
/// values) after its charts were installed (`installed`: Helm's error, if any).
pub fn revision(name: &str, spec: &Value, facts: &Facts, installed: &Result<(), String>) -> Vec<Condition> {
    if let Some(message) = namespace_error(spec, facts) {
        return reconcile_error(&message);
    }
    if let Err(message) = installed {
        return reconcile_error(&format!("error reconciling resource: {message}"));
    }
    let remote = str_at(spec, "/values/profile") == Some("remote");
    let ready = if !remote {
        local_ready(facts)
    } else {
        match &facts.remote_probe {
            Ok(()) => condition("Ready", "True", "Ready", ""),
            Err(message) => condition("Ready", "False", "RemoteIstiodNotReady", message),
        }
    };
    let in_use = if in_use(name, facts) {
        condition(
            "InUse",
            "True",
            "ReferencedByWorkloads",
            "Referenced by at least one pod or namespace",
        )
    } else {
        condition(
            "InUse",
            "False",
            "NotReferencedByAnything",
            "Not referenced by any pod or namespace",
        )
    };
    vec![
        condition("Reconciled", "True", "Reconciled", ""),
        ready,
        dependencies(spec, facts),
        in_use,
    ]
}

/// The status of an `Istio`: its own error, or its active revision's
/// `Reconciled`, `Ready` and `DependenciesHealthy` copied, plus the counts
/// over the IstioRevisions it owns: `(total, ready, in use)`.
pub fn istio(active: &str, own_error: Option<&str>, revision: &[Condition], counts: (usize, usize, usize)) -> (Vec<Condition>, Value) {
    let revisions = json!({"total": counts.0, "ready": counts.1, "inUse": counts.2});
    if let Some(message) = own_error {
        return (reconcile_error(message), json!({"revisions": revisions}));
    }
    let copied = revision.iter().filter(|c| c.kind != "InUse").cloned().collect();
    (copied, json!({"activeRevisionName": active, "revisions": revisions}))
}

/// The status of an `IstioCNI`: `Reconciled`, and `Ready` from DaemonSet `istio-cni-node`.
pub fn istio_cni(spec: &Value, facts: &Facts, installed: &Result<(), String>) -> (Vec<Condition>, Value) {
    if let Some(message) = istio_spec_error(spec) {
        return (reconcile_error(&format!("error reconciling resource: {message}")), json!({}));
    }
    if let Some(message) = namespace_error(spec, facts) {
        return (reconcile_error(&message), json!({}));
    }
    if let Err(message) = installed {
        return (reconcile_error(&format!("error reconciling resource: {message}")), json!({}));
    }
    let ready = match (facts.nodes, facts.cni_daemonset) {
        (false, _) => condition("Ready", "True", "Ready", ""),
        (true, Some((desired, ready))) if desired > 0 && ready >= desired => condition("Ready", "True", "Ready", ""),
        (true, None) => condition("Ready", "False", "DaemonSetNotReady", "istio-cni-node DaemonSet not found"),
        (true, Some(_)) => condition("Ready", "False", "DaemonSetNotReady", "not all istio-cni-node pods are ready"),
    };
    (vec![condition("Reconciled", "True", "Reconciled", ""), ready], json!({}))
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
    // InUse says nothing about health (Sail's DeriveState skips it).
    let state = conditions
        .iter()
        .find(|c| c.status != "True" && c.kind != "InUse")
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
