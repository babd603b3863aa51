//! Real istiods: for every `app=istiod` Pod that runs on a kwok Node of a
//! sandbox cluster, the real `pilot-discovery discovery`, run as its Pod would
//! run it (`pod_istiod`): the Pod's env and mounted files in a folder of its
//! own (DIR/<cluster>/istiod/<namespace>-<pod>/), its service account's
//! in-cluster credentials, its Pod IP on the sandbox network, and the Pod
//! Ready exactly while istiod answers `/ready`. A new Pod (a rollout) gets a
//! new process; a Pod that goes away takes its process along.
//!
//! Needs the sandbox's network namespace (Pod IPs) and root (a private mount
//! namespace per istiod).

pub mod command;
pub mod pod_env;
pub mod pod_istiod;
pub mod pod_objects;
pub mod pod_volumes;
pub mod readiness;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::address_plan::Ipv4Prefix;
use super::cluster::ClusterHandle;
use super::kwok_stages::ISTIOD_POD_LABEL;

/// What the istiods of one sandbox cluster need of it.
pub struct IstiodCluster {
    pub name: String,
    pub client: kube::Client,
    /// DIR/<cluster>
    pub dir: PathBuf,
    /// In-cluster clients reach the API server at `127.0.0.1:<port>`.
    pub apiserver_port: u16,
    /// The kwok Nodes: Pods elsewhere are not ours to run.
    pub nodes: Vec<String>,
    /// The cluster's Pod addresses: the only ones listened on.
    pub pod_cidr: Ipv4Prefix,
}

impl IstiodCluster {
    pub fn new(cluster: &ClusterHandle, pod_cidr: Ipv4Prefix) -> IstiodCluster {
        let port = cluster.server.rsplit(':').next().and_then(|p| p.parse().ok());
        IstiodCluster {
            name: cluster.name.clone(),
            client: cluster.client.clone(),
            dir: cluster.dir.clone(),
            apiserver_port: port.unwrap_or(443),
            nodes: cluster.nodes.clone(),
            pod_cidr,
        }
    }

    /// The Pod's IP when it is ours to run now: on a kwok Node, Running, not
    /// being deleted, with an address of this cluster's Pod range.
    fn runs(&self, pod: &Pod) -> Option<Ipv4Addr> {
        if pod.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let node = pod.spec.as_ref()?.node_name.as_ref()?;
        let status = pod.status.as_ref()?;
        let ip: Ipv4Addr = status.pod_ip.as_ref()?.parse().ok()?;
        let running = status.phase.as_deref() == Some("Running");
        (running && self.nodes.contains(node) && self.pod_cidr.contains(ip)).then_some(ip)
    }
}

/// Runs an istiod per istiod Pod of every cluster until `cancel` fires, then
/// stops them all. `netns` is the sandbox's network namespace.
pub async fn run(clusters: Vec<IstiodCluster>, binary: PathBuf, netns: String, cancel: CancellationToken) {
    if let Err(why) = can_enter_mount_namespaces().await {
        eprintln!("sandbox: no real istiod ({why}): istiod Pods stay NotReady");
        return;
    }
    let (binary, netns) = (Arc::new(binary), Arc::new(netns));
    let root = clusters
        .first()
        .and_then(|c| c.dir.parent())
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    eprintln!("sandbox: a real istiod runs for each app=istiod Pod: {root}/<cluster>/istiod/<namespace>-<pod>/{{istiod.log,ports}}");
    let mut watchers = JoinSet::new();
    for cluster in clusters {
        watchers.spawn(watch(Arc::new(cluster), binary.clone(), netns.clone(), cancel.clone()));
    }
    while watchers.join_next().await.is_some() {}
}

/// One cluster: watches its istiod Pods and starts or stops an istiod per Pod (by uid).
async fn watch(cluster: Arc<IstiodCluster>, binary: Arc<PathBuf>, netns: Arc<String>, cancel: CancellationToken) {
    let (key, value) = ISTIOD_POD_LABEL;
    let pods: Api<Pod> = Api::all(cluster.client.clone());
    let (store, writer) = reflector::store();
    let config = watcher::Config::default().labels(&format!("{key}={value}"));
    let mut events = reflector::reflector(writer, watcher(pods, config).default_backoff()).boxed();
    let mut running: HashMap<String, CancellationToken> = HashMap::new();
    let mut istiods = JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            event = events.next() => match event {
                None => break,
                // Recoverable: the watcher backs off and resumes by itself.
                Some(Err(e)) => eprintln!("sandbox: istiod: {}: watching Pods: {e}", cluster.name),
                Some(Ok(_)) => reconcile(&cluster, &store, &mut running, &mut istiods, &binary, &netns),
            },
        }
        while istiods.try_join_next().is_some() {}
    }
    running.values().for_each(CancellationToken::cancel);
    while istiods.join_next().await.is_some() {}
}

fn reconcile(
    cluster: &Arc<IstiodCluster>,
    store: &Store<Pod>,
    running: &mut HashMap<String, CancellationToken>,
    istiods: &mut JoinSet<()>,
    binary: &Arc<PathBuf>,
    netns: &Arc<String>,
) {
    let wanted: HashMap<String, (Arc<Pod>, Ipv4Addr)> = store
        .state()
        .into_iter()
        .filter_map(|pod| Some((pod.metadata.uid.clone()?, (pod.clone(), cluster.runs(&pod)?))))
        .collect();
    running.retain(|uid, token| {
        let keep = wanted.contains_key(uid);
        if !keep {
            token.cancel();
        }
        keep
    });
    for (uid, (pod, ip)) in wanted {
        if running.contains_key(&uid) {
            continue;
        }
        let token = CancellationToken::new();
        running.insert(uid, token.clone());
        let pod = (*pod).clone();
        istiods.spawn(pod_istiod::run(cluster.clone(), binary.clone(), netns.clone(), pod, ip, token));
    }
}

/// istiod gets its service-account files at the Pod's path in a mount
/// namespace of its own: that needs root and `unshare`.
async fn can_enter_mount_namespaces() -> Result<(), String> {
    let output = tokio::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("unshare: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("unshare --mount: {}", String::from_utf8_lossy(&output.stderr).trim()))
    }
}
