//! The simulated ingress gateway's data path: a LoadBalancer address forwards
//! exactly the ports its Gateway and VirtualService route, by SNI, to the
//! destination Service's EndpointSlice address. The backends are ours,
//! listening inside the sandbox's network namespace on an address of the
//! pod range that no pod gets (the sandbox's pods do not run). Needs root
//! (CI is): without a namespace there is nothing to forward.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use mesh_run::sandbox::address_plan::Ipv4Prefix;
use rustls_pki_types::{PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{create, namespace};
use crate::support::{self, wait_for};

const CLUSTER: &str = "control-plane";

/// DIR/network's namespace and `cluster`'s pod range.
fn network(dir: &Path, cluster: &str) -> Option<(String, Ipv4Prefix)> {
    let text = std::fs::read_to_string(dir.join("network")).ok()?;
    let netns = text.lines().find_map(|l| l.strip_prefix("netns "))?.to_string();
    let line = text.lines().find(|l| l.starts_with(&format!("cluster {cluster} ")))?;
    let pods = line.split_whitespace().skip_while(|w| *w != "pods").nth(1)?;
    Some((netns, pods.parse().ok()?))
}

fn istio(client: &kube::Client, namespace: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1", kind);
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk_with_plural(&gvk, plural))
}

/// A listener inside the sandbox's namespace, on `ip` of a pod range.
fn listen_in_namespace(netns: &str, ip: Ipv4Addr) -> TcpListener {
    let listener = mesh_run::sandbox::network::bind_in_namespace(netns, SocketAddrV4::new(ip, 0).into()).expect("bind in the namespace");
    listener.set_nonblocking(true).unwrap();
    TcpListener::from_std(listener).unwrap()
}

/// Echoes every connection; counts them.
fn serve<S, F>(listener: TcpListener, accepted: Arc<AtomicUsize>, wrap: F)
where
    F: Fn(TcpStream) -> S + Send + 'static,
    S: std::future::Future + Send + 'static,
    S::Output: AsyncRead + AsyncWrite + Send + Unpin,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            let stream = wrap(stream);
            tokio::spawn(async move {
                let (mut reader, mut writer) = tokio::io::split(stream.await);
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
}

/// The gateway Service (LoadBalancer, selecting `istio: <label>`), the
/// selector-less backend Service `backend` (port 443 `https-webhook`) and its
/// EndpointSlice at `endpoint`; returns the LoadBalancer address.
async fn services(client: &kube::Client, ns: &str, label: &str, endpoint: SocketAddr) -> Ipv4Addr {
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    create(
        &services,
        json!({"metadata": {"name": "gw"}, "spec": {"type": "LoadBalancer", "selector": {"app": "gw", "istio": label},
            "ports": [{"name": "tls-xds", "port": 15012}, {"name": "tls-webhook", "port": 15017}]}}),
    )
    .await;
    create(
        &services,
        json!({"metadata": {"name": "backend"}, "spec": {"ports": [{"name": "https-webhook", "port": 443, "targetPort": 15017}]}}),
    )
    .await;
    create(
        &Api::<EndpointSlice>::namespaced(client.clone(), ns),
        json!({"metadata": {"name": "backend-1", "labels": {"kubernetes.io/service-name": "backend"}},
            "addressType": "IPv4", "endpoints": [{"addresses": [endpoint.ip().to_string()], "conditions": {"ready": true}}],
            "ports": [{"name": "https-webhook", "port": endpoint.port(), "protocol": "TCP"}]}),
    )
    .await;
    let ip = |s: &Service| {
        s.status
            .as_ref()?
            .load_balancer
            .as_ref()?
            .ingress
            .as_ref()?
            .first()?
            .ip
            .as_deref()?
            .parse()
            .ok()
    };
    let gateway = wait_for(
        services,
        "gw",
        |s: Option<&Service>| s.and_then(ip).is_some(),
        Duration::from_secs(30),
    )
    .await;
    ip(&gateway).unwrap()
}

/// Gateway `gw` (PASSTHROUGH on 15017 only) and VirtualService `vs` routing `sni_hosts` on 15017 to `backend:443`.
async fn routes(client: &kube::Client, ns: &str, label: &str, sni_hosts: Value) {
    create(
        &istio(client, ns, "Gateway", "gateways"),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "gw"},
            "spec": {"selector": {"istio": label}, "servers": [
                {"port": {"number": 15017, "protocol": "tls", "name": "tls-webhook"}, "tls": {"mode": "PASSTHROUGH"}, "hosts": ["*"]}]}}),
    )
    .await;
    create(
        &istio(client, ns, "VirtualService", "virtualservices"),
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "vs"},
            "spec": {"hosts": ["*"], "gateways": ["gw"], "tls": [{"match": [{"port": 15017, "sniHosts": sni_hosts}],
                "route": [{"destination": {"host": format!("backend.{ns}.svc.cluster.local"), "port": {"number": 443}}}]}]}}),
    )
    .await;
}

