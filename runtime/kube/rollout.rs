//! Whether a workload's rollout is done, as `kubectl rollout status` judges
//! it (kubectl's `polymorphichelpers/rollout_status.go`), for Deployments,
//! DaemonSets and StatefulSets. Pure functions: rollout_restart watches.

use serde_json::Value;

/// The restart annotation `kubectl rollout restart` sets on the pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The kinds a rollout restart applies to.
pub const KINDS: &[&str] = &["Deployment", "DaemonSet", "StatefulSet"];

#[derive(Debug, PartialEq)]
pub enum Rollout {
    Done(String),
    /// Still rolling: what kubectl would print while waiting.
    Waiting(String),
    /// It cannot finish by waiting (Deployment's progress deadline exceeded).
    Failed(String),
}

fn int(o: &Value, pointer: &str) -> i64 {
    o.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The rollout state of `object`, a `kind` (Deployment, DaemonSet or
/// StatefulSet): given apart, since the items of a list carry no kind.
pub fn status(kind: &str, object: &Value) -> Rollout {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let generation = int(object, "/metadata/generation");
    if int(object, "/status/observedGeneration") < generation {
        return Rollout::Waiting(format!("waiting for the {kind} spec update to be observed"));
    }
    match kind {
        "Deployment" => deployment(object, name),
        "DaemonSet" => daemon_set(object, name),
        "StatefulSet" => stateful_set(object, name),
        other => Rollout::Failed(format!("{other} has no rollout (only {})", KINDS.join(", "))),
    }
}

fn deployment(o: &Value, name: &str) -> Rollout {
    let conditions = o.pointer("/status/conditions").and_then(Value::as_array);
    let deadline = conditions
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
    if deadline {
        return Rollout::Failed(format!("deployment \"{name}\" exceeded its progress deadline"));
    }
    // spec.replicas defaults to 1 on the server; absent only in hand-made objects.
    let replicas = o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let updated = int(o, "/status/updatedReplicas");
    let total = int(o, "/status/replicas");
    let available = int(o, "/status/availableReplicas");
    if updated < replicas {
        return Rollout::Waiting(format!("{updated} out of {replicas} new replicas have been updated"));
    }
    if total > updated {
        return Rollout::Waiting(format!("{} old replicas are pending termination", total - updated));
    }
    if available < updated {
        return Rollout::Waiting(format!("{available} of {updated} updated replicas are available"));
    }
    Rollout::Done(format!("deployment \"{name}\" successfully rolled out"))
}

fn daemon_set(o: &Value, name: &str) -> Rollout {
    if o.pointer("/spec/updateStrategy/type").and_then(Value::as_str) == Some("OnDelete") {
        return Rollout::Done(format!("daemon set \"{name}\" uses OnDelete: its pods change only when deleted"));
    }
    let desired = int(o, "/status/desiredNumberScheduled");
    let updated = int(o, "/status/updatedNumberScheduled");
    let available = int(o, "/status/numberAvailable");
    if updated < desired {
        return Rollout::Waiting(format!("{updated} out of {desired} new pods have been updated"));
    }
    if available < desired {
        return Rollout::Waiting(format!("{available} of {desired} updated pods are available"));
    }
    Rollout::Done(format!("daemon set \"{name}\" successfully rolled out"))
}

fn stateful_set(o: &Value, name: &str) -> Rollout {
    if o.pointer("/spec/updateStrategy/type").and_then(Value::as_str) == Some("OnDelete") {
        return Rollout::Done(format!("statefulset \"{name}\" uses OnDelete: its pods change only when deleted"));
    }
    let replicas = o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let ready = int(o, "/status/readyReplicas");
    if ready < replicas {
        return Rollout::Waiting(format!("{ready} of {replicas} pods are ready"));
    }
    let partition = int(o, "/spec/updateStrategy/rollingUpdate/partition");
    if partition > 0 {
        let updated = int(o, "/status/updatedReplicas");
        if updated < replicas - partition {
            return Rollout::Waiting(format!(
                "{updated} of {} pods above the partition have been updated",
                replicas - partition
            ));
        }
        return Rollout::Done(format!("partitioned roll out complete: {updated} new pods have been updated"));
    }
    let update = o.pointer("/status/updateRevision").and_then(Value::as_str);
    let current = o.pointer("/status/currentRevision").and_then(Value::as_str);
    if update != current {
        let updated = int(o, "/status/updatedReplicas");
        return Rollout::Waiting(format!("{updated} of {replicas} pods have the new revision"));
    }
    Rollout::Done(format!("statefulset \"{name}\" rolled out to revision {}", update.unwrap_or("")))
}

/// The merge patch of `kubectl rollout restart` at `now` (RFC 3339).
pub fn restart_patch(now: &str) -> Value {
    serde_json::json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}})
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// As a list item: the kind given apart.
    fn status_of(o: &Value) -> Rollout {
        let kind = o["kind"].as_str().unwrap_or("").to_string();
        let mut item = o.clone();
        item.as_object_mut().unwrap().remove("kind");
        status(&kind, &item)
    }

    fn deploy(spec_replicas: i64, status: Value) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": "web", "generation": 2},
               "spec": {"replicas": spec_replicas}, "status": status})
    }

    #[test]
    fn deployment_waits_for_the_new_generation_then_new_replicas_then_old_ones_to_go() {
        let stale = deploy(
            2,
            json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert!(matches!(status_of(&stale), Rollout::Waiting(m) if m.contains("spec update")));
        let updating = deploy(
            2,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2}),
        );
        assert_eq!(
            status_of(&updating),
            Rollout::Waiting("1 out of 2 new replicas have been updated".into())
        );
        let old = deploy(
            2,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert_eq!(status_of(&old), Rollout::Waiting("1 old replicas are pending termination".into()));
        let unavailable = deploy(
            2,
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}),
        );
        assert_eq!(
            status_of(&unavailable),
            Rollout::Waiting("1 of 2 updated replicas are available".into())
        );
        let done = deploy(
            2,
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert!(matches!(status_of(&done), Rollout::Done(_)));
        let zero = deploy(0, json!({"observedGeneration": 2}));
        assert!(matches!(status_of(&zero), Rollout::Done(_)));
    }

    #[test]
    fn deployment_past_its_progress_deadline_fails() {
        let o = deploy(
            1,
            json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert!(matches!(status_of(&o), Rollout::Failed(m) if m.contains("progress deadline")));
    }

    #[test]
    fn daemon_set_and_stateful_set() {
        let ds = |updated: i64, available: i64| {
            json!({"kind": "DaemonSet", "metadata": {"name": "cni", "generation": 1},
                   "status": {"observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": updated, "numberAvailable": available}})
        };
        assert!(matches!(status_of(&ds(1, 2)), Rollout::Waiting(m) if m == "1 out of 2 new pods have been updated"));
        assert!(matches!(status_of(&ds(2, 1)), Rollout::Waiting(m) if m == "1 of 2 updated pods are available"));
        assert!(matches!(status_of(&ds(2, 2)), Rollout::Done(_)));

        let sts = |ready: i64, current: &str| {
            json!({"kind": "StatefulSet", "metadata": {"name": "db", "generation": 1}, "spec": {"replicas": 2},
                   "status": {"observedGeneration": 1, "readyReplicas": ready, "updatedReplicas": 1,
                              "updateRevision": "db-2", "currentRevision": current}})
        };
        assert!(matches!(status_of(&sts(1, "db-2")), Rollout::Waiting(m) if m == "1 of 2 pods are ready"));
        assert!(matches!(status_of(&sts(2, "db-1")), Rollout::Waiting(m) if m == "1 of 2 pods have the new revision"));
        assert!(matches!(status_of(&sts(2, "db-2")), Rollout::Done(_)));
    }

    #[test]
    fn other_kinds_have_no_rollout() {
        let o = json!({"kind": "ConfigMap", "metadata": {"name": "x"}});
        assert!(matches!(status_of(&o), Rollout::Failed(m) if m.contains("Deployment, DaemonSet, StatefulSet")));
    }

    #[test]
    fn the_patch_sets_kubectls_annotation_on_the_pod_template() {
        let patch = restart_patch("2026-12-01T10:00:00Z");
        assert_eq!(
            patch["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
            "2026-12-01T10:00:00Z"
        );
    }
}
