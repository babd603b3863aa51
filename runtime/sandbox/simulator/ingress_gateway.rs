//! The simulated ingress gateway's data path. A real gateway is Envoy in a
//! pod; the sandbox's pods do not run, so on each LoadBalancer address it
//! listens (inside the sandbox's network namespace) on exactly the ports that
//! the cluster's Gateways and VirtualServices route with TLS PASSTHROUGH,
//! reads the ClientHello's SNI, and splices the connection to a ready
//! endpoint of the destination Service. Everything else is refused: ports
//! without a route are not listened on, connections without one are closed.
//! It only ever dials addresses of the sandbox's network namespace.

mod client_hello;
mod routing;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use self::client_hello::ClientHello;
use self::routing::{Gateway, Snapshot, VirtualService};
use super::SimulatedCluster;
use crate::sandbox::address_plan::Ipv4Prefix;
use crate::sandbox::network;

/// How long a client may take to send its ClientHello; then it is routed without SNI.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a listener that could not be bound is tried again.
const BIND_RETRY: Duration = Duration::from_secs(5);

/// The sandbox's network namespace, and the address blocks answered inside it.
#[derive(Debug, Clone)]
pub struct Network {
    pub netns: String,
    pub inside: Vec<Ipv4Prefix>,
}

impl Network {
    /// The only destinations the gateway may dial (loopback, or the namespace's own blocks).
    fn allows(&self, ip: Ipv4Addr) -> bool {
        ip.is_loopback() || self.inside.iter().any(|block| block.contains(ip))
    }
}

