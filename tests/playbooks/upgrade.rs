//! upgrade.rhai: a canary revision across a control plane and two data
//! planes, workloads moved and checked pod by pod, the old revision kept
//! while a pod still uses it, a rollback, then the old revision removed.
//! (The sandbox has one Istio snapshot: "1.24.4" renders the same charts
//! under a new revision name; what is proven is the cross-cluster flow.)

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::runtime::conditions;

use super::*;
use crate::support::{self, wait_for};

const CLUSTERS: &[&str] = &["cp", "dp1", "dp2"];
const INPUTS: &[(&str, &str)] = &[("CTX_CONTROL_PLANE_CLUSTER", "cp"), ("CTX_DATA_PLANE_CLUSTERS", "dp1,dp2")];

/// Namespace `ns` labelled for `revision` with a Deployment `web` of 2 pods, Available.
async fn workload(client: &kube::Client, ns: &str, revision: &str) {
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": ns, "labels": {"istio.io/rev": revision}}}))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}}}))
    .unwrap();
    let api = Api::<Deployment>::namespaced(client.clone(), ns);
    // The namespace's default ServiceAccount comes from the controller manager: retry until it exists.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while let Err(e) = api.create(&PostParams::default(), &deployment).await {
        assert!(std::time::Instant::now() < deadline, "{ns}/web: {e}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_for(api, "web", conditions::is_deployment_completed(), Duration::from_secs(60)).await;
}

/// The sidecar revision of each live pod in `ns` (from `sidecar.istio.io/status`).
async fn pod_revisions(client: &kube::Client, ns: &str) -> Vec<String> {
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    pods.items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let annotations = p.metadata.annotations.clone().unwrap_or_default();
            let status = annotations.get("sidecar.istio.io/status").cloned().unwrap_or_default();
            let status: Value = serde_json::from_str(&status).unwrap_or(Value::Null);
            status["revision"].as_str().unwrap_or("none").to_string()
        })
        .collect()
}

async fn istio_names(client: &kube::Client) -> Vec<String> {
    let api = Api::<DynamicObject>::all_with(client.clone(), &sail("Istio", "istios"));
    let list = api.list(&Default::default()).await.unwrap();
    let mut names: Vec<String> = list.items.into_iter().filter_map(|o| o.metadata.name).collect();
    names.sort();
    names
}

