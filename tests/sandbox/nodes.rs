//! Sandbox clusters have Nodes: kube-scheduler binds Pods to two kwok Nodes
//! per cluster, kwok makes them Running and Ready and removes them once
//! deleted, and Pods pass the cluster's mutating webhooks on the way in.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Node, Pod, Service, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use mesh_run::sandbox::nodes::is_ready;
use serde_json::{Value, json};

use super::{CLUSTERS, create, namespace};
use crate::support::{self, wait_for};

const TIMEOUT: Duration = Duration::from_secs(60);

fn pod_spec() -> Value {
    json!({"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]})
}

/// The kwok Nodes of a cluster, by name.
async fn kwok_nodes(client: &kube::Client) -> Vec<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.list(&ListParams::default().labels("type=kwok")).await.unwrap().items
}

fn pod_is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Pods of `namespace` with label `app=<app>`.
async fn pods(client: &kube::Client, namespace: &str, app: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap().items
}

/// Running, Ready, on a kwok Node, with an IP.
fn assert_running_on_a_kwok_node(pod: &Pod) {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let status = pod.status.as_ref().expect("pod status");
    assert_eq!(status.phase.as_deref(), Some("Running"), "{name}: {status:?}");
    assert!(pod_is_ready(pod), "{name} not Ready: {status:?}");
    assert!(status.pod_ip.is_some(), "{name} has no IP: {status:?}");
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("");
    assert!(node.starts_with("kwok-node-"), "{name} is on {node:?}");
}

/// Pods need the namespace's `default` ServiceAccount, which the controller manager creates.
async fn wait_for_default_account(client: &kube::Client, namespace: &str) {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    wait_for(accounts, "default", |sa: Option<&ServiceAccount>| sa.is_some(), TIMEOUT).await;
}

#[tokio::test]
async fn each_cluster_has_two_ready_kwok_nodes_with_their_own_addresses() {
    let sandbox = support::sandbox("default", CLUSTERS);
    for context in CLUSTERS {
        let nodes = kwok_nodes(&sandbox.client(context).await).await;
        assert_eq!(nodes.len(), 2, "{context}: {nodes:?}");
        let mut addresses = BTreeSet::new();
        for node in &nodes {
            let status = node.status.as_ref().expect("node status");
            assert!(is_ready(node), "{context}: {node:?}");
            let annotations = node.metadata.annotations.clone().unwrap_or_default();
            assert_eq!(annotations.get("kwok.x-k8s.io/node").map(String::as_str), Some("fake"));
            let capacity = status.capacity.clone().unwrap_or_default();
            assert_eq!(capacity.get("pods").map(|q| q.0.as_str()), Some("110"), "{context}: {capacity:?}");
            let internal = status.addresses.iter().flatten().find(|a| a.type_ == "InternalIP");
            addresses.insert(internal.expect("an InternalIP").address.clone());
        }
        assert_eq!(addresses.len(), 2, "{context}: each Node has an address of its own: {addresses:?}");
    }
}

#[tokio::test]
async fn a_deployment_becomes_available_with_running_ready_pods_on_the_kwok_nodes() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let client = sandbox.client("control-plane").await;
    namespace(&client, "t-nodes-deployment").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "t-nodes-deployment");
    let labels = json!({"app": "web"});
    create(
        &deployments,
        json!({"metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": pod_spec()}}}),
    )
    .await;
    let available = |d: Option<&Deployment>| {
        let status = d.and_then(|d| d.status.as_ref());
        status.is_some_and(|s| s.available_replicas == Some(2) && s.ready_replicas == Some(2))
    };
    wait_for(deployments, "web", available, TIMEOUT).await;
    let pods = pods(&client, "t-nodes-deployment", "web").await;
    assert_eq!(pods.len(), 2, "{pods:?}");
    pods.iter().for_each(assert_running_on_a_kwok_node);
}

#[tokio::test]
async fn a_daemonset_gets_one_pod_per_node() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let client = sandbox.client("data-plane").await;
    namespace(&client, "t-nodes-daemonset").await;
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), "t-nodes-daemonset");
    let labels = json!({"app": "agent"});
    create(
        &daemonsets,
        json!({"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": pod_spec()}}}),
    )
    .await;
    let ready = |d: Option<&DaemonSet>| {
        let status = d.and_then(|d| d.status.as_ref());
        status.is_some_and(|s| s.desired_number_scheduled == 2 && s.number_ready == 2)
    };
    wait_for(daemonsets, "agent", ready, TIMEOUT).await;
    let pods = pods(&client, "t-nodes-daemonset", "agent").await;
    pods.iter().for_each(assert_running_on_a_kwok_node);
    let nodes: BTreeSet<_> = pods.iter().filter_map(|p| p.spec.as_ref()?.node_name.clone()).collect();
    assert_eq!(nodes, BTreeSet::from(["kwok-node-1".to_string(), "kwok-node-2".to_string()]));
}

