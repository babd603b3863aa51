//! The simulated Sail Operator installs the real Istio charts: an
//! IstioRevision per Istio, the rendered objects owned by it, a new
//! generation re-rendered (and what it no longer renders removed), Helm's
//! errors as ReconcileError, everything gone with the Istio.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use super::*;

fn revisions(client: kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("sailoperator.io", "v1", "IstioRevision");
    Api::all_with(client, &ApiResource::from_gvk_with_plural(&gvk, "istiorevisions"))
}

fn env_of(deployment: &Deployment, name: &str) -> Option<String> {
    let spec = deployment.spec.as_ref()?.template.spec.as_ref()?;
    let env = spec.containers.first()?.env.as_ref()?;
    env.iter().find(|e| e.name == name).and_then(|e| e.value.clone())
}

/// Until `name` no longer exists (support's `wait_for` treats deletion as a failure).
async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while api.get_opt(name).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "{name} still exists after 60s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_istio_gets_a_revision_and_its_rendered_charts_follow_each_generation() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let client = sandbox.client("control-plane").await;
    namespace(&client, "t-charts").await;
    let istios = istio_api(client.clone());
    create(
        &istios,
        json!({"apiVersion": "sailoperator.io/v1", "kind": "Istio", "metadata": {"name": "t-charts"},
               "spec": {"namespace": "t-charts", "version": "v1.24.3",
                        "values": {"pilot": {"env": {"MESH_RUN_TEST": "one"}}}}}),
    )
    .await;
    wait_for(istios.clone(), "t-charts", state_is("Healthy"), Duration::from_secs(60)).await;

    // The IstioRevision, as Sail creates it: owned by the Istio, values computed.
    let revision = revisions(client.clone()).get("t-charts").await.expect("IstioRevision t-charts");
    assert_eq!(revision.metadata.owner_references.as_ref().unwrap()[0].kind, "Istio");
    assert_eq!(revision.data["spec"]["values"]["revision"], "t-charts");
    assert_eq!(revision.data["spec"]["values"]["global"]["istioNamespace"], "t-charts");
    assert_eq!(revision.data["spec"]["version"], "v1.24.3");

    // istiod's Deployment from the chart, with the env of spec.values.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "t-charts");
    let deployment = deployments.get("istiod-t-charts").await.expect("istiod Deployment");
    assert_eq!(env_of(&deployment, "MESH_RUN_TEST").as_deref(), Some("one"));
    assert_eq!(env_of(&deployment, "REVISION").as_deref(), Some("t-charts"));
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "t-charts");
    hpas.get("istiod-t-charts")
        .await
        .expect("the chart's HPA (autoscaleEnabled by default)");

    // A changed spec.values field changes the rendered object; what is no longer rendered goes.
    let patch = json!({"spec": {"values": {"pilot": {"env": {"MESH_RUN_TEST": "two"}, "autoscaleEnabled": false}}}});
    istios
        .patch("t-charts", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let changed = |d: Option<&Deployment>| d.is_some_and(|d| env_of(d, "MESH_RUN_TEST").as_deref() == Some("two"));
    wait_for(deployments.clone(), "istiod-t-charts", changed, Duration::from_secs(60)).await;
    wait_gone(&hpas, "istiod-t-charts").await;

    // Deleting the Istio removes the revision and, by garbage collection, what it installed.
    istios.delete("t-charts", &DeleteParams::default()).await.unwrap();
    wait_gone(&revisions(client.clone()), "t-charts").await;
    wait_gone(&deployments, "istiod-t-charts").await;
    let roles = Api::<ClusterRole>::all(client.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/instance=t-charts-istiod"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut left = roles.items.len();
    while left > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        left = Api::<ClusterRole>::all(client.clone())
            .list(&ListParams::default().labels("app.kubernetes.io/instance=t-charts-istiod"))
            .await
            .unwrap()
            .items
            .len();
    }
    assert_eq!(left, 0, "ClusterRoles of release t-charts-istiod left after the Istio was deleted");
}

#[tokio::test]
async fn values_helm_refuses_are_a_reconcile_error_that_the_wait_explains() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let client = sandbox.client("data-plane").await;
    namespace(&client, "t-bad-values").await;
    let istios = istio_api(client.clone());
    create(
        &istios,
        json!({"apiVersion": "sailoperator.io/v1", "kind": "Istio", "metadata": {"name": "t-bad-values"},
               "spec": {"namespace": "t-bad-values", "version": "v1.24.3", "values": {"profile": "no-such-profile"}}}),
    )
    .await;
    let istio = wait_for(istios, "t-bad-values", state_is("ReconcileError"), Duration::from_secs(60)).await;
    let message = condition(&istio, "Reconciled")["message"].as_str().unwrap_or("").to_string();
    assert!(message.starts_with("error reconciling resource: "), "{message}");
    assert!(message.contains("unknown profile"), "Helm's own words: {message}");

    let out = Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .playbook(
            "wait.rhai",
            r#"cluster("data-plane").wait("istio/t-bad-values", #{ "for": "condition=Ready", timeout: "2s" });"#,
        )
        .args(["run", "wait.rhai"])
        .run();
    out.status(1).stderr_contains("ReconcileError").stderr_contains("unknown profile");
}
