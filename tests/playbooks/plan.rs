//! `--dry-run` as a plan (issue 14): on clusters where nothing exists yet,
//! every shipped playbook runs to its end, and the objects its plan lists
//! are exactly those the real run then creates (or, for teardown, deletes).
//! Then dropping a data plane from the inputs prunes it, and only it.

use std::collections::BTreeSet;

use kube::api::{Api, DynamicObject};
use serde_json::Value;

use super::*;
use crate::support;

const CLUSTERS: &[&str] = &["cp", "dp1", "dp2"];

/// `cluster object` of every step with `outcome`, from a dry run or a real one.
fn objects(out: &Output, outcome: &str, dry_run: bool) -> BTreeSet<String> {
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "step" && e["outcome"] == outcome && e["dry_run"] == dry_run)
        .map(|e| {
            format!(
                "{} {}",
                e["cluster"].as_str().unwrap_or_default(),
                e["object"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// Plans `playbook`, checks that the plan changed nothing and ends with a
/// summary per cluster, runs it, and compares what both said they `outcome`.
fn plan_then_run(sandbox: &SandboxHandle, playbook: &str, sets: &[(&str, &str)], outcome: &str) -> Output {
    let plan = run(sandbox, playbook, sets, &["--dry-run", "--output", "json"]);
    plan.status(0);
    let summaries = plan.stdout.lines().filter(|l| l.contains(r#""event":"plan""#)).count();
    let clusters = objects(&plan, outcome, true)
        .iter()
        .map(|o| o.split(' ').next().unwrap_or_default().to_string())
        .collect::<BTreeSet<_>>();
    assert_eq!(
        summaries,
        clusters.len(),
        "{playbook}: one plan summary per cluster:\n{}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains("(dry run)"),
        "{playbook}: the dry run is a field, not an outcome suffix"
    );
    let real = run(sandbox, playbook, sets, &["--output", "json"]);
    real.status(0);
    let (planned, done) = (objects(&plan, outcome, true), objects(&real, outcome, false));
    assert!(!done.is_empty(), "{playbook}: the real run {outcome} nothing:\n{}", real.stdout);
    assert_eq!(
        planned, done,
        "{playbook}: the plan's {outcome} objects (left) against the run's (right)"
    );
    real
}

async fn sail_names(client: &kube::Client, kind: &str, plural: &str) -> Vec<String> {
    let api = Api::<DynamicObject>::all_with(client.clone(), &sail(kind, plural));
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect()
}

#[tokio::test]
async fn plans_on_empty_clusters_list_what_the_runs_create_and_a_dropped_data_plane_is_pruned() {
    let sandbox = support::sandbox("plan", CLUSTERS);
    let dp1_server = sandbox.server("dp1");
    let external = [
        ("CTX_CONTROL_PLANE_CLUSTER", "cp"),
        ("CTX_DATA_PLANE_CLUSTER", "dp1"),
        ("DATA_PLANE_API_SERVER", dp1_server.as_str()),
    ];
    // Nothing exists yet: step 5 reads an address no one has assigned.
    let plan = run(sandbox, "external.rhai", &external, &["--dry-run"]);
    plan.status(0)
        .stdout_contains("EXTERNAL_ISTIOD_ADDR=<svc/istio-ingressgateway .status.loadBalancer.ingress[0].ip>")
        .stdout_contains("remotePilotAddress: <svc/istio-ingressgateway .status.loadBalancer.ingress[0].ip>")
        .stdout_contains("would wait for condition=Ready")
        .stdout_contains("plan for cp: ")
        .stdout_contains("  + Istio default")
        .stdout_lacks("unchanged (dry run)");
    let cp = sandbox.client("cp").await;
    assert!(sail_names(&cp, "Istio", "istios").await.is_empty(), "a plan created an Istio");
    // -v shows every step.
    run(sandbox, "external.rhai", &external, &["--dry-run", "-v"])
        .status(0)
        .stdout_contains("ok (dry run)");

    plan_then_run(sandbox, "external.rhai", &external, "created");
    plan_then_run(sandbox, "verify.rhai", &[("CTX_DATA_PLANE_CLUSTER", "dp1")], "created");
    let teardown = [("CTX_CONTROL_PLANE_CLUSTER", "cp"), ("CTX_DATA_PLANE_CLUSTERS", "dp1")];
    plan_then_run(sandbox, "teardown.rhai", &teardown, "deleted");

    let two = [("CTX_CONTROL_PLANE_CLUSTER", "cp"), ("CTX_DATA_PLANE_CLUSTERS", "dp1,dp2")];
    // On two networks: the plan also lists the east-west gateways and the cross-network Gateway.
    let two_networks = [&two[..], &[("DATA_PLANE_NETWORKS", "network1,network2")]].concat();
    let created = plan_then_run(sandbox, "external-multi-dataplane.rhai", &two_networks, "created");
    let made = objects(&created, "created", false);
    for expected in [
        "dp1 Service external-istiod/istio-eastwestgateway",
        "dp2 Deployment external-istiod/istio-eastwestgateway",
        "dp1 Gateway external-istiod/cross-network-gateway",
    ] {
        assert!(made.contains(expected), "{expected}: {made:#?}");
    }
    let dp2 = sandbox.client("dp2").await;
    assert_eq!(sail_names(&dp2, "IstioCNI", "istiocnis").await, vec!["default"]);

    // Drop dp2 from the list: its remote Istio, CNI, namespaces and account go,
    // and its secret on the control plane; of dp1 only the east-west gateway
    // (one network left); nothing else of dp1 or cp.
    let one = [("CTX_CONTROL_PLANE_CLUSTER", "cp"), ("CTX_DATA_PLANE_CLUSTERS", "dp1")];
    let plan = run(sandbox, "external-multi-dataplane.rhai", &one, &["--dry-run", "--output", "json"]);
    plan.status(0);
    let pruned = run(sandbox, "external-multi-dataplane.rhai", &one, &["--output", "json"]);
    pruned.status(0);
    assert_eq!(objects(&plan, "pruned", true), objects(&pruned, "pruned", false));
    let gone = objects(&pruned, "pruned", false);
    for expected in [
        "cp Secret external-istiod/istio-remote-secret-cluster2",
        "dp2 Istio external-istiod",
        "dp2 IstioCNI default",
        "dp2 Namespace external-istiod",
        "dp2 Namespace istio-cni",
        "dp2 ServiceAccount external-istiod/istio-reader-service-account",
        "dp1 Service external-istiod/istio-eastwestgateway",
        "dp1 Gateway external-istiod/cross-network-gateway",
    ] {
        assert!(gone.contains(expected), "{expected} not pruned: {gone:#?}");
    }
    assert!(
        gone.iter()
            .all(|o| o.starts_with("dp2 ") || o.contains("cluster2") || o.contains("eastwestgateway") || o.contains("cross-network")),
        "pruned more: {gone:#?}"
    );
    assert!(sail_names(&dp2, "Istio", "istios").await.is_empty());
    assert!(sail_names(&dp2, "IstioCNI", "istiocnis").await.is_empty());
    let dp1 = sandbox.client("dp1").await;
    assert_eq!(sail_names(&dp1, "Istio", "istios").await, vec!["external-istiod"]);
    let external_istiod = sail_object(&cp, "Istio", "istios", "external-istiod").await;
    assert_eq!(ready(&external_istiod), "True");
    let secrets = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(cp.clone(), "external-istiod");
    assert!(secrets.get_opt("istio-remote-secret-cluster2").await.unwrap().is_none());
    assert!(secrets.get_opt("istio-kubeconfig").await.unwrap().is_some());
    let rerun = run(sandbox, "external-multi-dataplane.rhai", &one, &["--output", "json"]);
    assert!(changed_steps(&rerun).is_empty(), "{:#?}", changed_steps(&rerun));

    run(sandbox, "teardown.rhai", &two, &[]).status(0);
    plan_then_run(sandbox, "external-multi-mesh.rhai", &two, "created");
}
