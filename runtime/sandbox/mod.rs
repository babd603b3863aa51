//! `mesh-run sandbox`: real local Kubernetes clusters (etcd, kube-apiserver,
//! kube-controller-manager) plus simulated controllers for what cannot run
//! without nodes (the Sail Operator, a LoadBalancer provider).

pub mod address_plan;
pub mod assets;
pub mod certs;
pub mod cluster;
pub mod crds;
pub mod flags;
pub mod istio_assets;
pub mod istiod;
pub mod kubeconfig;
pub mod kwok;
pub mod kwok_stages;
pub mod network;
pub mod nodes;
pub mod pinned;
pub mod pod_port;
pub mod process;
pub mod ready;
pub mod scheduler;
pub mod simulator;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::Api;
use kube::runtime::wait::await_condition;
use tokio_util::sync::CancellationToken;

use self::address_plan::AddressPlan;
use self::assets::Assets;
use self::cluster::ClusterHandle;
use crate::error::{Error, Result};

/// What `mesh-run sandbox` was asked for.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// One cluster per name; the name is also its kubeconfig context and folder.
    pub clusters: Vec<String>,
    /// Where everything lives; a fresh temporary folder when `None`.
    pub dir: Option<PathBuf>,
    /// `current`, `oldest`, or a version such as `1.30.4`.
    pub kube_version: String,
    /// Leave DIR in place when stopping.
    pub keep: bool,
    /// How long the simulated controllers wait before writing a status.
    pub sim_delay: Duration,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            clusters: vec!["control-plane".into(), "data-plane".into()],
            dir: None,
            kube_version: "current".into(),
            keep: false,
            sim_delay: Duration::from_secs(1),
        }
    }
}

/// Grace period between SIGTERM and SIGKILL when stopping.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Runs in the foreground until `cancel` fires (the CLI wires SIGINT/SIGTERM
/// to it), then stops every process and removes DIR unless `keep`.
pub async fn run(opts: SandboxOptions, cancel: CancellationToken) -> Result<()> {
    validate_names(&opts.clusters)?;
    let assets = Assets::locate(&opts.kube_version)?;
    let istio = istio_assets::IstioAssets::locate()?;
    let dir = SandboxDir::create(opts.dir.clone(), opts.keep)?;
    let started = Instant::now();
    let count = opts.clusters.len();
    let network = tokio::task::spawn_blocking(move || network::SandboxNetwork::create(count))
        .await
        .map_err(join_error)??;
    let plan = network.as_ref().map(|n| n.plan);
    let charts = simulator::charts::Charts::new(istio.istio_render.clone(), istio.snapshot.clone(), plan.map(|p| p.slot));
    let charts = std::sync::Arc::new(charts);
    let result = tokio::select! {
        started = start_all(&opts, &assets, dir.path(), plan) => started,
        _ = cancel.cancelled() => Err(Error::Interrupted { place: "while starting the sandbox".into() }),
    };
    let mut clusters = result?;
    let kubeconfig = dir.path().join("kubeconfig");
    let entries: Vec<_> = clusters.iter().map(ClusterHandle::kubeconfig_entry).collect();
    // It carries the admin's client key: owner-only, like the keys next to it.
    cluster::write_private(&kubeconfig, &kubeconfig::render(&entries)?)?;
    if let Some(network) = &network {
        network.write_file(dir.path(), &opts.clusters)?;
    }
    ready::mark(dir.path())?;
    eprintln!(
        "sandbox: {} cluster(s) ready in {:.1}s",
        clusters.len(),
        started.elapsed().as_secs_f64()
    );
    println!("export KUBECONFIG={}", kubeconfig.display());
    let _ = std::io::stdout().flush();

    let simulators = cancel.child_token();
    let views = clusters.iter().map(simulator::SimulatedCluster::from).collect();
    let plan = plan.unwrap_or_else(|| AddressPlan::data_only(count));
    let load_balancers = (0..count).map(|i| plan.cluster(i).load_balancers).collect();
    let ingress = network.as_ref().map(|n| simulator::ingress_gateway::Network {
        netns: n.netns.clone(),
        inside: (0..count).map(|i| n.plan.cluster(i).block).collect(),
    });
    let sim_task = tokio::spawn(simulator::run(
        views,
        load_balancers,
        charts,
        opts.sim_delay,
        ingress,
        simulators.clone(),
    ));
    // Real istiods for the istiod Pods: they need the namespace for their Pod IPs.
    let istiod_task = network.as_ref().map(|network| {
        let views = (clusters.iter().enumerate())
            .map(|(i, cluster)| istiod::IstiodCluster::new(cluster, network.plan.cluster(i).pod_cidr))
            .collect();
        tokio::spawn(istiod::run(
            views,
            istio.pilot_discovery.clone(),
            network.netns.clone(),
            simulators.clone(),
        ))
    });
    let outcome = supervise(&mut clusters, &cancel).await;
    let stopping = Instant::now();
    ready::clear(dir.path());
    eprintln!("sandbox: stopping");
    simulators.cancel();
    let _ = sim_task.await;
    if let Some(task) = istiod_task {
        let _ = task.await;
    }
    stop_all(clusters).await;
    drop(network);
    drop(dir);
    eprintln!("sandbox: stopped in {:.1}s", stopping.elapsed().as_secs_f64());
    outcome
}

