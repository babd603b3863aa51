// In tests/sandbox/ (not tests/sandbox.rs): Cargo would build every tests/*.rs as a test binary of its own.
//! `mesh-run sandbox` against its real API servers: clusters answer with
//! verified TLS, the CRDs are there, the controller manager and the
//! simulators do their part, and stopping leaves nothing behind.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::support::{self, Test, wait_for};

mod etcd;
mod ingress_gateway;
mod istiod;
mod network;
mod nodes;
mod readiness_probe;
mod sail_charts;
mod stopping;

const CLUSTERS: &[&str] = &["control-plane", "data-plane"];

fn istio_api(client: kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("sailoperator.io", "v1", "Istio");
    Api::all_with(client, &ApiResource::from_gvk_with_plural(&gvk, "istios"))
}

async fn create<K>(api: &Api<K>, object: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("test object");
    api.create(&PostParams::default(), &object).await.expect("create")
}

async fn namespace(client: &kube::Client, name: &str) {
    create(&Api::<Namespace>::all(client.clone()), json!({"metadata": {"name": name}})).await;
}

fn state_is(state: &'static str) -> impl Fn(Option<&DynamicObject>) -> bool {
    move |o| {
        o.is_some_and(|o| {
            o.data.pointer("/status/state") == Some(&json!(state))
                && o.data.pointer("/status/observedGeneration") == o.metadata.generation.map(|g| json!(g)).as_ref()
        })
    }
}

fn condition<'a>(object: &'a DynamicObject, kind: &str) -> &'a Value {
    let conditions = object.data.pointer("/status/conditions").and_then(Value::as_array);
    conditions
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn each_cluster_answers_version_with_verified_tls() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let kubeconfig = std::fs::read_to_string(sandbox.kubeconfig()).unwrap();
    assert!(
        kubeconfig.contains("certificate-authority-data"),
        "{}",
        sandbox.kubeconfig().display()
    );
    assert!(!kubeconfig.contains("insecure-skip-tls-verify"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sandbox.kubeconfig()).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the kubeconfig holds a client key: owner-only");
    for context in CLUSTERS {
        let version = sandbox.client(context).await.apiserver_version().await.unwrap();
        // gitVersion, not major: a build without version stamps reports major "".
        assert!(version.git_version.starts_with('v'), "{context}: {version:?}");
    }
}

#[test]
fn kubectl_works_with_the_generated_kubeconfig() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let mut kubectls = vec![sandbox.kubectl()];
    // The other pinned version's kubectl, a client of another release: required, since the
    // test command builds both (scripts/kube-assets.sh current, oldest).
    use mesh_run::sandbox::assets::{Assets, CURRENT_VERSION, OLDEST_VERSION, resolve_version};
    let other = match resolve_version(&support::kube_version()).as_str() {
        CURRENT_VERSION => OLDEST_VERSION,
        _ => CURRENT_VERSION,
    };
    let other_kubectl = Assets::locate(other)
        .ok()
        .and_then(|a| a.kubectl)
        .unwrap_or_else(|| panic!("kubectl {other}: run scripts/kube-assets.sh {other}"));
    kubectls.push(other_kubectl);
    // Any other kubectl on the machine too.
    kubectls.extend(Some(std::path::PathBuf::from("/usr/bin/kubectl")).filter(|p| p.exists()));
    for kubectl in kubectls {
        for context in CLUSTERS {
            // No --insecure-skip-tls-verify: the kubeconfig's CA verifies the server.
            let output = std::process::Command::new(&kubectl)
                .args(["--context", context, "get", "namespace", "kube-system", "-o", "name"])
                .env("KUBECONFIG", sandbox.kubeconfig())
                .output()
                .unwrap();
            let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            assert!(output.status.success(), "{} --context {context}: {stderr}", kubectl.display());
            assert_eq!(stdout.trim(), "namespace/kube-system");
        }
    }
}

#[tokio::test]
async fn bundled_crds_are_established_everywhere() {
    let sandbox = support::sandbox("default", CLUSTERS);
    for context in CLUSTERS {
        let crds: Api<CustomResourceDefinition> = Api::all(sandbox.client(context).await);
        for name in [
            "istios.sailoperator.io",
            "istiocnis.sailoperator.io",
            "istiorevisions.sailoperator.io",
            "istiorevisiontags.sailoperator.io",
            "ztunnels.sailoperator.io",
            "gateways.networking.istio.io",
            "virtualservices.networking.istio.io",
        ] {
            let crd = crds.get(name).await.unwrap_or_else(|e| panic!("{context}: {name}: {e}"));
            let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
            assert!(
                conditions.iter().any(|c| c.type_ == "Established" && c.status == "True"),
                "{context}: {name}"
            );
        }
    }
}

