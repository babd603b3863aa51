//! external.rhai on two clusters: first a deliberately broken order that must
//! fail fast, then the procedure, its rerun, verify.rhai and teardown — one
//! test, because they follow each other on the same clusters.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use kube::api::Api;
use serde_json::json;

use super::*;
use crate::support::{self, Test};

const CLUSTERS: &[&str] = &["control-plane", "data-plane"];

#[tokio::test]
async fn external_procedure_then_rerun_verify_and_teardown() {
    let sandbox = support::sandbox("external", CLUSTERS);
    broken_order_fails_with_the_timeout_explanation(sandbox);

    let api_server = sandbox.server("data-plane");
    let started = Instant::now();
    run(sandbox, "external.rhai", &inputs(&api_server), &[]).status(0);
    eprintln!("external.rhai: {:?}", started.elapsed());
    assert_external_objects(sandbox, &api_server).await;
    assert_rendered_objects(sandbox).await;

    let rerun = run(sandbox, "external.rhai", &inputs(&api_server), &["--output", "json"]);
    rerun.status(0);
    let changed = changed_steps(&rerun);
    assert!(changed.is_empty(), "a rerun changed: {changed:#?}");
    assert!(rerun.stdout.contains(r#""outcome":"unchanged""#), "{}", rerun.stdout);

    verify_applies_as_the_seed_and_explains_the_pod_wait(sandbox).await;
    super::interrupted_teardown::teardown_killed_midway_then_external_converges(sandbox, &api_server);

    assert_teardown_leaves_nothing(
        sandbox,
        CLUSTERS,
        &[
            ("CTX_CONTROL_PLANE_CLUSTER", "control-plane"),
            ("CTX_DATA_PLANE_CLUSTER", "data-plane"),
        ],
    )
    .await;
}

/// Waiting for the data-plane Istio before the control plane holds its remote
/// secret can never succeed: the run must end at the wait's timeout, saying why.
fn broken_order_fails_with_the_timeout_explanation(sandbox: &SandboxHandle) {
    let started = Instant::now();
    let out = Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .playbook(
            "broken.rhai",
            r#"
            import "mesh/external" as external;
            let cp = cluster("control-plane");
            let dp = cluster("data-plane");
            let mesh = external::mesh("1.24.3", 1, "cluster1");
            mesh.address = external::control_plane_gateway(cp, mesh);
            external::config_data_plane(dp, mesh);
            external::cni(dp, mesh);
            // Wrong order: this Istio is Ready only once the remote secret below exists.
            dp.wait("istio/external-istiod", #{ "for": "condition=Ready", timeout: "5s" });
            external::external_istiod(cp, dp, mesh, dp.server());
            "#,
        )
        .args(["run", "broken.rhai"])
        .run();
    out.status(1)
        .stderr_contains("error[timeout]: timed out after 5s waiting for Istio external-istiod on data-plane")
        .stderr_contains("RemoteIstiodNotReady")
        .stderr_contains("broken.rhai:10:");
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}

/// The real charts' objects on both clusters, as the simulated Sail Operator installed them.
async fn assert_rendered_objects(sandbox: &SandboxHandle) {
    let (cp, dp) = (sandbox.client("control-plane").await, sandbox.client("data-plane").await);
    let address = ingress_address(&cp, "istio-system").await;
    let mesh = rendered::Mesh {
        namespace: "external-istiod",
        revision: "external-istiod",
        cluster_id: "cluster1",
        network: "network1",
        address: &address,
        account: "istiod-external-istiod",
    };
    rendered::assert_data_plane(&dp, &mesh).await;
    rendered::assert_control_plane(&cp, &mesh).await;
    rendered::assert_gateway_available(&cp, "istio-system").await;
    rendered::assert_istiod_leads(sandbox.dir(), "control-plane", &dp, &mesh).await;
}

async fn assert_external_objects(sandbox: &SandboxHandle, api_server: &str) {
    let (cp, dp) = (sandbox.client("control-plane").await, sandbox.client("data-plane").await);
    let address = ingress_address(&cp, "istio-system").await;
    let xds = format!("{address}:15012");

    // Step 5: the ingress Istio (`values`, not the seed's `value`).
    let default = sail_object(&cp, "Istio", "istios", "default").await;
    assert_eq!(default["spec"]["namespace"], "istio-system");
    assert_eq!(default["spec"]["version"], "v1.24.3");
    assert_eq!(default["spec"]["values"], json!({"global": {"network": "network1"}}));
    assert!(default["spec"].get("value").is_none());

    // Step 6: the remote Istio of the config cluster.
    let remote = sail_object(&dp, "Istio", "istios", "external-istiod").await;
    assert_eq!(remote["spec"]["namespace"], "external-istiod");
    assert_eq!(remote["spec"]["version"], "v1.24.3");
    assert_eq!(remote["spec"]["profile"], "remote");
    assert_eq!(
        remote["spec"]["values"],
        json!({"defaultRevision": "external-istiod",
               "global": {"remotePilotAddress": address, "configCluster": true},
               "pilot": {"configMap": true, "istiodRemote": {"injectionPath": "/inject/cluster/cluster1/net/network1"}}})
    );

    // Step 7.
    let cni = sail_object(&dp, "IstioCNI", "istiocnis", "default").await;
    assert_eq!(cni["spec"]["namespace"], "istio-cni");
    assert_eq!(cni["spec"]["version"], "v1.24.3");

    // Step 8.2, 8.4: the service account, the remote secret.
    Api::<ServiceAccount>::namespaced(cp.clone(), "external-istiod")
        .get("istiod-service-account")
        .await
        .expect("step 8.2's ServiceAccount");
    assert_remote_secret(
        sandbox,
        &cp,
        ("external-istiod", "istio-kubeconfig", "config"),
        "cluster1",
        api_server,
        "system:serviceaccount:external-istiod:istiod-external-istiod",
    )
    .await;

    // Step 8.5: the external istiod, pinned to the version and fed the address.
    let external = sail_object(&cp, "Istio", "istios", "external-istiod").await;
    assert_eq!(external["spec"]["namespace"], "external-istiod");
    assert_eq!(external["spec"]["version"], "v1.24.3");
    assert_eq!(external["spec"]["profile"], "empty");
    assert_eq!(
        external["spec"]["values"],
        json!({
            "meshConfig": {"rootNamespace": "external-istiod", "defaultConfig": {"discoveryAddress": xds}},
            "pilot": {
                "enabled": true,
                "volumes": [
                    {"name": "config-volume", "configMap": {"name": "istio-external-istiod"}},
                    {"name": "inject-volume", "configMap": {"name": "istio-sidecar-injector-external-istiod"}}],
                "volumeMounts": [
                    {"name": "config-volume", "mountPath": "/etc/istio/config"},
                    {"name": "inject-volume", "mountPath": "/var/lib/istio/inject"}],
                "env": {
                    "INJECTION_WEBHOOK_CONFIG_NAME": "istio-sidecar-injector-external-istiod-external-istiod",
                    "VALIDATION_WEBHOOK_CONFIG_NAME": "istio-validator-external-istiod-external-istiod",
                    "EXTERNAL_ISTIOD": "true",
                    "LOCAL_CLUSTER_SECRET_WATCHER": "true",
                    "CLUSTER_ID": "cluster1",
                    "SHARED_MESH_CONFIG": "istio"}},
            "global": {"caAddress": xds, "configValidation": false, "meshID": "mesh1",
                       "multiCluster": {"clusterName": "cluster1"}, "network": "network1"}})
    );

    // Step 8.6, as in the seed.
    let gateway = networking_object(&cp, "Gateway", "gateways", "external-istiod", "external-istiod-gw").await;
    let passthrough = |number: u16, name: &str| json!({"port": {"number": number, "protocol": "tls", "name": name}, "tls": {"mode": "PASSTHROUGH"}, "hosts": ["*"]});
    assert_eq!(
        gateway["spec"],
        json!({"selector": {"istio": "ingressgateway"},
               "servers": [passthrough(15012, "tls-XDS"), passthrough(15017, "tls-WEBHOOK")]})
    );
    let vs = networking_object(&cp, "VirtualService", "virtualservices", "external-istiod", "external-istiod-vs").await;
    let route = |port: u16, to: u16| {
        json!({"match": [{"port": port, "sniHosts": ["*"]}],
               "route": [{"destination": {"host": "istiod-external-istiod.external-istiod.svc.cluster.local",
                                          "port": {"number": to}}}]})
    };
    assert_eq!(
        vs["spec"],
        json!({"hosts": ["*"], "gateways": ["external-istiod-gw"], "tls": [route(15012, 15012), route(15017, 443)]})
    );

    // Steps 8.7-8.9: all three waits satisfied.
    assert_eq!(ready(&external), "True");
    assert_eq!(ready(&sail_object(&dp, "Istio", "istios", "external-istiod").await), "True");
    assert_eq!(ready(&sail_object(&dp, "IstioCNI", "istiocnis", "default").await), "True");
}

/// verify.rhai as a user runs it on the sandbox: the pods get their
/// `istio-proxy` from the real injection webhook (the external istiod, reached
/// through the control plane's gateway) and are 2/2 Ready on kwok's nodes; the
/// traffic steps, which need running containers, are skipped with a reason.
async fn verify_applies_as_the_seed_and_explains_the_pod_wait(sandbox: &SandboxHandle) {
    let started = Instant::now();
    let out = run(
        sandbox,
        "verify.rhai",
        &[("CTX_DATA_PLANE_CLUSTER", "data-plane"), ("POD_TIMEOUT", "60s")],
        &[],
    );
    out.status(0)
        .stdout_contains("skipped 2.1 (curl from sleep to helloworld): cluster data-plane runs its pods on kwok's fake nodes")
        .stdout_contains("skipped 3.4-4.1");
    assert!(started.elapsed() < Duration::from_secs(120), "took {:?}", started.elapsed());
    let dp = sandbox.client("data-plane").await;
    for env in rendered::proxy_envs(&dp, "app=helloworld").await {
        assert_eq!(env.get("ISTIO_META_CLUSTER_ID").map(String::as_str), Some("cluster1"), "{env:?}");
        assert_eq!(env.get("ISTIO_META_NETWORK").map(String::as_str), Some("network1"), "{env:?}");
    }
    let dp = sandbox.client("data-plane").await;
    let ns = Api::<Namespace>::all(dp.clone()).get("sample").await.expect("namespace sample");
    let labels = ns.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("istio.io/rev").map(String::as_str), Some("external-istiod"));

    let names = |items: Vec<String>| {
        let mut items = items;
        items.sort();
        items
    };
    let services = Api::<Service>::namespaced(dp.clone(), "sample")
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(
        names(services.items.into_iter().filter_map(|s| s.metadata.name).collect()),
        ["helloworld", "istio-ingressgateway", "sleep"],
        "helloworld's Service from `-l service=helloworld`, sleep's from sleep.yaml, the sample gateway's"
    );
    let deployments = Api::<Deployment>::namespaced(dp.clone(), "sample")
        .list(&Default::default())
        .await
        .unwrap();
    assert_eq!(
        names(deployments.items.into_iter().filter_map(|d| d.metadata.name).collect()),
        ["helloworld-v1", "istio-ingressgateway", "sleep"],
        "only v1 from `-l version=v1`, no helloworld-v2; the sample gateway"
    );
    Api::<ServiceAccount>::namespaced(dp.clone(), "sample")
        .get("sleep")
        .await
        .expect("sleep's ServiceAccount");
}