/// Starts every cluster concurrently, installs the CRDs and waits for the
/// controller manager (it creates the `default` ServiceAccount).
async fn start_all(opts: &SandboxOptions, assets: &Assets, dir: &Path, plan: Option<AddressPlan>) -> Result<Vec<ClusterHandle>> {
    let probe = assets.clone();
    let caps = tokio::task::spawn_blocking(move || probe.probe());
    let parsed = tokio::task::spawn_blocking(crds::parse_bundled);
    let caps = caps.await.map_err(join_error)??;
    let ports = flags::free_ports(opts.clusters.len())?;
    let addresses = (0..opts.clusters.len())
        .map(|i| plan.map(|p| p.cluster(i).node_addresses()))
        .collect();
    let node_setups = nodes::plan(assets, addresses);
    let clusters = try_join_all(
        opts.clusters
            .iter()
            .zip(ports)
            .zip(&node_setups)
            .map(|((name, ports), setup)| ClusterHandle::start(name, dir, assets, caps, ports, setup.as_ref())),
    )
    .await?;
    let crds = parsed.await.map_err(join_error)??;
    try_join_all(clusters.iter().map(|cluster| async {
        let version = cluster.client.apiserver_version().await.map_err(|e| Error::Sandbox {
            message: format!("cluster {}: GET /version: {e}", cluster.name),
        })?;
        let adapt = crds::needs_adaptation(&version, caps.apiserver_minor);
        let controllers = wait_for_controller_manager(cluster, assets.kube_controller_manager.is_some());
        let nodes = nodes::wait_ready(cluster);
        tokio::try_join!(crds::install(&cluster.client, &crds, adapt), controllers, nodes).map_err(|e| Error::Sandbox {
            message: format!("cluster {}: {e}", cluster.name),
        })
    }))
    .await?;
    Ok(clusters)
}

async fn wait_for_controller_manager(cluster: &ClusterHandle, present: bool) -> Result<()> {
    if !present {
        return Ok(());
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), "default");
    let created = await_condition(accounts, "default", |sa: Option<&ServiceAccount>| sa.is_some());
    match tokio::time::timeout(Duration::from_secs(60), created).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::Sandbox {
            message: format!("waiting for ServiceAccount default/default: {e}"),
        }),
        Err(_) => Err(Error::Sandbox {
            message: "kube-controller-manager created no ServiceAccount default/default within 60s".into(),
        }),
    }
}

/// Foreground loop: until cancelled, or until a control-plane process dies (fatal).
async fn supervise(clusters: &mut [ClusterHandle], cancel: &CancellationToken) -> Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = tick.tick() => {
                for cluster in clusters.iter_mut() {
                    cluster.check_alive()?;
                }
            }
        }
    }
}

/// SIGTERM to every process of every cluster at once, one grace period, then SIGKILL.
async fn stop_all(mut clusters: Vec<ClusterHandle>) {
    let mut all: Vec<_> = clusters.iter_mut().flat_map(|c| c.processes.drain(..)).collect();
    // Our clients' open connections would hold up the apiservers' graceful shutdown.
    drop(clusters);
    let _ = tokio::task::spawn_blocking(move || process::stop_all(&mut all, STOP_GRACE)).await;
}

fn validate_names(names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Err(Error::usage("sandbox: --clusters needs at least one name"));
    }
    for (i, name) in names.iter().enumerate() {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-');
        if !valid {
            return Err(Error::usage(format!(
                "sandbox: cluster name {name:?} must be lowercase letters, digits and '-' (it names a context and a folder)"
            )));
        }
        if names[..i].contains(name) {
            return Err(Error::usage(format!("sandbox: cluster name {name:?} given twice")));
        }
    }
    Ok(())
}

fn join_error(err: tokio::task::JoinError) -> Error {
    Error::Sandbox {
        message: format!("background task failed: {err}"),
    }
}

/// DIR, removed on drop unless kept. Declared before the clusters so it is
/// removed only after their processes are gone.
struct SandboxDir {
    path: PathBuf,
    keep: bool,
}

impl SandboxDir {
    fn create(dir: Option<PathBuf>, keep: bool) -> Result<SandboxDir> {
        let path = match dir {
            Some(path) => {
                // Refuse a folder with content: stopping removes DIR, and it must not take user files along.
                if std::fs::read_dir(&path).map(|mut d| d.next().is_some()).unwrap_or(false) {
                    return Err(Error::Sandbox {
                        message: format!("--dir {} exists and is not empty", path.display()),
                    });
                }
                std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
                path
            }
            None => tempfile::Builder::new()
                .prefix("mesh-run-sandbox-")
                .tempdir()
                .map_err(|e| Error::io(std::env::temp_dir(), e))?
                .keep(),
        };
        let path = path.canonicalize().map_err(|e| Error::io(&path, e))?;
        Ok(SandboxDir { path, keep })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SandboxDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("sandbox: kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_must_be_usable_as_contexts_and_folders() {
        assert!(validate_names(&["control-plane".into(), "data-plane".into()]).is_ok());
        assert!(validate_names(&[]).is_err());
        assert!(validate_names(&["a".into(), "a".into()]).is_err());
        assert!(validate_names(&["../x".into()]).is_err());
        assert!(validate_names(&["Upper".into()]).is_err());
    }
}