#[tokio::test]
async fn an_istio_becomes_ready_through_the_simulated_operator() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let client = sandbox.client("control-plane").await;
    namespace(&client, "t-istio-ready").await;
    let istios = istio_api(client);
    let spec = json!({"namespace": "t-istio-ready", "version": "v1.30.3"});
    create(
        &istios,
        json!({"apiVersion": "sailoperator.io/v1", "kind": "Istio",
        "metadata": {"name": "t-istio-ready"}, "spec": spec}),
    )
    .await;
    let istio = wait_for(istios.clone(), "t-istio-ready", state_is("Healthy"), Duration::from_secs(30)).await;
    assert_eq!(condition(&istio, "Ready")["status"], "True");
    assert_eq!(istio.data["status"]["activeRevisionName"], "t-istio-ready");
    assert_eq!(istio.data["status"]["revisions"], json!({"total": 1, "ready": 1, "inUse": 0}));

    // A new generation is reconciled again.
    let patch = json!({"spec": {"values": {"pilot": {"env": {"X": "1"}}}}});
    let params = kube::api::PatchParams::default();
    istios
        .patch("t-istio-ready", &params, &kube::api::Patch::Merge(&patch))
        .await
        .unwrap();
    let istio = wait_for(istios, "t-istio-ready", state_is("Healthy"), Duration::from_secs(30)).await;
    assert_eq!(istio.data["status"]["observedGeneration"], 2);
}

#[tokio::test]
async fn an_istio_whose_namespace_is_missing_gets_reconcile_error_until_it_appears() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let client = sandbox.client("data-plane").await;
    let istios = istio_api(client.clone());
    create(
        &istios,
        json!({"apiVersion": "sailoperator.io/v1", "kind": "Istio",
        "metadata": {"name": "t-missing-ns"}, "spec": {"namespace": "t-missing-ns", "version": "v1.30.3"}}),
    )
    .await;
    let istio = wait_for(istios.clone(), "t-missing-ns", state_is("ReconcileError"), Duration::from_secs(30)).await;
    assert_eq!(
        condition(&istio, "Reconciled")["message"],
        "error reconciling resource: validation error: namespace \"t-missing-ns\" doesn't exist"
    );
    assert_eq!(condition(&istio, "Ready")["status"], "Unknown");
    namespace(&client, "t-missing-ns").await;
    wait_for(istios, "t-missing-ns", state_is("Healthy"), Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_load_balancer_service_gets_an_address() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let client = sandbox.client("control-plane").await;
    namespace(&client, "t-load-balancer").await;
    let services: Api<Service> = Api::namespaced(client, "t-load-balancer");
    create(
        &services,
        json!({"metadata": {"name": "gateway"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 15012, "protocol": "TCP"}]}}),
    )
    .await;
    let has_ip = |s: Option<&Service>| {
        s.and_then(|s| s.status.as_ref()?.load_balancer.as_ref()?.ingress.as_ref()?.first()?.ip.clone())
            .is_some()
    };
    wait_for(services, "gateway", has_ip, Duration::from_secs(30)).await;
}

#[tokio::test]
async fn a_service_account_token_secret_gets_token_and_ca() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let client = sandbox.client("data-plane").await;
    namespace(&client, "t-token").await;
    // The serviceaccount controller creates `default`; the token controller deletes a
    // token Secret whose account does not exist (yet), so wait for the account first.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "t-token");
    let exists = |sa: Option<&ServiceAccount>| sa.is_some();
    wait_for(accounts, "default", exists, Duration::from_secs(30)).await;
    let secrets: Api<Secret> = Api::namespaced(client, "t-token");
    create(
        &secrets,
        json!({"metadata": {"name": "token",
        "annotations": {"kubernetes.io/service-account.name": "default"}},
        "type": "kubernetes.io/service-account-token"}),
    )
    .await;
    let filled = |s: Option<&Secret>| {
        s.and_then(|s| s.data.as_ref())
            .is_some_and(|d| d.contains_key("token") && d.contains_key("ca.crt"))
    };
    wait_for(secrets, "token", filled, Duration::from_secs(30)).await;
}

#[test]
fn missing_assets_name_the_command_that_installs_them() {
    Test::new()
        .args(["sandbox", "--kube-version", "9.9.9"])
        .env("KUBEBUILDER_ASSETS", "")
        .run()
        .status(1)
        .stderr_contains("scripts/kube-assets.sh 9.9.9");
}
