//! kube-scheduler: binds Pods to the cluster's kwok Nodes (kwok itself only
//! runs Pods that already have `spec.nodeName`). It talks to the API server as
//! `system:kube-scheduler` (the bootstrap RBAC roles for that user apply),
//! serves nothing and elects no leader. It is ready once its informers sync,
//! well within the time kwok needs to make the Nodes Ready; it stops with the
//! cluster.

use std::path::Path;

use super::cluster::{self, ClusterHandle};
use super::kubeconfig::{self, KubeconfigEntry};
use super::process::ChildProcess;
use crate::error::Result;

const KUBECONFIG: &str = "kube-scheduler.kubeconfig";

/// Writes the scheduler's kubeconfig into the cluster folder and starts it;
/// its log is DIR/<cluster>/kube-scheduler.log.
pub fn start(cluster: &ClusterHandle, binary: &Path, apiserver_minor: u32) -> Result<ChildProcess> {
    let yaml = kubeconfig::render(&[KubeconfigEntry {
        name: &cluster.name,
        server: &cluster.server,
        ca_pem: &cluster.certs.ca.cert_pem,
        client_cert_pem: &cluster.certs.scheduler.cert_pem,
        client_key_pem: &cluster.certs.scheduler.key_pem,
    }])?;
    cluster::write_private(&cluster.dir.join(KUBECONFIG), &yaml)?;
    cluster::spawn(&cluster.dir, "kube-scheduler", binary, &args(&cluster.dir, apiserver_minor))
}

pub fn args(dir: &Path, minor: u32) -> Vec<String> {
    let mut args = vec![
        format!("--kubeconfig={}", dir.join(KUBECONFIG).display()),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        // No HTTPS endpoint (health, metrics): nothing scrapes it, and clusters would fight over 10259.
        "--secure-port=0".into(),
    ];
    if minor < 23 {
        // The insecure port (10251) was removed in 1.23; before that it must be switched off explicitly.
        args.push("--port=0".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduler_serves_nothing_and_elects_no_leader() {
        let args = args(Path::new("/d/c"), 37);
        assert!(args.contains(&"--kubeconfig=/d/c/kube-scheduler.kubeconfig".to_string()));
        assert!(args.contains(&"--secure-port=0".to_string()));
        assert!(args.contains(&"--leader-elect=false".to_string()));
        assert!(!args.iter().any(|a| a.starts_with("--port")));
        assert!(super::args(Path::new("/d/c"), 22).contains(&"--port=0".to_string()));
    }
}
