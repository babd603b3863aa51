//! One istiod Pod's real istiod, from start to stop, as a kubelet runs its
//! container: the Pod's files and env, its addresses on the sandbox network
//! (`PodPort`s to istiod's loopback ports), the readiness probe every second,
//! and a restart with back-off when the process exits (the log keeps every
//! run, like `kubectl logs --previous`).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::ResourceExt;
use kube::api::Api;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::command::{IstiodLaunch, IstiodPorts};
use super::pod_objects::PodObjects;
use super::readiness::{self, ContainerView};
use super::{IstiodCluster, pod_env, pod_volumes};
use crate::sandbox::pod_port::PodPort;
use crate::sandbox::process::ChildProcess;

/// How often the readiness probe runs (the chart's probe says 3s; 1s answers sooner).
const PROBE_PERIOD: Duration = Duration::from_secs(1);
/// SIGTERM to SIGKILL when the Pod goes away.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// First wait before a restart; doubled per exit up to [`MAX_BACKOFF`], reset
/// after a run that was Ready. (A kubelet waits 10s up to 5min: shorter here.)
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The istiod container of an `app=istiod` Pod.
const CONTAINER: &str = "discovery";

/// Runs istiod for `pod` (Running, with `pod_ip`) until `cancel` fires.
pub async fn run(
    cluster: Arc<IstiodCluster>,
    binary: Arc<PathBuf>,
    netns: Arc<String>,
    pod: Pod,
    pod_ip: Ipv4Addr,
    cancel: CancellationToken,
) {
    let label = format!(
        "istiod of Pod {}/{} on {}",
        pod.namespace().unwrap_or_default(),
        pod.name_any(),
        cluster.name
    );
    match PodIstiod::new(cluster, binary, pod, pod_ip, label.clone()) {
        Ok(istiod) => {
            let _pod_ports = istiod.open_pod_ports(&netns).await;
            istiod.run(&cancel).await;
        }
        Err(message) => eprintln!("sandbox: {label}: {message}: not started"),
    }
}

/// What one istiod needs, and what a kubelet knows of its container.
struct PodIstiod {
    cluster: Arc<IstiodCluster>,
    binary: Arc<PathBuf>,
    pod: Pod,
    pod_ip: Ipv4Addr,
    container: Container,
    /// DIR/<cluster>/istiod/<namespace>-<pod>
    folder: PathBuf,
    /// Kept across restarts: the Pod's ports splice to them.
    ports: IstiodPorts,
    pods: Api<Pod>,
    view: ContainerView,
    label: String,
}

