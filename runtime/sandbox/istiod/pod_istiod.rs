//! One istiod Pod's real istiod, from start to stop, as a kubelet runs its
//! container: the Pod's files and env, its addresses on the sandbox network
//! (`PodPort`s to istiod's loopback ports), the readiness probe every second,
//! and a restart with back-off when the process exits.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
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
/// First wait before a restart; doubled per exit up to [`MAX_BACKOFF`], reset once Ready.
/// (A kubelet waits 10s up to 5min: shorter here, tests wait for it.)
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
    let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
    let label = format!("istiod of Pod {namespace}/{name} on {}", cluster.name);
    let Some(container) = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == CONTAINER))
        .cloned()
    else {
        eprintln!("sandbox: {label}: no container {CONTAINER:?}: not started");
        return;
    };
    let folder = cluster.dir.join("istiod").join(format!("{namespace}-{name}"));
    let ports = match prepare_folder(&folder).and_then(|()| IstiodPorts::allocate().map_err(|e| format!("free ports: {e}"))) {
        Ok(ports) => ports,
        Err(message) => {
            eprintln!("sandbox: {label}: {message}: not started");
            return;
        }
    };
    let _pod_ports = open_pod_ports(&netns, &container, pod_ip, &ports, &label);
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &namespace);
    let probe_path = probe_path(&container);
    let mut view = ContainerView {
        name: CONTAINER.into(),
        ready: false,
        restart_count: 0,
        state: Value::Null,
        last_state: Value::Null,
    };
    let mut backoff = FIRST_BACKOFF;
    let mut started_once = false;
    loop {
        let launched = launch(&cluster, &binary, &folder, &pod, &container, ports).await;
        let mut child = match launched {
            Ok(child) => child,
            Err(message) => {
                eprintln!("sandbox: {label}: {message}; trying again in {backoff:?}");
                if sleep_or_cancel(backoff, &cancel).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let text = ports.file_text(&format!("{namespace}/{name}"), pod_ip);
        let _ = std::fs::write(folder.join("ports"), format!("{text}pid {}\n", child.pid()));
        if started_once {
            view.restarted(&readiness::now());
        } else {
            view.running(&readiness::now());
            eprintln!(
                "sandbox: {label}: pilot-discovery (pid {}) in {}: istiod.log, ports",
                child.pid(),
                folder.display()
            );
        }
        started_once = true;
        report(&pods, &name, &view, &label).await;
        let exit = supervise(&mut child, &pods, &name, &mut view, &probe_path, ports, &cancel, &label).await;
        let Some(code) = exit else {
            let _ = tokio::task::spawn_blocking(move || child.stop(STOP_GRACE)).await;
            return;
        };
        if view.ready {
            backoff = FIRST_BACKOFF;
        }
        view.terminated(code, &readiness::now());
        report(&pods, &name, &view, &label).await;
        eprintln!(
            "sandbox: {label}: pilot-discovery exited (code {code}); restarting in {backoff:?}; see {}",
            folder.join("istiod.log").display()
        );
        if sleep_or_cancel(backoff, &cancel).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The Pod's files, env and a new process; errors are why the container cannot start.
async fn launch(
    cluster: &IstiodCluster,
    binary: &std::path::Path,
    folder: &std::path::Path,
    pod: &Pod,
    container: &Container,
    ports: IstiodPorts,
) -> Result<ChildProcess, String> {
    let objects = PodObjects::fetch(&cluster.client, pod, container).await?;
    let mut env = pod_env::container_env(pod, container, &objects)?;
    let (volumes, notes) = pod_volumes::container_volumes(pod, container, &objects)?;
    for note in notes {
        eprintln!("sandbox: istiod of Pod {}: {note}", pod.name_any());
    }
    pod_volumes::write(folder, &volumes)?;
    // KUBECONFIG names a file of the Pod (the remote profile's `istio-kubeconfig`):
    // the folder's copy, or nothing when the optional Secret is missing.
    if let Some(position) = env.iter().position(|(name, _)| name == "KUBECONFIG") {
        let file = pod_volumes::relative(&env[position].1).map(|p| folder.join(p));
        match file {
            Ok(file) if file.is_file() => env[position].1 = file.display().to_string(),
            _ => {
                env.remove(position);
            }
        }
    }
    let launch = IstiodLaunch {
        binary,
        folder,
        args: container.args.as_deref().unwrap_or_default(),
        env: &env,
        hostname: &pod.name_any(),
        apiserver_port: cluster.apiserver_port,
        ports,
    };
    spawn(folder, launch.command())
}

/// Starts `command` with its output appended to FOLDER/istiod.log: a restart
/// keeps what the previous process said (`kubectl logs --previous`).
fn spawn(folder: &std::path::Path, mut command: std::process::Command) -> Result<ChildProcess, String> {
    use std::io::Write as _;
    let path = folder.join("istiod.log");
    let io = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
    writeln!(log, "---- mesh-run: pilot-discovery starting at {}", readiness::now()).map_err(io)?;
    command.stdout(log.try_clone().map_err(io)?).stderr(log);
    ChildProcess::spawn("istiod", command).map_err(|e| format!("starting unshare and pilot-discovery: {e}"))
}

/// Probes every [`PROBE_PERIOD`] and reports changes, until the process exits
/// (`Some(exit code)`) or `cancel` fires (`None`).
#[allow(clippy::too_many_arguments)]
async fn supervise(
    child: &mut ChildProcess,
    pods: &Api<Pod>,
    name: &str,
    view: &mut ContainerView,
    path: &str,
    ports: IstiodPorts,
    cancel: &CancellationToken,
    label: &str,
) -> Option<i32> {
    let mut tick = tokio::time::interval(PROBE_PERIOD);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tick.tick() => {}
        }
        if let Some(status) = child.exit_status() {
            use std::os::unix::process::ExitStatusExt;
            return Some(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)));
        }
        let ready = readiness::probe(ports.http, path).await;
        if ready != view.ready {
            view.ready = ready;
            report(pods, name, view, label).await;
        }
    }
}

