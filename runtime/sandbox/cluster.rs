//! One sandbox cluster: etcd, kube-apiserver and kube-controller-manager,
//! real binaries on loopback ports, each cluster in its own folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::assets::{Assets, Capabilities};
use super::certs::ClusterCerts;
use super::kubeconfig::{self, KubeconfigEntry};
use super::process::{self, ChildProcess};
use crate::error::{Error, Result};

/// The controllers that matter without nodes: service-account tokens and
/// `default` accounts, namespace deletion, garbage collection, and the
/// Deployment → ReplicaSet chain (Pods stay Pending: there is no scheduler).
const CONTROLLERS: &str = "serviceaccount-token,serviceaccount,namespace,garbagecollector,deployment,replicaset";

/// Ports reserved for one cluster.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub etcd_client: u16,
    pub etcd_peer: u16,
    pub apiserver: u16,
}

/// Free loopback ports for `count` clusters, all taken before any is released
/// so concurrent clusters never get the same one.
pub fn free_ports(count: usize) -> Result<Vec<Ports>> {
    let listeners = (0..count * 3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::Sandbox { message: format!("no free loopback port: {e}") })?;
    let ports: Vec<u16> = listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.port()).collect();
    Ok(ports.chunks(3).map(|p| Ports { etcd_client: p[0], etcd_peer: p[1], apiserver: p[2] }).collect())
}

/// A running cluster. Dropping it stops its processes.
pub struct ClusterHandle {
    pub name: String,
    pub dir: PathBuf,
    /// `https://127.0.0.1:PORT`
    pub server: String,
    pub certs: ClusterCerts,
    pub client: kube::Client,
    pub processes: Vec<ChildProcess>,
}

impl ClusterHandle {
    /// Starts etcd and kube-apiserver, waits for `/readyz`, then starts the
    /// controller manager (it needs a serving apiserver).
    pub async fn start(
        name: &str,
        root: &Path,
        assets: &Assets,
        caps: Capabilities,
        ports: Ports,
    ) -> Result<ClusterHandle> {
        let started = Instant::now();
        let dir = root.join(name);
        let certs = ClusterCerts::generate(name)?;
        let server = format!("https://127.0.0.1:{}", ports.apiserver);
        write_files(&dir, &certs, name, &server)?;
        eprintln!("sandbox: starting cluster {name} on {server}");
        let mut processes = vec![spawn(&dir, "etcd", &assets.etcd, &etcd_args(&dir, ports, caps))?];
        wait_for_port(ports.etcd_client, &mut processes[0], &dir).await?;
        processes.push(spawn(&dir, "kube-apiserver", &assets.kube_apiserver, &apiserver_args(&dir, ports))?);
        let entry = entry(name, &server, &certs);
        let yaml = kubeconfig::render(&[entry])?;
        let client = kubeconfig::client_for(&yaml, name).await?;
        let mut cluster = ClusterHandle { name: name.to_string(), dir, server, certs, client, processes };
        cluster.wait_ready().await?;
        if let Some(kcm) = &assets.kube_controller_manager {
            let args = controller_manager_args(&cluster.dir, caps.apiserver_minor);
            cluster.processes.push(spawn(&cluster.dir, "kube-controller-manager", kcm, &args)?);
        }
        eprintln!("sandbox: cluster {name} serving after {:.1}s", started.elapsed().as_secs_f64());
        Ok(cluster)
    }

    /// The admin entry for DIR/kubeconfig.
    pub fn kubeconfig_entry(&self) -> KubeconfigEntry<'_> {
        entry(&self.name, &self.server, &self.certs)
    }

    /// Polls `/readyz` (TLS verified, as the admin) until it answers `ok`.
    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let request = http::Request::get("/readyz").body(Vec::new()).map_err(|e| sandbox_error(&e))?;
            if let Ok(body) = self.client.request_text(request).await
                && body.trim() == "ok"
            {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                return Err(self.failure("kube-apiserver", "not ready after 90s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An error if any process of this cluster has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        let dead = self.processes.iter_mut().find_map(|p| p.exit_status().map(|s| (p.name().to_string(), s)));
        match dead {
            Some((process, status)) => Err(self.failure(&process, &format!("exited ({status})"))),
            None => Ok(()),
        }
    }

    fn failure(&self, process: &str, what: &str) -> Error {
        failure(&self.dir, &self.name, process, what)
    }

    /// Stops every process of the cluster (SIGTERM, then SIGKILL after `grace`).
    pub fn stop(&mut self, grace: Duration) {
        process::stop_all(&mut self.processes, grace);
    }
}

fn entry<'a>(name: &'a str, server: &'a str, certs: &'a ClusterCerts) -> KubeconfigEntry<'a> {
    KubeconfigEntry {
        name,
        server,
        ca_pem: &certs.ca.cert_pem,
        client_cert_pem: &certs.admin.cert_pem,
        client_key_pem: &certs.admin.key_pem,
    }
}

