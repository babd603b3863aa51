//! Reading one cluster for `status`: every object the graph and the checks
//! need, in concurrent requests; all clusters are read at the same time by
//! the caller. An unreachable cluster is an outcome, not an error.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::kube::ClusterClient;

/// How long one cluster may take to answer everything: a hung API server
/// must not hold up the report of the others.
pub const CLUSTER_DEADLINE: Duration = Duration::from_secs(10);

/// What one context showed, or why it showed nothing.
pub struct Snapshot {
    pub context: String,
    pub server: String,
    /// The context's CA (PEM), to match remote secrets to contexts.
    pub ca: Option<Vec<u8>>,
    pub client: Option<Arc<ClusterClient>>,
    pub objects: std::result::Result<Objects, String>,
}

/// The raw objects, as the API server returned them. Secrets hold
/// credentials: this type is never serialized or printed.
#[derive(Default)]
pub struct Objects {
    pub istios: Vec<Value>,
    pub revisions: Vec<Value>,
    /// Secrets labelled `istio/multiCluster=true`.
    pub remote_secrets: Vec<Value>,
    pub webhooks: Vec<Value>,
    /// Services of type LoadBalancer (gateways) and `istiod*` Services.
    pub services: Vec<Value>,
    /// `networking.istio.io` Gateways: which gateway exposes which istiod.
    pub gateways: Vec<Value>,
    /// Pods labelled `istio.io/rev`: istiods and injected workloads.
    pub pods: Vec<Value>,
    /// EndpointSlices of the remote Istios' `istiod-<rev>` Services.
    pub endpoint_slices: Vec<Value>,
    /// The remote Istios' namespaces (their `controlPlaneClusters` annotation).
    pub namespaces: Vec<Value>,
}

/// Reads `client`'s cluster, within [`CLUSTER_DEADLINE`].
pub async fn read(context: String, server: String, ca: Option<Vec<u8>>, client: Result<Arc<ClusterClient>>) -> Snapshot {
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            return Snapshot {
                context,
                server,
                ca,
                client: None,
                objects: Err(e.to_string()),
            };
        }
    };
    let objects = match tokio::time::timeout(CLUSTER_DEADLINE, read_objects(&client)).await {
        Ok(Ok(objects)) => Ok(objects),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "API server {} did not answer within {}s",
            client.url,
            CLUSTER_DEADLINE.as_secs()
        )),
    };
    Snapshot {
        context,
        server,
        ca,
        client: Some(client),
        objects,
    }
}

async fn read_objects(client: &ClusterClient) -> Result<Objects> {
    let (istios, revisions, remote_secrets, webhooks, services, gateways, pods) = futures::try_join!(
        list(client, "/apis/sailoperator.io/v1/istios"),
        list(client, "/apis/sailoperator.io/v1/istiorevisions"),
        list(client, "/api/v1/secrets?labelSelector=istio%2FmultiCluster%3Dtrue"),
        list(client, "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"),
        list(client, "/api/v1/services"),
        list(client, "/apis/networking.istio.io/v1/gateways"),
        list(client, "/api/v1/pods?labelSelector=istio.io%2Frev"),
    )?;
    let services = services
        .into_iter()
        .filter(|s| {
            s.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
                || s.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with("istiod"))
        })
        .collect();
    // Second round, only where a remote Istio lives: its Service's slices and its namespace.
    let remotes: Vec<(String, String)> = istios
        .iter()
        .filter(|i| super::graph::is_remote(i))
        .map(|i| (super::graph::istio_namespace(i), super::graph::istio_revision(i)))
        .collect();
    let slices = futures::future::try_join_all(remotes.iter().map(|(ns, rev)| {
        let selector = format!("kubernetes.io%2Fservice-name%3D{}", super::graph::istiod_service(rev));
        let path = format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector={selector}");
        async move { list(client, &path).await }
    }));
    let namespaces = futures::future::try_join_all(remotes.iter().map(|(ns, _)| async move {
        client
            .get_json(&format!("/api/v1/namespaces/{ns}"), &format!("Namespace {ns}"))
            .await
    }));
    let (slices, namespaces) = futures::try_join!(slices, namespaces)?;
    Ok(Objects {
        istios,
        revisions,
        remote_secrets,
        webhooks,
        services,
        gateways,
        pods,
        endpoint_slices: slices.into_iter().flatten().collect(),
        namespaces: namespaces.into_iter().flatten().collect(),
    })
}

/// The items of a list; a kind the server does not serve (no Sail or Istio
/// CRDs on this cluster) is an empty list.
async fn list(client: &ClusterClient, path: &str) -> Result<Vec<Value>> {
    let res = client.call(http::Method::GET, path, None, Vec::new()).await?;
    if res.status == http::StatusCode::NOT_FOUND {
        return Ok(Vec::new());
    }
    if !res.status.is_success() {
        return Err(client.api_error(&res, path, "list"));
    }
    match res.body.get("items") {
        Some(Value::Array(items)) => Ok(items.clone()),
        _ => Err(Error::Api {
            cluster: client.name.clone(),
            object: path.to_string(),
            message: "the answer is not a list".into(),
        }),
    }
}
