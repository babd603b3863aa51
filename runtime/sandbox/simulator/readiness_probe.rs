//! The Sail Operator's readiness probe of a remote istiod (its webhook
//! controller), simulated as the operator runs it: for every
//! MutatingWebhookConfiguration owned by a `remote` IstioRevision, every
//! period (3 s, or annotation `sailoperator.io/readinessProbe.periodSeconds`):
//! a service reference and a non-empty caBundle are required, then
//! `GET https://<service>.<namespace>.svc:<port>/ready` trusting only that
//! caBundle, at the Service's EndpointSlice address (what cluster DNS and the
//! Service would resolve to). The verdict goes into the annotations
//! `sailoperator.io/readinessProbe.status` and `.reason`, which the
//! IstioRevision's Ready condition reads. Success proves that the external
//! istiod reached this cluster with the remote secret, patched the caBundle
//! and answers through the published address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub const STATUS: &str = "sailoperator.io/readinessProbe.status";
pub const REASON: &str = "sailoperator.io/readinessProbe.reason";
const PERIOD: &str = "sailoperator.io/readinessProbe.periodSeconds";
const TIMEOUT: &str = "sailoperator.io/readinessProbe.timeoutSeconds";
const NO_CA_BUNDLE: &str = "webhooks[].clientConfig.caBundle hasn't been set; check if the remote istiod can access this cluster";

/// Probes the webhooks of one cluster until `cancel` fires. `is_remote`
/// says whether an IstioRevision (by name) has the `remote` profile.
/// `may_dial` is the network rule: an EndpointSlice address outside the
/// sandbox's own network is never connected to (the probe fails, saying so).
pub async fn run(
    cluster: String,
    client: Client,
    is_remote: impl Fn(&str) -> bool,
    may_dial: impl Fn(std::net::IpAddr) -> bool,
    cancel: CancellationToken,
) {
    let webhooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let owned = ListParams::default().labels("managed-by=sail-operator");
    let mut next: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let Ok(list) = webhooks.list(&owned).await else { continue };
        for webhook in list.items {
            let name = webhook.name_any();
            let remote_owner = webhook
                .owner_references()
                .iter()
                .any(|o| o.kind == "IstioRevision" && is_remote(&o.name));
            if !remote_owner || next.get(&name).is_some_and(|at| Instant::now() < *at) {
                continue;
            }
            let annotations = webhook.annotations();
            let seconds = |key: &str, default: u64| annotations.get(key).and_then(|v| v.parse().ok()).unwrap_or(default);
            next.insert(name.clone(), Instant::now() + Duration::from_secs(seconds(PERIOD, 3)));
            let timeout = Duration::from_secs(seconds(TIMEOUT, 5));
            let verdict = match tokio::time::timeout(timeout, probe(&client, &webhook, &may_dial)).await {
                Ok(verdict) => verdict,
                Err(_) => Err(format!("GET /ready did not answer within {}s", timeout.as_secs())),
            };
            let (status, reason) = match &verdict {
                Ok(()) => ("true", String::new()),
                Err(reason) => ("false", reason.clone()),
            };
            let unchanged = annotations.get(STATUS).map(String::as_str) == Some(status)
                && annotations.get(REASON).map(String::as_str).unwrap_or("") == reason;
            if unchanged {
                continue;
            }
            let patch = json!({"metadata": {"annotations": {STATUS: status, REASON: reason}}});
            match webhooks.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => match verdict {
                    Ok(()) => eprintln!("simulated sail-operator: {cluster}: readiness probe of {name}: remote istiod ready"),
                    Err(reason) => eprintln!("simulated sail-operator: {cluster}: readiness probe of {name}: {reason}"),
                },
                Err(e) => eprintln!("simulated sail-operator: {cluster}: cannot annotate {name}: {e}"),
            }
        }
        next.retain(|name, at| *at + Duration::from_secs(60) > Instant::now() || name.is_empty());
    }
}

/// One probe of `webhook`'s first webhook.
async fn probe(
    client: &Client,
    webhook: &MutatingWebhookConfiguration,
    may_dial: &impl Fn(std::net::IpAddr) -> bool,
) -> Result<(), String> {
    let first = webhook
        .webhooks
        .as_ref()
        .and_then(|w| w.first())
        .ok_or("the configuration has no webhooks")?;
    let service = first
        .client_config
        .service
        .as_ref()
        .ok_or("webhooks[0].clientConfig.service is not set (a url is not supported)")?;
    let ca_bundle = first.client_config.ca_bundle.as_ref().map(|b| b.0.clone()).unwrap_or_default();
    if ca_bundle.is_empty() {
        return Err(NO_CA_BUNDLE.into());
    }
    let port = service.port.unwrap_or(443);
    let host = format!("{}.{}.svc", service.name, service.namespace);
    let address = endpoint(client, &service.namespace, &service.name, port).await?;
    if !may_dial(address.ip()) {
        return Err(format!(
            "the endpoint {address} is outside the sandbox's network: not probed (the sandbox only dials its own addresses)"
        ));
    }
    get_ready(address, &host, &ca_bundle).await
}

/// The EndpointSlice address and port behind `port` of Service `namespace/name`.
async fn endpoint(client: &Client, namespace: &str, name: &str, port: i32) -> Result<SocketAddr, String> {
    let svc = Api::<Service>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| format!("Service {namespace}/{name}: {e}"))?;
    let service_port = svc
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.port == port)
        .ok_or_else(|| format!("Service {namespace}/{name} has no port {port}"))?;
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={name}")))
        .await
        .map_err(|e| format!("EndpointSlices of {namespace}/{name}: {e}"))?;
    for slice in slices.items {
        let target = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name == service_port.name)
            .and_then(|p| p.port);
        let ready = slice
            .endpoints
            .iter()
            .find(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false));
        if let (Some(target), Some(address)) = (target, ready.and_then(|e| e.addresses.first())) {
            return format!("{address}:{target}")
                .parse()
                .map_err(|_| format!("EndpointSlice address {address} is not an IP"));
        }
    }
    Err(format!("no endpoint for port {port} of Service {namespace}/{name}"))
}

/// `GET https://<host>/ready` at `address`, trusting only `ca_pem`.
async fn get_ready(address: SocketAddr, host: &str, ca_pem: &[u8]) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| format!("caBundle: {e}"))?;
        roots.add(cert).map_err(|e| format!("caBundle: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("{address}: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("TLS to {host} at {address}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/ready")
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("GET https://{host}/ready: {e}"))?;
    match response.status().as_u16() {
        200 => Ok(()),
        code => Err(format!("GET https://{host}/ready: HTTP {code}")),
    }
}
