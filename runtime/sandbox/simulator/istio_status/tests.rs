//! Unit tests of the simulated status, kept apart to keep istio_status.rs short.

use super::*;

fn facts(namespaces: &[&str]) -> Facts {
    Facts {
        namespaces: namespaces.iter().map(|n| (n.to_string(), BTreeMap::new())).collect(),
        ..Facts::default()
    }
}

fn types_and_reasons(conditions: &[Condition]) -> Vec<(&str, &str, &str)> {
    conditions.iter().map(|c| (c.kind, c.status, c.reason)).collect()
}

#[test]
fn a_valid_istio_is_healthy_with_one_ready_revision() {
    let spec = json!({"version": "v1.30.3", "namespace": "istio-system"});
    let (conditions, extra) = istio("default", &spec, &facts(&["istio-system"]));
    let status = finish(&conditions, extra, 3, None, "2026-01-01T00:00:00Z");
    assert_eq!(status["state"], "Healthy");
    assert_eq!(status["observedGeneration"], 3);
    assert_eq!(status["activeRevisionName"], "default");
    assert_eq!(status["revisions"], json!({"total": 1, "ready": 1, "inUse": 0}));
    let names: Vec<_> = status["conditions"].as_array().unwrap().iter().map(|c| c["type"].clone()).collect();
    assert_eq!(names, ["Reconciled", "Ready", "DependenciesHealthy"]);
    assert!(status["conditions"][0].get("message").is_none(), "empty messages are omitted");
}

#[test]
fn missing_version_or_namespace_is_a_reconcile_error() {
    let (conditions, _) = istio("x", &json!({"namespace": "istio-system"}), &facts(&["istio-system"]));
    assert_eq!(conditions[0].message, "validation error: spec.version not set");
    assert_eq!(conditions[1], reconcile_error("")[1]);
    let (conditions, extra) = istio("x", &json!({"version": "v1.30.3", "namespace": "gone"}), &facts(&[]));
    assert_eq!(
        conditions[0].message,
        "error reconciling resource: validation error: namespace \"gone\" doesn't exist"
    );
    let status = finish(&conditions, extra, 1, None, "t");
    assert_eq!(status["state"], "ReconcileError");
    assert_eq!(status["conditions"][1]["status"], "Unknown");
}

#[test]
fn a_remote_istio_waits_for_its_external_control_plane() {
    let spec = json!({"version": "v1.30.3", "namespace": "ext", "profile": "remote",
                      "values": {"global": {"configCluster": true}}});
    assert!(renders_config_cluster_account(&spec));
    let mut world = facts(&["ext"]);
    let (conditions, extra) = istio("external-istiod", &spec, &world);
    assert_eq!(types_and_reasons(&conditions)[1], ("Ready", "False", "RemoteIstiodNotReady"));
    assert_eq!(finish(&conditions, extra, 1, None, "t")["state"], "RemoteIstiodNotReady");
    world.remote_istiod_ready = true;
    let (conditions, _) = istio("external-istiod", &spec, &world);
    assert_eq!(types_and_reasons(&conditions)[1], ("Ready", "True", "Ready"));
}

#[test]
fn transition_time_changes_only_with_the_status() {
    let spec = json!({"version": "v1.30.3", "namespace": "n", "profile": "remote"});
    let (conditions, extra) = istio("r", &spec, &facts(&["n"]));
    let first = finish(&conditions, extra, 1, None, "t1");
    let world = Facts {
        remote_istiod_ready: true,
        ..facts(&["n"])
    };
    let (conditions, extra) = istio("r", &spec, &world);
    let second = finish(&conditions, extra, 2, Some(&first), "t2");
    assert_eq!(second["conditions"][0]["lastTransitionTime"], "t1", "Reconciled stayed True");
    assert_eq!(second["conditions"][1]["lastTransitionTime"], "t2", "Ready flipped");
}

#[test]
fn cni_dependency_only_when_enabled() {
    let spec = json!({"version": "v1", "namespace": "n", "values": {"pilot": {"cni": {"enabled": true}}}});
    let (conditions, _) = istio("d", &spec, &facts(&["n"]));
    assert_eq!(
        types_and_reasons(&conditions)[2],
        ("DependenciesHealthy", "False", "IstioCNINotFound")
    );
    let world = Facts {
        cni_default_state: Some(Some("Healthy".into())),
        ..facts(&["n"])
    };
    assert_eq!(istio("d", &spec, &world).0[2].status, "True");
}

#[test]
fn revision_names_follow_the_update_strategy() {
    assert_eq!(revision_name("default", &json!({"version": "v1.30.3"})), "default");
    let spec = json!({"version": "v1.30.3", "updateStrategy": {"type": "RevisionBased"}});
    assert_eq!(revision_name("default", &spec), "default-v1-30-3");
    assert!(is_external_control_plane(
        &json!({"values": {"pilot": {"env": {"EXTERNAL_ISTIOD": "true"}}}})
    ));
}