/// Runs on every cluster until `cancel` fires; without a namespace it only says so.
pub async fn run(clusters: Vec<SimulatedCluster>, network: Option<Network>, cancel: CancellationToken) {
    let Some(network) = network else {
        eprintln!("simulated ingress-gateway: no network namespace: LoadBalancer addresses carry no traffic");
        return;
    };
    eprintln!(
        "simulated ingress-gateway: forwarding the routed TLS PASSTHROUGH ports of LoadBalancer addresses in {}",
        network.netns
    );
    let network = Arc::new(network);
    let mut tasks = JoinSet::new();
    for cluster in clusters {
        tasks.spawn(run_cluster(cluster.name, cluster.client, network.clone(), cancel.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

/// What every connection of one cluster needs.
struct Context {
    cluster: String,
    stores: Stores,
    network: Arc<Network>,
    /// Round-robin over a Service's endpoints.
    next: AtomicUsize,
    cancel: CancellationToken,
}

/// Keeps one listener per routed `<LoadBalancer address>:<port>` of the cluster.
async fn run_cluster(cluster: String, client: kube::Client, network: Arc<Network>, cancel: CancellationToken) {
    let (changed, mut changes) = watch::channel(());
    let mut watchers = JoinSet::new();
    let stores = Stores::watch(&cluster, client, &changed, &mut watchers);
    let context = Arc::new(Context {
        cluster: cluster.clone(),
        stores,
        network,
        next: AtomicUsize::new(0),
        cancel: cancel.clone(),
    });
    let mut listeners: HashMap<SocketAddrV4, JoinHandle<()>> = HashMap::new();
    // Problems already reported (bind errors by address, unparsable objects), so each is said once.
    let mut failed: HashMap<SocketAddrV4, String> = HashMap::new();
    let mut reported: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            result = changes.changed() => if result.is_err() { break },
            _ = tokio::time::sleep(BIND_RETRY), if !failed.is_empty() => {}
        }
        let (snapshot, problems) = context.stores.snapshot();
        for problem in problems {
            if reported.insert(problem.clone()) {
                eprintln!("simulated ingress-gateway: {cluster}: {problem}");
            }
        }
        let wanted = snapshot.listeners();
        let gone: Vec<_> = listeners.keys().filter(|a| !wanted.contains(a)).copied().collect();
        for address in gone {
            if let Some(handle) = listeners.remove(&address) {
                handle.abort();
                let _ = handle.await;
                eprintln!("simulated ingress-gateway: {cluster}: no route left on {address}: not listening there any more");
            }
        }
        failed.retain(|address, _| wanted.contains(address));
        for address in wanted {
            if listeners.contains_key(&address) {
                continue;
            }
            match listen(&context, address).await {
                Ok(handle) => {
                    listeners.insert(address, handle);
                    failed.remove(&address);
                    eprintln!("simulated ingress-gateway: {cluster}: listening on {address}");
                }
                Err(message) => {
                    if failed.get(&address) != Some(&message) {
                        eprintln!("simulated ingress-gateway: {cluster}: cannot listen on {address}: {message}");
                    }
                    failed.insert(address, message);
                }
            }
        }
    }
    listeners.values().for_each(JoinHandle::abort);
}

/// Binds `address` inside the namespace and serves it in a task of its own.
async fn listen(context: &Arc<Context>, address: SocketAddrV4) -> Result<JoinHandle<()>, String> {
    if !context.network.allows(*address.ip()) {
        return Err("not an address of the sandbox's network namespace".into());
    }
    let netns = context.network.netns.clone();
    let bound = tokio::task::spawn_blocking(move || network::bind_in_namespace(&netns, address.into()))
        .await
        .map_err(|e| e.to_string())?;
    let listener = bound
        .and_then(|listener| {
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)
        })
        .map_err(|e| e.to_string())?;
    let context = context.clone();
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((client, peer)) => {
                    tokio::spawn(forward(client, peer, address, context.clone()));
                }
                Err(e) => {
                    eprintln!("simulated ingress-gateway: {}: accepting on {address}: {e}", context.cluster);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

/// One connection: its SNI, its route (from the stores as they are now), the splice.
async fn forward(mut client: TcpStream, peer: SocketAddr, local: SocketAddrV4, context: Arc<Context>) {
    let started = Instant::now();
    let cluster = &context.cluster;
    let (hello, sni) = match read_client_hello(&mut client).await {
        Ok(read) => read,
        Err(e) => return eprintln!("simulated ingress-gateway: {cluster}: {peer} → {local}: {e}"),
    };
    let who = format!("{cluster}: {peer} → {local} (SNI {})", sni.as_deref().unwrap_or("none"));
    let upstream = match context.stores.snapshot().0.route(local, sni.as_deref()) {
        Ok(upstream) => upstream,
        Err(reason) => return eprintln!("simulated ingress-gateway: {who}: closed: {reason}"),
    };
    let endpoint = upstream.endpoints[context.next.fetch_add(1, Ordering::Relaxed) % upstream.endpoints.len()];
    let to = format!("Service {} → {endpoint}", upstream.service);
    if !context.network.allows(*endpoint.ip()) {
        return eprintln!("simulated ingress-gateway: {who} → {to}: refused: not an address of the sandbox's network namespace");
    }
    let mut server = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(endpoint)).await {
        Ok(Ok(server)) => server,
        Ok(Err(e)) => return eprintln!("simulated ingress-gateway: {who} → {to}: {e}"),
        Err(_) => return eprintln!("simulated ingress-gateway: {who} → {to}: no answer within {CONNECT_TIMEOUT:?}"),
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    if let Err(e) = server.write_all(&hello).await {
        return eprintln!("simulated ingress-gateway: {who} → {to}: {e}");
    }
    eprintln!(
        "simulated ingress-gateway: {who} → {to}: connected in {:.1}ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    tokio::select! {
        _ = context.cancel.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
    }
}

/// Reads until the first bytes are a whole ClientHello or clearly none;
/// returns them (to replay upstream) and the SNI.
async fn read_client_hello(client: &mut TcpStream) -> io::Result<(Vec<u8>, Option<String>)> {
    let deadline = tokio::time::Instant::now() + HELLO_TIMEOUT;
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let read = match tokio::time::timeout_at(deadline, client.read(&mut chunk)).await {
            Ok(read) => read?,
            // A client that waits for the server to speak first: no SNI.
            Err(_) => return Ok((buffer, None)),
        };
        if read == 0 {
            if buffer.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before sending anything"));
            }
            return Ok((buffer, None));
        }
        buffer.extend_from_slice(&chunk[..read]);
        match client_hello::parse(&buffer) {
            ClientHello::Incomplete => continue,
            ClientHello::Complete { sni } => return Ok((buffer, sni)),
            ClientHello::NotTls => return Ok((buffer, None)),
        }
    }
}

/// The watched objects of one cluster.
#[derive(Clone)]
struct Stores {
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    gateways: Store<DynamicObject>,
    virtual_services: Store<DynamicObject>,
}

impl Stores {
    /// Starts the watchers; every event pokes `changed`.
    fn watch(cluster: &str, client: kube::Client, changed: &watch::Sender<()>, tasks: &mut JoinSet<()>) -> Stores {
        let istio = |kind, plural| ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("networking.istio.io", "v1", kind), plural);
        let (gateway, virtual_service) = (istio("Gateway", "gateways"), istio("VirtualService", "virtualservices"));
        let (services, service_writer) = reflector::store();
        let (slices, slice_writer) = reflector::store();
        let gateway_writer = reflector::store::Writer::new(gateway.clone());
        let virtual_service_writer = reflector::store::Writer::new(virtual_service.clone());
        let stores = Stores {
            services,
            slices,
            gateways: gateway_writer.as_reader(),
            virtual_services: virtual_service_writer.as_reader(),
        };
        let config = watcher::Config::default;
        let drive = |stream: futures::stream::BoxStream<'static, Result<(), watcher::Error>>, what: &'static str| {
            let (changed, cluster) = (changed.clone(), cluster.to_string());
            async move {
                let mut stream = stream;
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(()) => changed.send_replace(()),
                        // Recoverable: the watcher backs off and resumes by itself.
                        Err(e) => eprintln!("simulated ingress-gateway: {cluster}: watching {what}: {e}"),
                    }
                }
            }
        };
        let services = watcher(Api::<Service>::all(client.clone()), config()).default_backoff();
        tasks.spawn(drive(reflector::reflector(service_writer, services).map(unit).boxed(), "Services"));
        let with_service = config().labels("kubernetes.io/service-name");
        let slices = watcher(Api::<EndpointSlice>::all(client.clone()), with_service).default_backoff();
        tasks.spawn(drive(
            reflector::reflector(slice_writer, slices).map(unit).boxed(),
            "EndpointSlices",
        ));
        let gateways = watcher(Api::all_with(client.clone(), &gateway), config()).default_backoff();
        tasks.spawn(drive(reflector::reflector(gateway_writer, gateways).map(unit).boxed(), "Gateways"));
        let virtual_services = watcher(Api::all_with(client, &virtual_service), config()).default_backoff();
        tasks.spawn(drive(
            reflector::reflector(virtual_service_writer, virtual_services).map(unit).boxed(),
            "VirtualServices",
        ));
        stores
    }

    /// The objects as they are now, and what could not be read of them.
    fn snapshot(&self) -> (Snapshot, Vec<String>) {
        let mut problems = Vec::new();
        let gateways: Vec<Gateway> = parse_all(&self.gateways, "Gateway", &mut problems);
        let virtual_services: Vec<VirtualService> = parse_all(&self.virtual_services, "VirtualService", &mut problems);
        let snapshot = Snapshot::new(self.services.state(), self.slices.state(), gateways, virtual_services);
        (snapshot, problems)
    }
}

/// The objects of `store` whose spec reads as `Spec`; the others, named in `problems`.
fn parse_all<Spec>(store: &Store<DynamicObject>, kind: &str, problems: &mut Vec<String>) -> Vec<routing::Parsed<Spec>>
where
    Spec: serde::de::DeserializeOwned + Default,
{
    let parse = |object: &Arc<DynamicObject>| match routing::Parsed::from_object(object) {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            let (namespace, name) = (object.metadata.namespace.as_deref(), object.metadata.name.as_deref());
            problems.push(format!("{kind} {}/{} ignored: {e}", namespace.unwrap_or(""), name.unwrap_or("")));
            None
        }
    };
    store.state().iter().filter_map(parse).collect()
}

/// Events only say "changed": the stores hold the objects.
fn unit<T>(event: Result<T, watcher::Error>) -> Result<(), watcher::Error> {
    event.map(drop)
}