async fn report(pods: &Api<Pod>, name: &str, view: &ContainerView, label: &str) {
    if let Err(e) = readiness::write_status(pods, name, view).await {
        eprintln!("sandbox: {label}: cannot write the Pod's status: {e}");
    }
}

/// The chart's probe path (`/ready`); istiod's HTTP port answers it.
fn probe_path(container: &Container) -> String {
    let probe = container.readiness_probe.as_ref().and_then(|p| p.http_get.as_ref());
    probe.and_then(|h| h.path.clone()).unwrap_or_else(|| "/ready".into())
}

/// `var/run` is bind-mounted over the namespace's `/var/run`: it must exist.
fn prepare_folder(folder: &std::path::Path) -> Result<(), String> {
    let run = folder.join("var/run");
    std::fs::create_dir_all(&run).map_err(|e| format!("{}: {e}", run.display()))
}

/// A listener on `<podIP>:<containerPort>` for each container port istiod serves.
fn open_pod_ports(netns: &str, container: &Container, pod_ip: Ipv4Addr, ports: &IstiodPorts, label: &str) -> Vec<PodPort> {
    let mut open = Vec::new();
    for port in container.ports.iter().flatten() {
        let Some(local) = ports.for_container_port(port.container_port) else {
            eprintln!(
                "sandbox: {label}: container port {} is not one of istiod's: not served",
                port.container_port
            );
            continue;
        };
        let listen = SocketAddrV4::new(pod_ip, port.container_port as u16);
        match PodPort::open(netns, listen, (std::net::Ipv4Addr::LOCALHOST, local).into()) {
            Ok(pod_port) => open.push(pod_port),
            Err(e) => eprintln!("sandbox: {label}: cannot listen on {listen} in {netns}: {e}"),
        }
    }
    open
}

/// `true` when cancelled first.
async fn sleep_or_cancel(duration: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
    }
}
