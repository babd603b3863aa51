// In tests/playbooks/ (not tests/playbooks.rs): Cargo would build every tests/*.rs as a test binary of its own.
//! The shipped playbooks against real API servers: each test installs a mesh
//! on a sandbox of its own (Istio resources are cluster-scoped), then reads
//! back what landed on the servers — names, namespaces, values, secrets whose
//! tokens really authenticate — and checks that teardown leaves nothing.

use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

use crate::support::{Output, SandboxHandle, Test};

mod broken;
mod data_planes;
mod external;
mod in_place_upgrade;
mod interrupted_teardown;
mod lock;
mod multi_dataplane;
mod multi_mesh;
mod plan;
mod preflight;
mod prune;
mod rendered;
mod rotate;
mod upgrade;

/// external.rhai's inputs on a control-plane/data-plane sandbox.
fn inputs(api_server: &str) -> Vec<(&str, &str)> {
    vec![
        ("CTX_CONTROL_PLANE_CLUSTER", "control-plane"),
        ("CTX_DATA_PLANE_CLUSTER", "data-plane"),
        ("DATA_PLANE_API_SERVER", api_server),
    ]
}

/// Runs `playbooks/<name>` of this repository with `--set KEY=VALUE` inputs.
fn run(sandbox: &SandboxHandle, name: &str, sets: &[(&str, &str)], extra: &[&str]) -> Output {
    let playbook = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks").join(name);
    let mut args = vec!["run".to_string(), playbook.display().to_string()];
    for (key, value) in sets {
        args.push("--set".into());
        args.push(format!("{key}={value}"));
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    Test::new().kubeconfig(sandbox.kubeconfig()).args(args).run()
}

/// Every `step` event of a `--output json` run that changed something or failed.
fn changed_steps(out: &Output) -> Vec<Value> {
    out.stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["event"] == "step")
        .filter(|step| !matches!(step["outcome"].as_str(), Some("unchanged" | "ok")))
        .collect()
}

fn sail(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("sailoperator.io", "v1", kind), plural)
}

fn networking(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("networking.istio.io", "v1", kind), plural)
}

/// A cluster-scoped Sail resource (`Istio`/`IstioCNI`), as JSON.
async fn sail_object(client: &kube::Client, kind: &str, plural: &str, name: &str) -> Value {
    let api = Api::<DynamicObject>::all_with(client.clone(), &sail(kind, plural));
    let object = api.get(name).await.unwrap_or_else(|e| panic!("{kind} {name}: {e}"));
    serde_json::to_value(object).unwrap()
}

/// An Istio networking object (`Gateway`/`VirtualService`) in `namespace`.
async fn networking_object(client: &kube::Client, kind: &str, plural: &str, namespace: &str, name: &str) -> Value {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &networking(kind, plural));
    let object = api.get(name).await.unwrap_or_else(|e| panic!("{kind} {namespace}/{name}: {e}"));
    serde_json::to_value(object).unwrap()
}

/// The Ready condition's status of a Sail resource, as the seed's waits check it.
fn ready(object: &Value) -> &str {
    let conditions = object["status"]["conditions"].as_array();
    conditions
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("none")
}

/// The LoadBalancer address of `istio-ingressgateway` in `namespace`.
async fn ingress_address(client: &kube::Client, namespace: &str) -> String {
    let api = Api::<k8s_openapi::api::core::v1::Service>::namespaced(client.clone(), namespace);
    let svc = api.get("istio-ingressgateway").await.expect("ingress gateway Service");
    let ingress = svc
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .unwrap_or_default();
    ingress.first().and_then(|i| i.ip.clone()).expect("a LoadBalancer address")
}

