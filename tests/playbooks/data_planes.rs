//! add-data-plane.rhai and remove-data-plane.rhai on a mesh of one control
//! plane and two data planes: a third joins, the second leaves, and istiod's
//! view and the survivors are checked each time. The third joins on a
//! network of its own (DATA_PLANE_NETWORK), with east-west gateways, which
//! go when the last data plane on that network leaves.

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;

use super::*;
use crate::support;

const CLUSTERS: &[&str] = &["cp", "dp1", "dp2", "dp3"];
const INPUTS: &[(&str, &str)] = &[("CTX_CONTROL_PLANE_CLUSTER", "cp"), ("CTX_DATA_PLANE_CLUSTERS", "dp1,dp2")];

fn synced_ids(sandbox: &SandboxHandle) -> Vec<(String, String)> {
    let clusters = rendered::istiod_debug(sandbox.dir(), "cp", "external-istiod", "/debug/clusterz");
    let list = clusters.as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or("").to_string(),
                c["syncStatus"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_data_plane_joins_and_another_leaves_while_the_rest_stay_synced() {
    let sandbox = support::sandbox("add-remove", CLUSTERS);
    run(sandbox, "external-multi-dataplane.rhai", INPUTS, &[]).status(0);
    let cp = sandbox.client("cp").await;
    let address = ingress_address(&cp, "istio-system").await;
    let mesh = |cluster_id, account| rendered::Mesh {
        namespace: "external-istiod",
        revision: "external-istiod",
        cluster_id,
        network: if cluster_id == "cluster3" { "network2" } else { "network1" },
        address: &address,
        account,
    };
    let reader = "istio-reader-service-account";

    let add = [
        ("CTX_CONTROL_PLANE_CLUSTER", "cp"),
        ("CTX_DATA_PLANE_CLUSTER", "dp3"),
        ("DATA_PLANE_CLUSTER_NAME", "cluster3"),
        ("DATA_PLANE_NETWORK", "network2"),
        ("CTX_CONFIG_CLUSTER", "dp1"),
    ];
    let dp3 = sandbox.client("dp3").await;
    run(sandbox, "add-data-plane.rhai", &add, &["--dry-run"]).status(0);
    assert!(
        leftovers(&dp3).await.is_empty(),
        "a dry run creates nothing: {:?}",
        leftovers(&dp3).await
    );
    run(sandbox, "add-data-plane.rhai", &add, &[])
        .status(0)
        .stdout_contains("Istio 1.24.3");
    let remote = sail_object(&dp3, "Istio", "istios", "external-istiod").await;
    assert_eq!(ready(&remote), "True");
    assert_eq!(
        remote["spec"]["version"], "v1.24.3",
        "the mesh's version, read from the control plane"
    );
    assert_eq!(remote["spec"]["values"]["global"]["network"], "network2", "DATA_PLANE_NETWORK");
    // A new network: east-west gateways on it and on the config cluster's, both known to istiod.
    let gateways = rendered::istiod_debug(sandbox.dir(), "cp", "external-istiod", "/debug/networkz");
    let networks: Vec<&str> = gateways
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["Network"].as_str())
        .collect();
    assert!(networks.contains(&"network1") && networks.contains(&"network2"), "{gateways}");
    rendered::assert_data_plane(&dp3, &mesh("cluster3", reader)).await;
    rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp3, &mesh("cluster3", reader)).await;
    assert_remote_secret(
        sandbox,
        &cp,
        ("external-istiod", "istio-remote-secret-cluster3", "cluster3"),
        "cluster3",
        &sandbox.server("dp3"),
        &format!("system:serviceaccount:external-istiod:{reader}"),
    )
    .await;
    let rerun = run(sandbox, "add-data-plane.rhai", &add, &["--output", "json"]);
    rerun.status(0);
    let changed = changed_steps(&rerun);
    assert!(changed.is_empty(), "a rerun changed: {changed:#?}");

    let remove = [
        ("CTX_CONTROL_PLANE_CLUSTER", "cp"),
        ("CTX_DATA_PLANE_CLUSTER", "dp2"),
        ("DATA_PLANE_CLUSTER_NAME", "cluster2"),
        ("CTX_DATA_PLANE_CLUSTERS", "dp1,dp3"),
        ("DATA_PLANE_CLUSTER_NAMES", "cluster1,cluster3"),
    ];
    run(sandbox, "remove-data-plane.rhai", &remove, &["--dry-run"]).status(0);
    Api::<Secret>::namespaced(cp.clone(), "external-istiod")
        .get("istio-remote-secret-cluster2")
        .await
        .expect("a dry run deletes nothing");
    run(sandbox, "remove-data-plane.rhai", &remove, &[]).status(0);

    let ids = synced_ids(sandbox);
    assert!(!ids.iter().any(|(id, _)| id == "cluster2"), "istiod forgot cluster2: {ids:?}");
    for id in ["cluster1", "cluster3"] {
        assert!(ids.contains(&(id.to_string(), "synced".to_string())), "{id} still synced: {ids:?}");
    }
    let gone = Api::<Secret>::namespaced(cp.clone(), "external-istiod")
        .get_opt("istio-remote-secret-cluster2")
        .await
        .unwrap();
    assert!(gone.is_none(), "the remote secret is gone");
    let dp2 = sandbox.client("dp2").await;
    // The rendered cluster-scoped objects go by garbage collection: give it time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut left = leftovers(&dp2).await;
    while !left.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        left = leftovers(&dp2).await;
    }
    assert!(left.is_empty(), "dp2 keeps: {left:?}");
    let ns = Api::<Namespace>::all(dp2.clone()).get_opt("external-istiod").await.unwrap();
    assert!(ns.is_none(), "dp2's namespace is gone");
    let dp1 = sandbox.client("dp1").await;
    assert_eq!(ready(&sail_object(&dp1, "Istio", "istios", "external-istiod").await), "True");
    assert_eq!(ready(&sail_object(&dp3, "Istio", "istios", "external-istiod").await), "True");
    rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp3, &mesh("cluster3", reader)).await;

    // A rerun finds everything absent and the survivors still fine.
    run(sandbox, "remove-data-plane.rhai", &remove, &[])
        .status(0)
        .stdout_lacks("deleted");

    // The last data plane on network2 leaves: the config cluster's east-west gateway and the
    // cross-network Gateway go with it (CTX_CONFIG_CLUSTER), and istiod lists no gateway.
    let last = [
        ("CTX_CONTROL_PLANE_CLUSTER", "cp"),
        ("CTX_DATA_PLANE_CLUSTER", "dp3"),
        ("DATA_PLANE_CLUSTER_NAME", "cluster3"),
        ("CTX_DATA_PLANE_CLUSTERS", "dp1"),
        ("CTX_CONFIG_CLUSTER", "dp1"),
    ];
    run(sandbox, "remove-data-plane.rhai", &last, &[])
        .status(0)
        .stdout_contains("Service external-istiod/istio-eastwestgateway")
        .stdout_contains("Gateway external-istiod/cross-network-gateway");
    let services = Api::<k8s_openapi::api::core::v1::Service>::namespaced(dp1.clone(), "external-istiod");
    assert!(services.get_opt("istio-eastwestgateway").await.unwrap().is_none());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let gateways = rendered::istiod_debug(sandbox.dir(), "cp", "external-istiod", "/debug/networkz");
        if gateways.as_array().is_some_and(|g| g.is_empty()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "istiod still lists gateways: {gateways}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(ready(&sail_object(&dp1, "Istio", "istios", "external-istiod").await), "True");
}
