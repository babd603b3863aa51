//! What the simulated Sail Operator installs from the real Istio charts, read
//! back from the servers after a playbook: the objects a user's clusters hold.

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, ListParams};
use kube::runtime::conditions;

use crate::support::wait_for;

/// One mesh of the external topology: where its istiod runs and what the data plane calls it.
pub struct Mesh<'a> {
    /// Namespace and revision (the procedure uses `external-istiod` for both).
    pub namespace: &'a str,
    pub revision: &'a str,
    pub cluster_id: &'a str,
    pub network: &'a str,
    /// The control plane's ingress address (`global.remotePilotAddress`).
    pub address: &'a str,
    /// The account the chart binds ClusterRoles to on the data plane: `istiod-<rev>`
    /// on the config cluster, `istio-reader-service-account` on further data planes.
    pub account: &'a str,
}

fn owned_by_revision(
    labels: Option<&std::collections::BTreeMap<String, String>>,
    owners: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
    revision: &str,
) -> bool {
    let managed = labels.and_then(|l| l.get("managed-by")).map(String::as_str) == Some("sail-operator");
    let owner = owners
        .into_iter()
        .flatten()
        .any(|o| o.kind == "IstioRevision" && o.name == revision && o.controller == Some(true));
    managed && owner
}

/// The data plane (`remote` profile): the injection webhook calls
/// `istiod-<rev>` with the mesh's injection path; that Service's EndpointSlice
/// points at the control plane's address; ClusterRoles bound to the account
/// the remote secret uses.
pub async fn assert_data_plane(dp: &kube::Client, mesh: &Mesh<'_>) {
    let webhook_name = format!("istio-sidecar-injector-{}-{}", mesh.revision, mesh.namespace);
    let webhook = Api::<MutatingWebhookConfiguration>::all(dp.clone())
        .get(&webhook_name)
        .await
        .unwrap_or_else(|e| panic!("MutatingWebhookConfiguration {webhook_name}: {e}"));
    assert!(
        owned_by_revision(
            webhook.metadata.labels.as_ref(),
            webhook.metadata.owner_references.as_ref(),
            mesh.revision
        ),
        "{webhook_name}: {:?}",
        webhook.metadata
    );
    let webhooks = webhook.webhooks.unwrap_or_default();
    assert!(!webhooks.is_empty(), "{webhook_name} has webhooks");
    let path = format!("/inject/cluster/{}/net/{}", mesh.cluster_id, mesh.network);
    for hook in &webhooks {
        let service = hook.client_config.service.as_ref().expect("a service reference, not a URL");
        assert_eq!(service.name, format!("istiod-{}", mesh.revision), "{}", hook.name);
        assert_eq!(service.namespace, mesh.namespace, "{}", hook.name);
        assert!(
            service.path.as_deref().unwrap_or("").starts_with(&path),
            "{}: {:?}",
            hook.name,
            service.path
        );
    }

    let slices = Api::<EndpointSlice>::namespaced(dp.clone(), mesh.namespace)
        .list(&ListParams::default())
        .await
        .unwrap();
    let addresses: Vec<String> = slices
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter().flat_map(|e| e.addresses.clone()))
        .collect();
    assert!(
        addresses.iter().any(|a| a == mesh.address),
        "an EndpointSlice in {} at {}: {addresses:?}",
        mesh.namespace,
        mesh.address
    );

    let account = mesh.account;
    let bindings = Api::<ClusterRoleBinding>::all(dp.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let bound: Vec<String> = bindings
        .items
        .iter()
        .filter(|b| {
            b.subjects
                .iter()
                .flatten()
                .any(|s| s.kind == "ServiceAccount" && s.name == account && s.namespace.as_deref() == Some(mesh.namespace))
        })
        .map(|b| b.role_ref.name.clone())
        .collect();
    assert!(!bound.is_empty(), "no ClusterRole bound to {account} on the data plane");
}

/// The control plane: the external istiod Deployment with the env the
/// playbook set, Available, its pod Running and Ready on a fake node.
pub async fn assert_control_plane(cp: &kube::Client, mesh: &Mesh<'_>) {
    let name = format!("istiod-{}", mesh.revision);
    let deployments = Api::<Deployment>::namespaced(cp.clone(), mesh.namespace);
    let deployment = wait_for(deployments, &name, conditions::is_deployment_completed(), Duration::from_secs(60)).await;
    assert!(
        owned_by_revision(
            deployment.metadata.labels.as_ref(),
            deployment.metadata.owner_references.as_ref(),
            mesh.revision
        ),
        "{name}"
    );
    let spec = deployment.spec.expect("spec");
    let containers = spec.template.spec.expect("pod spec").containers;
    let env: std::collections::BTreeMap<String, String> = containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(env.get("EXTERNAL_ISTIOD").map(String::as_str), Some("true"), "{name}: {env:?}");
    assert_eq!(env.get("CLUSTER_ID").map(String::as_str), Some(mesh.cluster_id), "{name}");
    assert_eq!(env.get("REVISION").map(String::as_str), Some(mesh.revision), "{name}");
    let status = deployment.status.expect("status");
    assert!(status.available_replicas.unwrap_or(0) >= 1, "{name}: {status:?}");

    let pods = Api::<Pod>::namespaced(cp.clone(), mesh.namespace)
        .list(&ListParams::default().labels(&format!("app=istiod,istio.io/rev={}", mesh.revision)))
        .await
        .unwrap();
    let running: Vec<&Pod> = pods
        .items
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        .collect();
    assert!(!running.is_empty(), "{name}: a Running pod");
    assert!(
        running
            .iter()
            .all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some()),
        "{name}: scheduled on a node"
    );
}

