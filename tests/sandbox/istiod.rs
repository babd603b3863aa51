//! An istiod Pod of a sandbox runs the real istiod: `pilot-discovery` in the
//! Pod's folder, answering on loopback and on the Pod IP, syncing its own
//! cluster with its service account, and the Pod is Ready exactly while
//! istiod answers `/ready`. A killed istiod is restarted, as a kubelet
//! restarts a container; a Pod that goes away takes its istiod along.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{CLUSTERS, create, istio_api, namespace};
use crate::support::{self, wait_for};

const TIMEOUT: Duration = Duration::from_secs(90);

/// What `DIR/<cluster>/istiod/<namespace>-<pod>/ports` says.
struct Ports {
    /// istiod's HTTP port (8080 in the Pod) on loopback.
    http: String,
    /// The same on the Pod IP.
    pod_http: String,
    pid: i32,
}

fn read_ports(folder: &Path) -> Option<Ports> {
    let text = std::fs::read_to_string(folder.join("ports")).ok()?;
    let line = |name: &str| text.lines().find(|l| l.split_whitespace().next() == Some(name)).map(str::to_string);
    let http = line("http")?;
    let mut http = http.split_whitespace().skip(1);
    Some(Ports {
        http: http.next()?.to_string(),
        pod_http: http.next()?.to_string(),
        pid: line("pid")?.split_whitespace().nth(1)?.parse().ok()?,
    })
}

/// Waits for the ports file to name a live process other than `previous`.
async fn wait_for_process(folder: &Path, previous: Option<i32>) -> Ports {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(ports) = read_ports(folder)
            && Some(ports.pid) != previous
            && alive(ports.pid)
        {
            return ports;
        }
        assert!(Instant::now() < deadline, "no (new) istiod process in {}", folder.display());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    state.is_some_and(|s| s != "Z")
}

fn command_line(pid: i32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ")
}

/// `GET path` over HTTP/1.0: the status code and the body.
async fn http_get(address: &str, path: &str) -> (u16, String) {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        std::io::Result::Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .unwrap_or_else(|_| panic!("GET http://{address}{path}: no answer in 5s"))
        .unwrap_or_else(|e| panic!("GET http://{address}{path}: {e}"));
    let code = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

fn ready(pod: Option<&Pod>) -> Option<bool> {
    let conditions = pod?.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.status == "True")
}

fn env_value(pod: &Pod, name: &str) -> Option<String> {
    let container = pod.spec.as_ref()?.containers.iter().find(|c| c.name == "discovery")?;
    container.env.iter().flatten().find(|e| e.name == name)?.value.clone()
}

#[tokio::test]
async fn an_istiod_pod_runs_the_real_istiod_ready_only_while_it_answers() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let client = sandbox.client("control-plane").await;
    let ns = "t-istiod";
    namespace(&client, ns).await;
    let istios = istio_api(client.clone());
    create(
        &istios,
        json!({"apiVersion": "sailoperator.io/v1", "kind": "Istio",
        "metadata": {"name": ns}, "spec": {"namespace": ns, "version": "v1.24.3"}}),
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let available = |d: Option<&Deployment>| {
        let status = d.and_then(|d| d.status.as_ref());
        status.is_some_and(|s| s.available_replicas == Some(1) && s.ready_replicas == Some(1))
    };
    wait_for(deployments, &format!("istiod-{ns}"), available, TIMEOUT).await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let listed = pods.list(&ListParams::default().labels("app=istiod")).await.unwrap().items;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let pod = &listed[0];
    let name = pod.metadata.name.clone().unwrap();
    assert_eq!(ready(Some(pod)), Some(true), "{:#?}", pod.status);
    let folder: PathBuf = sandbox.dir().join("control-plane/istiod").join(format!("{ns}-{name}"));
    let ports = wait_for_process(&folder, None).await;
    let command = command_line(ports.pid);
    assert!(command.contains("pilot-discovery discovery"), "{command}");
    assert!(command.contains(&sandbox.dir().display().to_string()), "{command}");

    // Loopback, and the Pod IP inside the sandbox's network namespace.
    let pod_ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap();
    assert_eq!(ports.pod_http, format!("{pod_ip}:8080"));
    for address in [&ports.http, &ports.pod_http] {
        assert_eq!(http_get(address, "/ready").await.0, 200, "{address}");
    }
    // Its own cluster, through the in-cluster credentials of its service account.
    let (code, body) = http_get(&ports.http, "/debug/clusterz").await;
    assert_eq!(code, 200, "{body}");
    let clusters: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let id = env_value(pod, "CLUSTER_ID").unwrap_or_else(|| "Kubernetes".into());
    let own = clusters.as_array().and_then(|c| c.iter().find(|c| c["id"] == id.as_str()));
    assert_eq!(own.map(|c| c["syncStatus"].clone()), Some(json!("synced")), "{body}");

    // What istiod writes: its root certificate into every namespace.
    namespace(&client, "t-istiod-other").await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "t-istiod-other");
    let has_root = |c: Option<&ConfigMap>| c.and_then(|c| c.data.as_ref()).is_some_and(|d| d.contains_key("root-cert.pem"));
    wait_for(config_maps, "istio-ca-root-cert", has_root, TIMEOUT).await;

    // Killed: NotReady at once, restarted like a container, Ready again.
    // SAFETY: plain syscall on the istiod this sandbox started.
    unsafe { libc::kill(ports.pid, libc::SIGKILL) };
    wait_for(pods.clone(), &name, |p: Option<&Pod>| ready(p) == Some(false), TIMEOUT).await;
    let restarted = wait_for_process(&folder, Some(ports.pid)).await;
    let pod = wait_for(pods.clone(), &name, |p: Option<&Pod>| ready(p) == Some(true), TIMEOUT).await;
    let statuses = pod.status.and_then(|s| s.container_statuses).unwrap_or_default();
    assert_eq!(statuses[0].restart_count, 1, "{statuses:#?}");
    let last = statuses[0].last_state.as_ref().and_then(|s| s.terminated.as_ref());
    assert_eq!(last.map(|t| t.exit_code), Some(137), "{statuses:#?}");
    assert_eq!(http_get(&restarted.http, "/ready").await.0, 200);

    // The Istio deleted: its Pod goes, and the process with it.
    istios.delete(ns, &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while alive(restarted.pid) {
        assert!(Instant::now() < deadline, "istiod {} outlived its Pod", restarted.pid);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = std::fs::read_to_string(folder.join("istiod.log")).unwrap();
    assert_eq!(
        log.matches("---- mesh-run: pilot-discovery starting").count(),
        2,
        "the log keeps both runs"
    );
}
