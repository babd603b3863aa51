//! external-multi-mesh.rhai's pre-flight: colliding cluster IDs among the
//! planned meshes, or mesh and cluster IDs already used by another Istio on
//! the control plane, stop the run before anything is applied.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};

use super::*;
use crate::support;

async fn created_namespaces(cp: &kube::Client) -> Vec<String> {
    let all = Api::<Namespace>::all(cp.clone()).list(&Default::default()).await.unwrap();
    let names = all.items.into_iter().filter_map(|n| n.metadata.name);
    names
        .filter(|n| n.starts_with("external-istiod") || n.starts_with("istio-system"))
        .collect()
}

#[tokio::test]
async fn collisions_stop_the_multi_mesh_install_before_anything_is_applied() {
    // Only the control plane is read before the check: the shared two-cluster sandbox serves.
    let sandbox = support::sandbox("default", &["control-plane", "data-plane"]);
    let cp = sandbox.client("control-plane").await;
    let inputs = [
        ("CTX_CONTROL_PLANE_CLUSTER", "control-plane"),
        ("CTX_DATA_PLANE_CLUSTERS", "data-plane,data-plane"),
    ];
    let same_ids = [&inputs[..], &[("DATA_PLANE_CLUSTER_NAMES", "cluster1,cluster1")]].concat();
    run(sandbox, "external-multi-mesh.rhai", &same_ids, &[])
        .status(1)
        .stderr_contains("the meshes collide (nothing was applied)")
        .stderr_contains("  - cluster ID \"cluster1\": planned for mesh 1 and mesh 2")
        .stdout_contains("0 changed");
    assert_eq!(created_namespaces(&cp).await, Vec::<String>::new());

    // Another mesh's Istio already claims mesh2 and cluster2, which mesh 2 would get.
    let api = Api::<kube::api::DynamicObject>::all_with(cp.clone(), &sail("Istio", "istios"));
    let other: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "sailoperator.io/v1", "kind": "Istio", "metadata": {"name": "preflight-other"},
        "spec": {"version": "v1.24.3", "namespace": "preflight-other",
                 "values": {"global": {"meshID": "mesh2"}, "pilot": {"env": {"CLUSTER_ID": "cluster2"}}}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &other).await.unwrap();
    let out = run(sandbox, "external-multi-mesh.rhai", &inputs, &["--dry-run"]);
    api.delete("preflight-other", &DeleteParams::default()).await.unwrap();
    out.status(1)
        .stderr_contains("  - mesh ID \"mesh2\" of mesh 2 is already used by Istio preflight-other")
        .stderr_contains("  - cluster ID \"cluster2\" of mesh 2 is already used by Istio preflight-other");
    assert_eq!(created_namespaces(&cp).await, Vec::<String>::new());
}