impl PodIstiod {
    fn new(cluster: Arc<IstiodCluster>, binary: Arc<PathBuf>, pod: Pod, pod_ip: Ipv4Addr, label: String) -> Result<PodIstiod, String> {
        let container = pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == CONTAINER))
            .cloned();
        let container = container.ok_or(format!("no container {CONTAINER:?}"))?;
        let namespace = pod.namespace().unwrap_or_default();
        let folder = cluster.dir.join("istiod").join(format!("{namespace}-{}", pod.name_any()));
        // The folder's `var/run` is bind-mounted over `/var/run`: it must exist.
        let run = folder.join("var/run");
        std::fs::create_dir_all(&run).map_err(|e| format!("{}: {e}", run.display()))?;
        let ports = IstiodPorts::allocate().map_err(|e| format!("free loopback ports: {e}"))?;
        let view = ContainerView {
            name: CONTAINER.into(),
            ready: false,
            restart_count: 0,
            state: Value::Null,
            last_state: Value::Null,
        };
        let pods = Api::namespaced(cluster.client.clone(), &namespace);
        Ok(PodIstiod {
            cluster,
            binary,
            pod,
            pod_ip,
            container,
            folder,
            ports,
            pods,
            view,
            label,
        })
    }

    /// Starts, probes and restarts istiod until `cancel` fires, then stops it.
    async fn run(mut self, cancel: &CancellationToken) {
        let mut backoff = FIRST_BACKOFF;
        let mut runs = 0;
        loop {
            let mut child = match self.launch().await {
                Ok(child) => child,
                Err(message) => {
                    eprintln!("sandbox: {}: {message}; trying again in {backoff:?}", self.label);
                    if sleep_or_cancel(backoff, cancel).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            self.write_ports_file(child.pid());
            if runs == 0 {
                self.view.running(&readiness::now());
                let (pid, folder) = (child.pid(), self.folder.display());
                eprintln!(
                    "sandbox: {}: pilot-discovery (pid {pid}) in {folder}: istiod.log, ports",
                    self.label
                );
            } else {
                self.view.restarted(&readiness::now());
            }
            runs += 1;
            self.report().await;
            let Some(code) = self.supervise(&mut child, cancel).await else {
                let _ = tokio::task::spawn_blocking(move || child.stop(STOP_GRACE)).await;
                return;
            };
            if self.view.ready {
                backoff = FIRST_BACKOFF;
            }
            self.view.terminated(code, &readiness::now());
            self.report().await;
            let log = self.folder.join("istiod.log");
            eprintln!(
                "sandbox: {}: pilot-discovery exited (code {code}); restarting in {backoff:?}; see {}",
                self.label,
                log.display()
            );
            if sleep_or_cancel(backoff, cancel).await {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The Pod's files and env, then a new process; errors are why the container cannot start.
    async fn launch(&self) -> Result<ChildProcess, String> {
        let (pod, container, folder) = (&self.pod, &self.container, self.folder.as_path());
        let objects = PodObjects::fetch(&self.cluster.client, pod, container).await?;
        let mut env = pod_env::container_env(pod, container, &objects)?;
        let (volumes, notes) = pod_volumes::container_volumes(pod, container, &objects)?;
        for note in notes {
            eprintln!("sandbox: {}: {note}", self.label);
        }
        pod_volumes::write(folder, &volumes)?;
        // KUBECONFIG names a file of the Pod (the remote profile's `istio-kubeconfig`):
        // the folder's copy, or nothing when the optional Secret is missing.
        if let Some(position) = env.iter().position(|(name, _)| name == "KUBECONFIG") {
            match pod_volumes::relative(&env[position].1).map(|p| folder.join(p)) {
                Ok(file) if file.is_file() => env[position].1 = file.display().to_string(),
                _ => {
                    env.remove(position);
                }
            }
        }
        let launch = IstiodLaunch {
            binary: &self.binary,
            folder,
            args: container.args.as_deref().unwrap_or_default(),
            env: &env,
            hostname: &pod.name_any(),
            apiserver_port: self.cluster.apiserver_port,
            ports: self.ports,
        };
        spawn(folder, launch.command())
    }

    /// Probes every [`PROBE_PERIOD`] and reports changes, until the process
    /// exits (`Some(exit code)`, 128 + signal when killed) or `cancel` fires (`None`).
    async fn supervise(&mut self, child: &mut ChildProcess, cancel: &CancellationToken) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let path = self.probe_path();
        let mut tick = tokio::time::interval(PROBE_PERIOD);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tick.tick() => {}
            }
            if let Some(status) = child.exit_status() {
                return Some(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)));
            }
            let ready = readiness::probe(self.ports.http, &path).await;
            if ready != self.view.ready {
                self.view.ready = ready;
                self.report().await;
            }
        }
    }

    async fn report(&self) {
        if let Err(e) = readiness::write_status(&self.pods, &self.pod.name_any(), &self.view).await {
            eprintln!("sandbox: {}: cannot write the Pod's status: {e}", self.label);
        }
    }

    /// The chart's probe path (`/ready`); istiod's HTTP port answers it.
    fn probe_path(&self) -> String {
        let probe = self.container.readiness_probe.as_ref().and_then(|p| p.http_get.as_ref());
        probe.and_then(|h| h.path.clone()).unwrap_or_else(|| "/ready".into())
    }

    fn write_ports_file(&self, pid: u32) {
        let pod = format!("{}/{}", self.pod.namespace().unwrap_or_default(), self.pod.name_any());
        let text = format!("{}pid {pid}\n", self.ports.file_text(&pod, self.pod_ip));
        let path = self.folder.join("ports");
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("sandbox: {}: {}: {e}", self.label, path.display());
        }
    }

    /// A listener on `<podIP>:<containerPort>` for each container port istiod serves.
    /// kwok may give a new pod the IP of one that is going: while that pod's
    /// listeners close (their task is aborted, not yet dropped), the address
    /// is in use, so binding is retried for a while rather than given up.
    async fn open_pod_ports(&self, netns: &str) -> Vec<PodPort> {
        let mut open = Vec::new();
        for port in self.container.ports.iter().flatten() {
            let Some(local) = self.ports.for_container_port(port.container_port) else {
                let number = port.container_port;
                eprintln!(
                    "sandbox: {}: container port {number} is not one of istiod's: not served",
                    self.label
                );
                continue;
            };
            let listen = SocketAddrV4::new(self.pod_ip, port.container_port as u16);
            let mut tries = 0;
            loop {
                match PodPort::open(netns, listen, (Ipv4Addr::LOCALHOST, local).into()) {
                    Ok(pod_port) => open.push(pod_port),
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < ADDRESS_IN_USE_TRIES => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    Err(e) => eprintln!("sandbox: {}: cannot listen on {listen} in {netns}: {e}", self.label),
                }
                break;
            }
        }
        open
    }
}

/// 100 ms apart: how long a going pod's listeners may hold its address.
const ADDRESS_IN_USE_TRIES: u32 = 100;

/// Starts `command` with its output appended to FOLDER/istiod.log.
fn spawn(folder: &Path, mut command: std::process::Command) -> Result<ChildProcess, String> {
    use std::io::Write as _;
    let path = folder.join("istiod.log");
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
    writeln!(log, "---- mesh-run: pilot-discovery starting at {}", readiness::now()).map_err(io)?;
    command.stdout(log.try_clone().map_err(io)?).stderr(log);
    ChildProcess::spawn("istiod", command).map_err(|e| format!("starting unshare and pilot-discovery: {e}"))
}

/// `true` when cancelled first.
async fn sleep_or_cancel(duration: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
    }
}