fn write_files(dir: &Path, certs: &ClusterCerts, name: &str, server: &str) -> Result<()> {
    std::fs::create_dir_all(dir.join("etcd")).map_err(|e| Error::io(dir, e))?;
    let controller_manager = kubeconfig::render(&[KubeconfigEntry {
        name,
        server,
        ca_pem: &certs.ca.cert_pem,
        client_cert_pem: &certs.controller_manager.cert_pem,
        client_key_pem: &certs.controller_manager.key_pem,
    }])?;
    let files = [
        ("ca.crt", certs.ca.cert_pem.as_str()),
        ("apiserver.crt", &certs.serving.cert_pem),
        ("apiserver.key", &certs.serving.key_pem),
        ("sa.key", &certs.service_account_key_pem),
        ("sa.pub", &certs.service_account_pub_pem),
        ("kube-controller-manager.kubeconfig", &controller_manager),
    ];
    for (file, text) in files {
        write_private(&dir.join(file), text)?;
    }
    Ok(())
}

/// Keys live here: readable by the owner only.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
}

fn etcd_args(dir: &Path, ports: Ports, caps: Capabilities) -> Vec<String> {
    let client = format!("http://127.0.0.1:{}", ports.etcd_client);
    let peer = format!("http://127.0.0.1:{}", ports.etcd_peer);
    let mut args = vec![
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=default={peer}"),
    ];
    if caps.etcd_unsafe_no_fsync {
        // A throwaway store: skipping fsync saves seconds of startup on slow disks.
        args.push("--unsafe-no-fsync=true".into());
    }
    args
}

fn apiserver_args(dir: &Path, ports: Ports) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    vec![
        format!("--etcd-servers=http://127.0.0.1:{}", ports.etcd_client),
        format!("--secure-port={}", ports.apiserver),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        // The `kubernetes` Service's endpoints may not point at loopback; nothing here needs them.
        "--endpoint-reconciler-type=none".into(),
        format!("--cert-dir={}", dir.display()),
        format!("--tls-cert-file={}", file("apiserver.crt")),
        format!("--tls-private-key-file={}", file("apiserver.key")),
        format!("--client-ca-file={}", file("ca.crt")),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        format!("--service-account-key-file={}", file("sa.pub")),
        format!("--service-account-signing-key-file={}", file("sa.key")),
        "--authorization-mode=RBAC".into(),
        "--service-cluster-ip-range=10.96.0.0/12".into(),
        "--allow-privileged=true".into(),
        // Lean, still a real apiserver: no request queueing for a single user, no profiling endpoints.
        "--enable-priority-and-fairness=false".into(),
        "--profiling=false".into(),
    ]
}

fn controller_manager_args(dir: &Path, minor: u32) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    let mut args = vec![
        format!("--kubeconfig={}", file("kube-controller-manager.kubeconfig")),
        format!("--controllers={CONTROLLERS}"),
        format!("--service-account-private-key-file={}", file("sa.key")),
        format!("--root-ca-file={}", file("ca.crt")),
        "--use-service-account-credentials=false".into(),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        // No HTTPS endpoint: nothing scrapes it, and several clusters would fight over 10257.
        "--secure-port=0".into(),
    ];
    if minor < 24 {
        // The insecure port (10252) was removed in 1.24; before that it must be switched off explicitly.
        args.push("--port=0".into());
    }
    args
}

fn spawn(dir: &Path, name: &str, binary: &Path, args: &[String]) -> Result<ChildProcess> {
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let err_log = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
    let mut command = Command::new(binary);
    command.args(args).current_dir(dir).stdin(Stdio::null()).stdout(log).stderr(err_log);
    ChildProcess::spawn(name, command).map_err(|e| Error::io(binary, e))
}

/// etcd listens within a second; the apiserver starts best once it does.
async fn wait_for_port(port: u16, etcd: &mut ChildProcess, dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        let cluster = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if let Some(status) = etcd.exit_status() {
            return Err(failure(dir, &cluster, "etcd", &format!("exited ({status})")));
        }
        if Instant::now() > deadline {
            return Err(failure(dir, &cluster, "etcd", "not listening after 30s"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// An error naming the process, with the end of its log (the cause is usually there).
fn failure(dir: &Path, cluster: &str, process: &str, what: &str) -> Error {
    let log = dir.join(format!("{process}.log"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    Error::Sandbox { message: format!("cluster {cluster}: {process} {what}; end of {}:\n{tail}", log.display()) }
}

fn sandbox_error(err: &dyn std::fmt::Display) -> Error {
    Error::Sandbox { message: err.to_string() }
}