#[tokio::test]
async fn a_deleted_pod_goes_away() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let client = sandbox.client("data-plane").await;
    namespace(&client, "t-nodes-delete").await;
    wait_for_default_account(&client, "t-nodes-delete").await;
    let pods: Api<Pod> = Api::namespaced(client, "t-nodes-delete");
    create(&pods, json!({"metadata": {"name": "doomed"}, "spec": pod_spec()})).await;
    let running = |p: Option<&Pod>| p.and_then(|p| p.status.as_ref()?.phase.clone()).as_deref() == Some("Running");
    let pod = wait_for(pods.clone(), "doomed", running, TIMEOUT).await;
    assert_running_on_a_kwok_node(&pod);
    // The default grace period: kwok, like a kubelet, confirms the Pod stopped and it is removed.
    pods.delete("doomed", &DeleteParams::default()).await.unwrap();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let gone = await_condition(pods.clone(), "doomed", conditions::is_deleted(&uid));
    match tokio::time::timeout(TIMEOUT, gone).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("waiting for doomed to go: {e}"),
        Err(_) => panic!("doomed still there: {:#?}", pods.get_opt("doomed").await),
    }
}

#[tokio::test]
async fn pods_pass_the_mutating_webhooks_of_their_namespace() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let client = sandbox.client("control-plane").await;
    let (guarded, open) = ("t-nodes-webhook-on", "t-nodes-webhook-off");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    create(
        &namespaces,
        json!({"metadata": {"name": guarded, "labels": {"t-nodes-webhook": "enabled"}}}),
    )
    .await;
    namespace(&client, open).await;
    // Headless and without endpoints: the API server finds no address to call, so it sends nothing.
    let services: Api<Service> = Api::namespaced(client.clone(), guarded);
    create(
        &services,
        json!({"metadata": {"name": "no-endpoints"},
        "spec": {"clusterIP": "None", "ports": [{"port": 443, "protocol": "TCP"}]}}),
    )
    .await;
    let webhooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    create(
        &webhooks,
        json!({"metadata": {"name": "t-nodes-webhook"}, "webhooks": [{
            "name": "t-nodes.webhook.mesh-run.test",
            "namespaceSelector": {"matchLabels": {"t-nodes-webhook": "enabled"}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            "clientConfig": {"service": {"namespace": guarded, "name": "no-endpoints", "path": "/inject", "port": 443}},
            "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"]}]}),
    )
    .await;
    wait_for_default_account(&client, guarded).await;
    wait_for_default_account(&client, open).await;

    // The API server picks up a new webhook configuration within moments: retry until it does.
    let guarded_pods: Api<Pod> = Api::namespaced(client.clone(), guarded);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let rejection = loop {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "probe"}, "spec": pod_spec()})).unwrap();
        match guarded_pods.create(&PostParams::default(), &pod).await {
            Err(kube::Error::Api(status)) => break status,
            Err(e) => panic!("creating a Pod in {guarded}: {e}"),
            Ok(_) if tokio::time::Instant::now() < deadline => {
                let force = DeleteParams::default().grace_period(0);
                guarded_pods.delete("probe", &force).await.unwrap();
                let gone = |p: Option<&Pod>| p.is_none();
                let _ = tokio::time::timeout(TIMEOUT, await_condition(guarded_pods.clone(), "probe", gone)).await;
            }
            Ok(pod) => panic!("the webhook never rejected a Pod in {guarded}: {pod:?}"),
        }
    };
    assert!(
        rejection
            .message
            .contains(r#"failed calling webhook "t-nodes.webhook.mesh-run.test""#),
        "{rejection:?}"
    );

    let open_pods: Api<Pod> = Api::namespaced(client, open);
    let created = create(
        &open_pods,
        json!({"metadata": {"name": "plain", "labels": {"app": "plain"}}, "spec": pod_spec()}),
    )
    .await;
    assert_eq!(created.metadata.labels, Some([("app".to_string(), "plain".to_string())].into()));
    assert_eq!(created.metadata.annotations, None, "{created:?}");
    let containers = &created.spec.as_ref().expect("pod spec").containers;
    assert_eq!(containers.len(), 1, "{containers:?}");
    webhooks.delete("t-nodes-webhook", &DeleteParams::default()).await.unwrap();
}
