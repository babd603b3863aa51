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

const INSTALLED: Result<(), String> = Ok(());

#[test]
fn a_valid_istio_is_healthy_with_one_ready_revision() {
    let spec = json!({"version": "v1.30.3", "namespace": "istio-system", "values": {}});
    let revision = revision("default", &spec, &facts(&["istio-system"]), &INSTALLED);
    assert_eq!(types_and_reasons(&revision)[3], ("InUse", "False", "NotReferencedByAnything"));
    let (conditions, extra) = istio("default", None, &revision, (1, 1, 0));
    let status = finish(&conditions, extra, 3, None, "2026-01-01T00:00:00Z");
    assert_eq!(status["state"], "Healthy");
    assert_eq!(status["observedGeneration"], 3);
    assert_eq!(status["activeRevisionName"], "default");
    assert_eq!(status["revisions"], json!({"total": 1, "ready": 1, "inUse": 0}));
    let names: Vec<_> = status["conditions"].as_array().unwrap().iter().map(|c| c["type"].clone()).collect();
    assert_eq!(names, ["Reconciled", "Ready", "DependenciesHealthy"], "InUse stays on the revision");
    assert!(status["conditions"][0].get("message").is_none(), "empty messages are omitted");
}

#[test]
fn spec_errors_namespace_errors_and_helm_errors_are_reconcile_errors() {
    assert_eq!(
        istio_spec_error(&json!({"namespace": "istio-system"})).unwrap(),
        "validation error: spec.version not set"
    );
    let missing = revision("x", &json!({"version": "v1", "namespace": "gone"}), &facts(&[]), &INSTALLED);
    assert_eq!(
        missing[0].message,
        "error reconciling resource: validation error: namespace \"gone\" doesn't exist"
    );
    let (conditions, extra) = istio("x", None, &missing, (1, 0, 0));
    let status = finish(&conditions, extra, 1, None, "t");
    assert_eq!(status["state"], "ReconcileError");
    assert_eq!(status["conditions"][1]["status"], "Unknown");
    let helm = revision(
        "x",
        &json!({"version": "v1", "namespace": "n"}),
        &facts(&["n"]),
        &Err("unknown profile bogus".into()),
    );
    assert_eq!(helm[0].message, "error reconciling resource: unknown profile bogus");
}

#[test]
fn a_remote_revision_waits_for_its_external_control_plane() {
    let spec = json!({"version": "v1.30.3", "namespace": "ext", "values": {"profile": "remote"}});
    let mut world = facts(&["ext"]);
    let conditions = revision("external-istiod", &spec, &world, &INSTALLED);
    assert_eq!(types_and_reasons(&conditions)[1], ("Ready", "False", "RemoteIstiodNotReady"));
    assert_eq!(finish(&conditions, json!({}), 1, None, "t")["state"], "RemoteIstiodNotReady");
    world.remote_probe = Ok(());
    let conditions = revision("external-istiod", &spec, &world, &INSTALLED);
    assert_eq!(types_and_reasons(&conditions)[1], ("Ready", "True", "Ready"));
}

#[test]
fn the_probe_verdict_comes_from_the_webhook_annotations() {
    let name = injector_webhook_name("external-istiod", "external-istiod");
    assert_eq!(name, "istio-sidecar-injector-external-istiod-external-istiod");
    assert_eq!(injector_webhook_name("default", "istio-system"), "istio-sidecar-injector");
    assert_eq!(
        remote_probe(&name, None).unwrap_err(),
        "MutatingWebhookConfiguration istio-sidecar-injector-external-istiod-external-istiod not found"
    );
    let mut annotations = BTreeMap::new();
    assert!(
        remote_probe(&name, Some(&annotations))
            .unwrap_err()
            .starts_with("invalid or missing annotation")
    );
    annotations.insert("sailoperator.io/readinessProbe.status".to_string(), "false".to_string());
    assert_eq!(remote_probe(&name, Some(&annotations)).unwrap_err(), PROBE_FAILED);
    annotations.insert("sailoperator.io/readinessProbe.status".to_string(), "true".to_string());
    assert!(remote_probe(&name, Some(&annotations)).is_ok());
}

#[test]
fn with_nodes_a_local_revision_follows_its_istiod_deployment() {
    let spec = json!({"version": "v1", "namespace": "n", "values": {}});
    let mut world = Facts {
        nodes: true,
        ..facts(&["n"])
    };
    let reason = |world: &Facts| revision("r", &spec, world, &INSTALLED)[1].message.clone();
    assert_eq!(reason(&world), "istiod Deployment not found");
    world.istiod = Some((1, 0));
    assert_eq!(reason(&world), "not all istiod pods are ready");
    world.istiod = Some((0, 0));
    assert_eq!(reason(&world), "istiod Deployment is scaled to zero replicas");
    world.istiod = Some((1, 1));
    assert_eq!(revision("r", &spec, &world, &INSTALLED)[1].status, "True");
}

#[test]
fn transition_time_changes_only_with_the_status() {
    let spec = json!({"version": "v1.30.3", "namespace": "n", "values": {"profile": "remote"}});
    let first = finish(&revision("r", &spec, &facts(&["n"]), &INSTALLED), json!({}), 1, None, "t1");
    let world = Facts {
        remote_probe: Ok(()),
        ..facts(&["n"])
    };
    let second = finish(&revision("r", &spec, &world, &INSTALLED), json!({}), 2, Some(&first), "t2");
    assert_eq!(second["conditions"][0]["lastTransitionTime"], "t1", "Reconciled stayed True");
    assert_eq!(second["conditions"][1]["lastTransitionTime"], "t2", "Ready flipped");
}

#[test]
fn cni_dependency_only_when_enabled() {
    let spec = json!({"version": "v1", "namespace": "n", "values": {"pilot": {"cni": {"enabled": true}}}});
    let conditions = revision("d", &spec, &facts(&["n"]), &INSTALLED);
    assert_eq!(
        types_and_reasons(&conditions)[2],
        ("DependenciesHealthy", "False", "IstioCNINotFound")
    );
    let world = Facts {
        cni_default_state: Some(Some("Healthy".into())),
        ..facts(&["n"])
    };
    assert_eq!(revision("d", &spec, &world, &INSTALLED)[2].status, "True");
}

#[test]
fn cni_readiness_follows_its_daemonset_when_pods_run() {
    let spec = json!({"version": "v1", "namespace": "kube-system"});
    let mut world = Facts {
        nodes: true,
        ..facts(&["kube-system"])
    };
    assert_eq!(istio_cni(&spec, &world, &INSTALLED).0[1].reason, "DaemonSetNotReady");
    world.cni_daemonset = Some((2, 2));
    assert_eq!(istio_cni(&spec, &world, &INSTALLED).0[1].status, "True");
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
