//! One sandbox cluster: etcd, kube-apiserver and kube-controller-manager,
//! real binaries on loopback ports, each cluster in its own folder; with a
//! network namespace also kube-scheduler, kwok and two Nodes (`nodes.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::assets::{Assets, Capabilities};
use super::certs::ClusterCerts;
use super::flags::{Ports, apiserver_args, controller_manager_args, etcd_args};
use super::kubeconfig::{self, KubeconfigEntry};
use super::nodes::{self, NodeSetup};
use super::process::{self, ChildProcess};
use crate::error::{Error, Result};

/// A running cluster. Dropping it stops its processes.
pub struct ClusterHandle {
    pub name: String,
    pub dir: PathBuf,
    /// `https://127.0.0.1:PORT`
    pub server: String,
    pub certs: ClusterCerts,
    pub client: kube::Client,
    pub processes: Vec<ChildProcess>,
    /// The kwok Nodes (empty when the cluster has none).
    pub nodes: Vec<String>,
}

impl ClusterHandle {
    /// Starts etcd and kube-apiserver, waits for `/readyz`, then starts the
    /// controller manager (it needs a serving apiserver), and, given a
    /// `NodeSetup`, the scheduler, kwok and the Nodes.
    pub async fn start(
        name: &str,
        root: &Path,
        assets: &Assets,
        caps: Capabilities,
        ports: Ports,
        node_setup: Option<&NodeSetup>,
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
        let mut cluster = ClusterHandle {
            name: name.to_string(),
            dir,
            server,
            certs,
            client,
            processes,
            nodes: Vec::new(),
        };
        cluster.wait_ready().await?;
        if let Some(kcm) = &assets.kube_controller_manager {
            let args = controller_manager_args(&cluster.dir, caps.apiserver_minor);
            cluster.processes.push(spawn(&cluster.dir, "kube-controller-manager", kcm, &args)?);
        }
        if let Some(setup) = node_setup {
            nodes::start(&mut cluster, setup, caps.apiserver_minor).await?;
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
            // Bounded: a server still starting must not hold the poll.
            if let Ok(Ok(body)) = tokio::time::timeout(Duration::from_secs(2), self.client.request_text(request)).await
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
        let dead = self
            .processes
            .iter_mut()
            .find_map(|p| p.exit_status().map(|s| (p.name().to_string(), s)));
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

impl Drop for ClusterHandle {
    /// On error paths (a cluster failed, startup cancelled): stop this
    /// cluster's processes together rather than one grace period each.
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
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
        ("etcd-ca.crt", &certs.etcd.ca.cert_pem),
        ("etcd-server.crt", &certs.etcd.server.cert_pem),
        ("etcd-server.key", &certs.etcd.server.key_pem),
        ("apiserver-etcd-client.crt", &certs.etcd.apiserver_client.cert_pem),
        ("apiserver-etcd-client.key", &certs.etcd.apiserver_client.key_pem),
    ];
    for (file, text) in files {
        write_private(&dir.join(file), text)?;
    }
    Ok(())
}

/// Keys live here (and in DIR/kubeconfig): readable by the owner only.
pub(super) fn write_private(path: &Path, text: &str) -> Result<()> {
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

pub(super) fn spawn(dir: &Path, name: &str, binary: &Path, args: &[String]) -> Result<ChildProcess> {
    let mut command = Command::new(binary);
    command.args(args).stdin(Stdio::null());
    spawn_command(dir, name, command)
}

/// Starts `command` in `dir` with its output in DIR/NAME.log.
pub(super) fn spawn_command(dir: &Path, name: &str, mut command: Command) -> Result<ChildProcess> {
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).map_err(|e| Error::io(&log_path, e))?;
    let err_log = log.try_clone().map_err(|e| Error::io(&log_path, e))?;
    command.current_dir(dir).stdout(log).stderr(err_log);
    let binary = PathBuf::from(command.get_program());
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

/// An error naming the process, with the part of its log that says why.
fn failure(dir: &Path, cluster: &str, process: &str, what: &str) -> Error {
    let log = dir.join(format!("{process}.log"));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    Error::Sandbox {
        message: format!(
            "cluster {cluster}: {process} {what}; from {}:\n{}",
            log.display(),
            log_excerpt(&text)
        ),
    }
}

/// A Go crash prints its cause first and then a long stack trace: show the
/// cause and the top frames. Otherwise the cause is usually in the last lines.
fn log_excerpt(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let crash = lines.iter().position(|l| l.starts_with("panic:") || l.starts_with("fatal error:"));
    let shown = match crash {
        Some(start) => &lines[start..lines.len().min(start + 20)],
        None => &lines[lines.len().saturating_sub(15)..],
    };
    shown.join("\n")
}

fn sandbox_error(err: &dyn std::fmt::Display) -> Error {
    Error::Sandbox { message: err.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_go_crash_shows_its_cause_not_the_end_of_the_stack() {
        let mut log = String::from("I0101 starting\nfatal error: fault\n[signal SIGSEGV]\n");
        log.push_str(&"\tframe\n".repeat(100));
        let excerpt = log_excerpt(&log);
        assert!(excerpt.starts_with("fatal error: fault\n[signal SIGSEGV]"), "{excerpt}");
        assert_eq!(log_excerpt("a\nb"), "a\nb");
    }
}