/// The ingress gateway Deployment becomes Available.
pub async fn assert_gateway_available(cp: &kube::Client, namespace: &str) {
    let deployments = Api::<Deployment>::namespaced(cp.clone(), namespace);
    wait_for(
        deployments,
        "istio-ingressgateway",
        conditions::is_deployment_completed(),
        Duration::from_secs(60),
    )
    .await;
}

/// `GET http://127.0.0.1:<istiod http port>/<path>` of the istiod of `namespace`
/// on `cluster` (its loopback ports are in DIR/<cluster>/istiod/<namespace>-<pod>/ports).
pub fn istiod_debug(sandbox_dir: &std::path::Path, cluster: &str, namespace: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let folder = sandbox_dir.join(cluster).join("istiod");
    // The http listeners of the istiods of `namespace` whose process lives (a
    // restarted istiod's old folder stays), read again on every try: during a
    // rollout one goes and another comes, and a new one may not listen yet.
    let listeners = || -> Vec<String> {
        let entries = std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display()));
        entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("{namespace}-istiod")))
            .filter_map(|e| std::fs::read_to_string(e.path().join("ports")).ok())
            .filter(|ports| {
                let pid = ports.lines().find_map(|l| l.strip_prefix("pid "));
                pid.is_some_and(|pid| std::path::Path::new("/proc").join(pid.trim()).exists())
            })
            .filter_map(|ports| {
                let http = ports.lines().find_map(|l| l.strip_prefix("http "))?;
                Some(http.split_whitespace().next()?.to_string())
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut stream = loop {
        let found = listeners();
        if let Some(s) = found.iter().find_map(|http| std::net::TcpStream::connect(http).ok()) {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no istiod of {namespace} in {} answers (listeners {found:?})",
            folder.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path} of istiod in {namespace}: {e}: {body}"))
}

/// The external istiod leads a data plane: it synced the cluster with its
/// ID (`/debug/clusterz`), patched the data plane's injection webhook with
/// its CA, wrote `istio-ca-root-cert` into the data plane's namespaces; Sail's
/// probe found it through the published address.
pub async fn assert_istiod_leads(sandbox_dir: &std::path::Path, cp_context: &str, dp: &kube::Client, mesh: &Mesh<'_>) {
    use k8s_openapi::api::core::v1::ConfigMap;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let clusters = istiod_debug(sandbox_dir, cp_context, mesh.namespace, "/debug/clusterz");
        let synced = clusters
            .as_array()
            .is_some_and(|list| list.iter().any(|c| c["id"] == mesh.cluster_id && c["syncStatus"] == "synced"));
        if synced {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "istiod in {} never synced {}: {clusters}",
            mesh.namespace,
            mesh.cluster_id
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let webhook_name = format!("istio-sidecar-injector-{}-{}", mesh.revision, mesh.namespace);
    let webhook = Api::<MutatingWebhookConfiguration>::all(dp.clone())
        .get(&webhook_name)
        .await
        .unwrap();
    for hook in webhook.webhooks.iter().flatten() {
        let ca = hook.client_config.ca_bundle.as_ref().map(|b| b.0.clone()).unwrap_or_default();
        assert!(
            String::from_utf8_lossy(&ca).contains("BEGIN CERTIFICATE"),
            "{}: istiod's caBundle",
            hook.name
        );
    }
    let annotations = webhook.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("sailoperator.io/readinessProbe.status").map(String::as_str),
        Some("true"),
        "{webhook_name}: {annotations:?}"
    );
    let roots = Api::<ConfigMap>::namespaced(dp.clone(), "default");
    let exists = |c: Option<&ConfigMap>| c.is_some();
    wait_for(roots, "istio-ca-root-cert", exists, Duration::from_secs(30)).await;
}

/// The env of the `istio-proxy` container (or native sidecar) of each pod matching `selector` in `sample`.
pub async fn proxy_envs(dp: &kube::Client, selector: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    use k8s_openapi::api::core::v1::Pod;
    let pods = Api::<Pod>::namespaced(dp.clone(), "sample")
        .list(&kube::api::ListParams::default().labels(selector))
        .await
        .unwrap();
    assert!(!pods.items.is_empty(), "pods {selector}");
    pods.items
        .iter()
        .map(|pod| {
            let spec = pod.spec.as_ref().unwrap();
            let proxy = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| c.name == "istio-proxy")
                .expect("istio-proxy injected by the real webhook");
            proxy
                .env
                .iter()
                .flatten()
                .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
                .collect()
        })
        .collect()
}