/// Connects, sends `ping` and reads the echo.
async fn echo(address: SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(address).await?;
    stream.write_all(b"ping").await?;
    let mut answer = [0u8; 4];
    stream.read_exact(&mut answer).await?;
    assert_eq!(&answer, b"ping");
    Ok(())
}

async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within 30s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Median and 90th percentile of `runs` echo round trips (connect included), in ms.
async fn latency(address: SocketAddr, runs: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        echo(address).await.expect("echo");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[runs / 2], times[runs * 9 / 10])
}

#[tokio::test]
async fn a_load_balancer_forwards_only_the_ports_its_gateway_and_virtual_service_route() {
    let sandbox = support::sandbox("default", super::CLUSTERS);
    let Some((netns, pods)) = network(sandbox.dir(), CLUSTER) else {
        // SAFETY: a plain getter.
        assert_ne!(
            unsafe { libc::geteuid() },
            0,
            "running as root, yet the sandbox wrote no DIR/network"
        );
        return;
    };
    let ns = "t-igw-plain";
    let client = sandbox.client(CLUSTER).await;
    namespace(&client, ns).await;
    // The last address of the pod range: kwok hands out the lowest first.
    let listener = listen_in_namespace(&netns, pods.nth(126));
    let backend = listener.local_addr().unwrap();
    serve(listener, Arc::default(), std::future::ready);
    let lb = services(&client, ns, "t-gw", backend).await;
    routes(&client, ns, "t-gw", json!(["*"])).await;

    // Plain bytes (no ClientHello, so no SNI) match the `*` route.
    let webhook = SocketAddr::from((lb, 15017));
    eventually("the echo through the gateway", || async { echo(webhook).await.is_ok() }).await;
    let (through, through_p90) = latency(webhook, 50).await;
    let (direct, direct_p90) = latency(backend, 50).await;
    eprintln!(
        "connect + 4-byte echo, median (p90): through the simulated gateway {through:.2}ms ({through_p90:.2}ms), direct {direct:.2}ms ({direct_p90:.2}ms)"
    );

    // 15012 is a port of the Service, but the Gateway does not list it: nothing listens.
    let refused = TcpStream::connect((lb, 15012)).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");

    // Without the VirtualService the route is gone, and so is the listener.
    let vs = istio(&client, ns, "VirtualService", "virtualservices");
    vs.delete("vs", &DeleteParams::default()).await.unwrap();
    eventually("15017 refused without the VirtualService", || async {
        TcpStream::connect(webhook)
            .await
            .is_err_and(|e| e.kind() == ErrorKind::ConnectionRefused)
    })
    .await;
}

/// TLS passthrough end to end: our backend holds the certificate, the gateway only reads the SNI.
#[tokio::test]
async fn tls_connections_are_routed_by_their_sni() {
    let sandbox = support::sandbox("default", super::CLUSTERS);
    let Some((netns, pods)) = network(sandbox.dir(), CLUSTER) else {
        // SAFETY: a plain getter.
        assert_ne!(
            unsafe { libc::geteuid() },
            0,
            "running as root, yet the sandbox wrote no DIR/network"
        );
        return;
    };
    let ns = "t-igw-sni";
    let client = sandbox.client(CLUSTER).await;
    namespace(&client, ns).await;

    let certified = rcgen::generate_simple_self_signed(vec!["a.example".to_string(), "b.example".to_string()]).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

    let listener = listen_in_namespace(&netns, pods.nth(125));
    let backend = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    serve(listener, accepted.clone(), move |stream| {
        let handshake = acceptor.accept(stream);
        async move { handshake.await.expect("TLS handshake at the backend") }
    });
    let lb = services(&client, ns, "t-gw-sni", backend).await;
    routes(&client, ns, "t-gw-sni", json!(["a.example"])).await;

    let webhook = SocketAddr::from((lb, 15017));
    let tls_echo = |sni: &'static str| {
        let connector = connector.clone();
        async move {
            let tcp = TcpStream::connect(webhook).await?;
            let mut tls = connector.connect(ServerName::try_from(sni).unwrap(), tcp).await?;
            tls.write_all(b"ping").await?;
            let mut answer = [0u8; 4];
            tls.read_exact(&mut answer).await?;
            assert_eq!(&answer, b"ping");
            std::io::Result::Ok(())
        }
    };
    eventually("a TLS echo with SNI a.example", || async { tls_echo("a.example").await.is_ok() }).await;

    // b.example has no route: the gateway closes the connection after the ClientHello, the backend never sees it.
    let before = accepted.load(Ordering::SeqCst);
    let refused = tls_echo("b.example").await.unwrap_err();
    assert!(
        matches!(refused.kind(), ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset),
        "{refused}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), before);
    tls_echo("a.example").await.expect("a.example still routed");
}