#[tokio::test]
async fn canary_revision_moves_workloads_keeps_the_old_one_while_used_then_removes_it() {
    let sandbox = support::sandbox("upgrade", CLUSTERS);
    run(sandbox, "external-multi-dataplane.rhai", INPUTS, &[]).status(0);
    let (cp, dp1, dp2) = (sandbox.client("cp").await, sandbox.client("dp1").await, sandbox.client("dp2").await);
    workload(&dp1, "sample", "external-istiod").await;
    workload(&dp2, "sample", "external-istiod").await;
    workload(&dp2, "other", "external-istiod").await;
    assert_eq!(
        pod_revisions(&dp2, "other").await,
        vec!["external-istiod"; 2],
        "injected by the old revision"
    );

    let sets = [
        INPUTS,
        &[("ISTIO_VERSION", "1.24.4"), ("REVISION", "canary"), ("NAMESPACES", "sample")],
    ]
    .concat();
    run(sandbox, "upgrade.rhai", &sets, &["--dry-run"]).status(0);
    assert_eq!(
        istio_names(&cp).await,
        vec!["default", "external-istiod"],
        "a dry run installs nothing"
    );

    // sample moves; dp2's `other` still uses the old revision, so it stays.
    run(sandbox, "upgrade.rhai", &sets, &[])
        .status(1)
        .stderr_contains("revision external-istiod is still used; not removed. Pods:")
        .stderr_contains("  - dp2: other/web-");
    for (client, name) in [(&cp, "cp"), (&dp1, "dp1"), (&dp2, "dp2")] {
        let istios = istio_names(client).await;
        assert!(istios.contains(&"external-istiod".to_string()), "{name}: {istios:?}");
        assert!(istios.contains(&"canary".to_string()), "{name}: {istios:?}");
        assert_eq!(ready(&sail_object(client, "Istio", "istios", "canary").await), "True", "{name}");
    }
    assert_eq!(pod_revisions(&dp1, "sample").await, vec!["canary"; 2]);
    assert_eq!(pod_revisions(&dp2, "sample").await, vec!["canary"; 2]);
    assert_eq!(pod_revisions(&dp2, "other").await, vec!["external-istiod"; 2]);
    let canary_address = ingress_address(&cp, "istio-system-canary").await;
    assert_ne!(
        canary_address,
        ingress_address(&cp, "istio-system").await,
        "its own gateway address"
    );

    // Rollback: sample goes back to the old revision.
    let rollback = [&sets[..], &[("ROLLBACK", "true")]].concat();
    run(sandbox, "upgrade.rhai", &rollback, &[]).status(0);
    assert_eq!(pod_revisions(&dp1, "sample").await, vec!["external-istiod"; 2]);
    assert_eq!(pod_revisions(&dp2, "sample").await, vec!["external-istiod"; 2]);

    // Every namespace moves: the old revision goes from every cluster.
    let all = [
        INPUTS,
        &[("ISTIO_VERSION", "1.24.4"), ("REVISION", "canary"), ("NAMESPACES", "sample,other")],
    ]
    .concat();
    run(sandbox, "upgrade.rhai", &all, &[]).status(0);
    for (client, name) in [(&cp, "cp"), (&dp1, "dp1"), (&dp2, "dp2")] {
        let expected = if name == "cp" { vec!["canary", "default"] } else { vec!["canary"] };
        assert_eq!(istio_names(client).await, expected, "{name}");
    }
    for (client, ns) in [(&dp1, "sample"), (&dp2, "sample"), (&dp2, "other")] {
        assert_eq!(pod_revisions(client, ns).await, vec!["canary"; 2], "{ns}");
    }
    let mesh = |cluster_id, account| rendered::Mesh {
        namespace: "external-istiod",
        revision: "canary",
        cluster_id,
        network: "network1",
        address: &canary_address,
        account,
    };
    rendered::assert_control_plane(&cp, &mesh("cluster1", "istiod-canary")).await;
    rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp1, &mesh("cluster1", "istiod-canary")).await;
    rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp2, &mesh("cluster2", "istio-reader-service-account")).await;

    // The remote secrets rotate under the new revision too (its istiod restarted for the config cluster).
    let rotate = [INPUTS, &[("REVISION", "canary")]].concat();
    run(sandbox, "rotate-remote-secret.rhai", &rotate, &[])
        .status(0)
        .stdout_contains("to token Secret istiod-canary-token-a")
        .stdout_contains("to token Secret istio-reader-service-account-token-a");
    rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp1, &mesh("cluster1", "istiod-canary")).await;
    rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp2, &mesh("cluster2", "istio-reader-service-account")).await;

    let rerun = run(sandbox, "upgrade.rhai", &all, &["--output", "json"]);
    rerun.status(0);
    // The old revision's objects are reported `absent`: nothing to delete.
    let changed: Vec<Value> = changed_steps(&rerun).into_iter().filter(|s| s["outcome"] != "absent").collect();
    assert!(changed.is_empty(), "a rerun changed: {changed:#?}");

    // Day 2 after the upgrade: a data plane leaves and joins again under the new revision (REVISION).
    let remove = [
        ("CTX_CONTROL_PLANE_CLUSTER", "cp"),
        ("CTX_DATA_PLANE_CLUSTER", "dp2"),
        ("DATA_PLANE_CLUSTER_NAME", "cluster2"),
        ("CTX_DATA_PLANE_CLUSTERS", "dp1"),
        ("REVISION", "canary"),
    ];
    run(sandbox, "remove-data-plane.rhai", &remove, &[]).status(0);
    assert!(istio_names(&dp2).await.is_empty(), "dp2 left the mesh");
    let add = [
        ("CTX_CONTROL_PLANE_CLUSTER", "cp"),
        ("CTX_DATA_PLANE_CLUSTER", "dp2"),
        ("DATA_PLANE_CLUSTER_NAME", "cluster2"),
        ("REVISION", "canary"),
    ];
    run(sandbox, "add-data-plane.rhai", &add, &[])
        .status(0)
        .stdout_contains(&format!("to external-istiod at {canary_address}, Istio 1.24.4"));
    assert_eq!(istio_names(&dp2).await, vec!["canary"]);
    rendered::assert_data_plane(&dp2, &mesh("cluster2", "istio-reader-service-account")).await;
    rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp2, &mesh("cluster2", "istio-reader-service-account")).await;
}
