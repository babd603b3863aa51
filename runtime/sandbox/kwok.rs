//! kwok: fake kubelets. It keeps the cluster's annotated Nodes Ready (node
//! leases, like a kubelet's heartbeat, so the node lifecycle controller never
//! taints them) and plays the stages of `stages.yaml` on their Pods: Running
//! and Ready with an IP from the cluster's Pod CIDR, and gone once deleted.
//! It opens no port (no `--server-address`, no `--node-port`): exec, logs
//! and metrics are not served. It is ready when the Nodes are
//! (`nodes::wait_ready`) and stops with the cluster. istiod Pods stay
//! NotReady: a real istiod answers for them (`kwok_stages`, `istiod/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::assets::cache_root;
use super::cluster::{self, ClusterHandle};
use super::kubeconfig::{self, KubeconfigEntry};
use super::kwok_stages;
use super::nodes::{KWOK_ANNOTATION, NodeAddresses};
use super::pinned::pinned;
use super::process::ChildProcess;
use crate::error::{Error, Result};

const KUBECONFIG: &str = "kwok.kubeconfig";

/// The kwok binary and its stage file, as `scripts/istio-assets.sh kwok` builds them.
#[derive(Debug, Clone)]
pub struct KwokAssets {
    pub binary: PathBuf,
    pub stages: PathBuf,
}

impl KwokAssets {
    /// `~/.cache/mesh-run/kwok/<KWOK_VERSION>/{kwok,stages.yaml}` (the same files
    /// `IstioAssets` lists, without requiring the Istio binaries next to them).
    pub fn locate() -> Result<KwokAssets> {
        let version = pinned("KWOK_VERSION");
        let dir = cache_root().join("kwok").join(version);
        let assets = KwokAssets {
            binary: dir.join("kwok"),
            stages: dir.join("stages.yaml"),
        };
        let command = format!("{} kwok", super::istio_assets::INSTALL_COMMAND);
        super::istio_assets::require_files(&format!("kwok {version}"), &command, &[&assets.binary, &assets.stages])?;
        Ok(assets)
    }
}

/// Writes kwok's kubeconfig into the cluster folder and starts it; its log is
/// DIR/<cluster>/kwok.log.
pub fn start(cluster: &ClusterHandle, assets: &KwokAssets, addresses: &NodeAddresses) -> Result<ChildProcess> {
    let yaml = kubeconfig::render(&[KubeconfigEntry {
        name: &cluster.name,
        server: &cluster.server,
        ca_pem: &cluster.certs.ca.cert_pem,
        client_cert_pem: &cluster.certs.kwok.cert_pem,
        client_key_pem: &cluster.certs.kwok.key_pem,
    }])?;
    cluster::write_private(&cluster.dir.join(KUBECONFIG), &yaml)?;
    let stages = write_stages(&cluster.dir, &assets.stages)?;
    let mut command = Command::new(&assets.binary);
    command
        .args(args(&cluster.dir, &stages, addresses))
        // kwok merges ~/.kwok/kwok.yaml into its configuration when it exists: a
        // work dir of its own keeps a user's settings (a server address) out.
        .env("KWOK_WORKDIR", cluster.dir.join("kwok"))
        .stdin(Stdio::null());
    cluster::spawn_command(&cluster.dir, "kwok", command)
}

/// DIR/<cluster>/kwok-stages.yaml: the test bed's stages, istiod Pods left NotReady.
fn write_stages(dir: &Path, stages: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(stages).map_err(|e| Error::io(stages, e))?;
    let derived = kwok_stages::with_istiod_readiness(&text).map_err(|message| Error::Sandbox {
        message: format!("{}: {message}", stages.display()),
    })?;
    let path = dir.join("kwok-stages.yaml");
    std::fs::write(&path, derived).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

pub fn args(dir: &Path, stages: &Path, addresses: &NodeAddresses) -> Vec<String> {
    let (key, value) = KWOK_ANNOTATION;
    let mut args = vec![
        format!("--kubeconfig={}", dir.join(KUBECONFIG).display()),
        format!("--config={}", stages.display()),
        "--manage-all-nodes=false".into(),
        format!("--manage-nodes-with-annotation-selector={key}={value}"),
        format!("--cidr={}", addresses.pod_cidr),
        // Renewed every 10s: the node lifecycle controller's grace period (40-50s) is never reached.
        "--node-lease-duration-seconds=40".into(),
        // No kubelet port on the Nodes, no kwok server: nothing listens, on any address.
        "--node-port=0".into(),
        "--server-address=".into(),
    ];
    // Only a fallback: each Node is created with its own InternalIP, which kwok keeps.
    if let Some(ip) = addresses.node_ips.first() {
        args.push(format!("--node-ip={ip}"));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn kwok_manages_only_annotated_nodes_and_listens_nowhere() {
        let addresses = NodeAddresses {
            pod_cidr: "198.18.4.0/24".into(),
            node_ips: vec![Ipv4Addr::new(198, 19, 4, 1), Ipv4Addr::new(198, 19, 4, 2)],
        };
        let args = args(Path::new("/d/c"), Path::new("/k/stages.yaml"), &addresses);
        for expected in [
            "--kubeconfig=/d/c/kwok.kubeconfig",
            "--config=/k/stages.yaml",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=198.18.4.0/24",
            "--node-ip=198.19.4.1",
            "--node-port=0",
            "--server-address=",
        ] {
            assert!(args.contains(&expected.to_string()), "{expected} missing from {args:?}");
        }
    }
}