/// A remote secret as istioctl writes it: label, annotation, one key holding
/// a kubeconfig for `server`, whose token authenticates there as `user`.
async fn assert_remote_secret(
    sandbox: &SandboxHandle,
    client: &kube::Client,
    (namespace, name, key): (&str, &str, &str),
    cluster_name: &str,
    server: &str,
    user: &str,
) {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("Secret {namespace}/{name}: {e}"));
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("istio/multiCluster").map(String::as_str), Some("true"), "{name}");
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("networking.istio.io/cluster").map(String::as_str),
        Some(cluster_name),
        "{name}"
    );
    let data = secret.data.unwrap_or_default();
    assert_eq!(data.keys().collect::<Vec<_>>(), vec![key], "{name}: one key, the kubeconfig");
    let text = String::from_utf8(data[key].0.clone()).unwrap();
    let kubeconfig: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(kubeconfig["clusters"][0]["cluster"]["server"], server, "{name}");

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &text).unwrap();
    let out = Command::new(sandbox.kubectl())
        .arg("--kubeconfig")
        .arg(file.path())
        .env_remove("KUBECONFIG")
        .args(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"])
        .output()
        .expect("run kubectl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl auth whoami with {name}'s kubeconfig: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), user, "{name}");
}

/// What the playbooks create and teardown must remove, still present on `client`.
async fn leftovers(client: &kube::Client) -> Vec<String> {
    let mut found = Vec::new();
    for (kind, plural) in [("Istio", "istios"), ("IstioCNI", "istiocnis")] {
        let api = Api::<DynamicObject>::all_with(client.clone(), &sail(kind, plural));
        for object in api.list(&Default::default()).await.unwrap() {
            found.push(format!("{kind} {}", object.metadata.name.unwrap_or_default()));
        }
    }
    // What the operator rendered, cluster-scoped (namespaced objects go with their namespaces).
    let managed = kube::api::ListParams::default().labels("managed-by=sail-operator");
    use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let names = |items: Vec<Option<String>>, kind: &str| -> Vec<String> {
        items.into_iter().map(|n| format!("{kind} {}", n.unwrap_or_default())).collect()
    };
    let list = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .list(&managed)
        .await
        .unwrap();
    found.extend(names(
        list.items.into_iter().map(|o| o.metadata.name).collect(),
        "MutatingWebhookConfiguration",
    ));
    let list = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .list(&managed)
        .await
        .unwrap();
    found.extend(names(
        list.items.into_iter().map(|o| o.metadata.name).collect(),
        "ValidatingWebhookConfiguration",
    ));
    let list = Api::<ClusterRole>::all(client.clone()).list(&managed).await.unwrap();
    found.extend(names(list.items.into_iter().map(|o| o.metadata.name).collect(), "ClusterRole"));
    let list = Api::<ClusterRoleBinding>::all(client.clone()).list(&managed).await.unwrap();
    found.extend(names(
        list.items.into_iter().map(|o| o.metadata.name).collect(),
        "ClusterRoleBinding",
    ));
    let revisions = Api::<DynamicObject>::all_with(client.clone(), &sail("IstioRevision", "istiorevisions"));
    for object in revisions.list(&Default::default()).await.unwrap() {
        found.push(format!("IstioRevision {}", object.metadata.name.unwrap_or_default()));
    }
    let namespaces = Api::<Namespace>::all(client.clone()).list(&Default::default()).await.unwrap();
    for ns in namespaces {
        let name = ns.metadata.name.unwrap_or_default();
        let ours = ["istio-system", "istio-cni", "external-istiod", "sample"]
            .iter()
            .any(|prefix| name.starts_with(prefix));
        if ours {
            found.push(format!("Namespace {name}"));
        }
    }
    found
}

/// Runs teardown.rhai and checks that no cluster keeps anything; a second
/// run finds everything absent and succeeds.
async fn assert_teardown_leaves_nothing(sandbox: &SandboxHandle, contexts: &[&str], sets: &[(&str, &str)]) {
    run(sandbox, "teardown.rhai", sets, &[]).status(0).stdout_contains("deleted");
    for context in contexts {
        // The rendered objects go with their IstioRevision, by garbage collection: give it time.
        let client = sandbox.client(context).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut left = leftovers(&client).await;
        while !left.is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            left = leftovers(&client).await;
        }
        assert!(left.is_empty(), "teardown left on {context}: {left:?}");
    }
    run(sandbox, "teardown.rhai", sets, &[]).status(0).stdout_lacks("deleted");
}
