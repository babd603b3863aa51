//! rotate-remote-secret.rhai on a mesh of one control plane and two data
//! planes (external-multi-dataplane.rhai), read back from the servers and
//! from the real istiod's `/debug/clusterz` while it runs.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};

use super::*;
use crate::support;

const CLUSTERS: &[&str] = &["cp", "dp1", "dp2"];
const INPUTS: &[(&str, &str)] = &[("CTX_CONTROL_PLANE_CLUSTER", "cp"), ("CTX_DATA_PLANE_CLUSTERS", "dp1,dp2")];
const NS: &str = "external-istiod";

/// The kubeconfig in the remote secret `name` (key `key`) on the control plane.
async fn remote_kubeconfig(cp: &kube::Client, name: &str, key: &str) -> String {
    let secret = Api::<Secret>::namespaced(cp.clone(), NS).get(name).await.unwrap();
    String::from_utf8(secret.data.unwrap()[key].0.clone()).unwrap()
}

/// Whether `kubectl auth whoami` succeeds with `kubeconfig`.
fn authenticates(sandbox: &SandboxHandle, kubeconfig: &str) -> bool {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), kubeconfig).unwrap();
    let out = Command::new(sandbox.kubectl())
        .arg("--kubeconfig")
        .arg(file.path())
        .env_remove("KUBECONFIG")
        .args(["auth", "whoami"])
        .output()
        .expect("run kubectl");
    out.status.success()
}

/// The API server looks a legacy token's Secret up through a cache: give it a few seconds.
async fn assert_revoked(sandbox: &SandboxHandle, kubeconfig: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while authenticates(sandbox, kubeconfig) {
        assert!(Instant::now() < deadline, "{what}: the old token still authenticates");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Names of the token Secrets of `account`, and which of them are still labelled pending.
async fn token_secrets(dp: &kube::Client, account: &str) -> (Vec<String>, Vec<String>) {
    let secrets = Api::<Secret>::namespaced(dp.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap();
    let ours: Vec<&Secret> = secrets
        .items
        .iter()
        .filter(|s| s.type_.as_deref() == Some("kubernetes.io/service-account-token"))
        .filter(|s| {
            let annotations = s.metadata.annotations.clone().unwrap_or_default();
            annotations.get("kubernetes.io/service-account.name").map(String::as_str) == Some(account)
        })
        .collect();
    let name = |s: &&Secret| s.metadata.name.clone().unwrap_or_default();
    let pending = ours
        .iter()
        .filter(|s| s.metadata.labels.as_ref().is_some_and(|l| l.contains_key("mesh-run.io/rotation")))
        .map(name)
        .collect();
    (ours.iter().map(name).collect(), pending)
}

/// After a rotation: one token Secret, not pending, the one the remote secret says it uses.
async fn assert_rotated(cp: &kube::Client, dp: &kube::Client, remote_secret: &str, account: &str) -> String {
    let (tokens, pending) = token_secrets(dp, account).await;
    assert_eq!(tokens.len(), 1, "{account}: one token Secret left: {tokens:?}");
    assert!(pending.is_empty(), "{account}: still pending: {pending:?}");
    let secret = Api::<Secret>::namespaced(cp.clone(), NS).get(remote_secret).await.unwrap();
    let annotations = secret.metadata.annotations.unwrap_or_default();
    assert_eq!(annotations.get("mesh-run.io/token-secret"), Some(&tokens[0]), "{remote_secret}");
    tokens[0].clone()
}

/// `/debug/clusterz` of the istiod, sampled every 20 ms until `stop`.
fn sample_clusterz(dir: std::path::PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<serde_json::Value>> {
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            samples.push(rendered::istiod_debug(&dir, "cp", NS, "/debug/clusterz"));
            std::thread::sleep(Duration::from_millis(20));
        }
        samples
    })
}

#[tokio::test]
async fn rotation_keeps_the_cluster_in_istiods_view_and_revokes_the_old_token() {
    let sandbox = support::sandbox("rotate", CLUSTERS);
    run(sandbox, "external-multi-dataplane.rhai", INPUTS, &[]).status(0);
    let (cp, dp1, dp2) = (sandbox.client("cp").await, sandbox.client("dp1").await, sandbox.client("dp2").await);
    let address = ingress_address(&cp, "istio-system").await;
    let mesh = |cluster_id, account| rendered::Mesh {
        namespace: NS,
        revision: NS,
        cluster_id,
        network: "network1",
        address: &address,
        account,
    };
    rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp2, &mesh("cluster2", "istio-reader-service-account")).await;

    // A dry run changes nothing.
    let sets = [INPUTS, &[("ROTATE", "cluster2")]].concat();
    let before = remote_kubeconfig(&cp, "istio-remote-secret-cluster2", "cluster2").await;
    run(sandbox, "rotate-remote-secret.rhai", &sets, &["--dry-run"])
        .status(0)
        .stdout_contains("skipped (dry run)");
    assert_eq!(remote_kubeconfig(&cp, "istio-remote-secret-cluster2", "cluster2").await, before);
    assert_eq!(token_secrets(&dp2, "istio-reader-service-account").await.0.len(), 1);

    // cluster2, with istiod's view sampled throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_clusterz(sandbox.dir().to_path_buf(), stop.clone());
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let out = run(sandbox, "rotate-remote-secret.rhai", &sets, &[]);
    eprintln!("rotate-remote-secret.rhai (cluster2): {:?}", started.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    out.status(0).stdout_lacks("ZXlK").stdout_lacks("eyJ");
    let samples = sampler.join().unwrap();
    let status = |sample: &serde_json::Value| -> Option<String> {
        let list = sample.as_array()?;
        let entry = list.iter().find(|c| c["id"] == "cluster2")?;
        entry["syncStatus"].as_str().map(str::to_string)
    };
    let statuses: Vec<Option<String>> = samples.iter().map(status).collect();
    let syncing = statuses.iter().filter(|s| s.as_deref() == Some("syncing")).count();
    eprintln!(
        "clusterz samples during the rotation: {}, cluster2 syncing in {syncing}",
        samples.len()
    );
    assert!(samples.len() > 10, "sampled: {}", samples.len());
    // Never absent, closed or timed out; istiod lists the swapped-in cluster as
    // `syncing` until it synced, while the old one keeps serving (make-before-break).
    for (i, s) in statuses.iter().enumerate() {
        assert!(
            matches!(s.as_deref(), Some("synced" | "syncing")),
            "sample {i}: cluster2 {s:?}: {}",
            samples[i]
        );
    }
    assert_eq!(statuses.last().unwrap().as_deref(), Some("synced"));
    let token = assert_rotated(&cp, &dp2, "istio-remote-secret-cluster2", "istio-reader-service-account").await;
    assert_eq!(token, "istio-reader-service-account-token-a");
    assert_revoked(sandbox, &before, "cluster2").await;
    let after = remote_kubeconfig(&cp, "istio-remote-secret-cluster2", "cluster2").await;
    assert!(authenticates(sandbox, &after), "the new token authenticates");
    rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp2, &mesh("cluster2", "istio-reader-service-account")).await;

    // cluster1, the config cluster: istiod reads its kubeconfig only at start, so it is restarted.
    let old_config = remote_kubeconfig(&cp, "istio-kubeconfig", "config").await;
    let account = "istiod-external-istiod";
    let config_sets = [INPUTS, &[("ROTATE", "cluster1")]].concat();
    run(sandbox, "rotate-remote-secret.rhai", &config_sets, &[])
        .status(0)
        .stdout_contains("rolled out");
    let token = assert_rotated(&cp, &dp1, "istio-kubeconfig", account).await;
    assert_eq!(token, "istiod-external-istiod-token-a");
    assert_revoked(sandbox, &old_config, "cluster1").await;
    rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp1, &mesh("cluster1", "istiod-external-istiod")).await;

    // cluster2 again, killed midway: a wrong API server address makes the
    // swapped-in cluster never sync, so the run waits there; killed, the old
    // token still serves; a rerun with the right address converges.
    let old = remote_kubeconfig(&cp, "istio-remote-secret-cluster2", "cluster2").await;
    let reader = "istio-reader-service-account";
    let playbook = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks/rotate-remote-secret.rhai");
    let mut command = Command::new(env!("CARGO_BIN_EXE_mesh-run"));
    command.arg("run").arg(&playbook).env("KUBECONFIG", sandbox.kubeconfig());
    let wrong = format!("{},https://127.0.0.1:1", sandbox.server("dp1"));
    for (k, v) in [&sets[..], &[("DATA_PLANE_API_SERVERS", wrong.as_str())]].concat() {
        command.arg("--set").arg(format!("{k}={v}"));
    }
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = command.stdout(log.reopen().unwrap()).stderr(log.reopen().unwrap()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let secret = Api::<Secret>::namespaced(cp.clone(), NS)
            .get("istio-remote-secret-cluster2")
            .await
            .unwrap();
        let annotations = secret.metadata.annotations.unwrap_or_default();
        if annotations.get("mesh-run.io/token-secret").map(String::as_str) == Some("istio-reader-service-account-token-b") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the remote secret was never swapped; the run said:\n{}",
            std::fs::read_to_string(log.path()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(child.try_wait().unwrap().is_none(), "still waiting for istiod");
    let killed = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    let (tokens, pending) = token_secrets(&dp2, reader).await;
    assert_eq!(pending, vec!["istio-reader-service-account-token-b".to_string()], "{tokens:?}");
    assert_eq!(tokens.len(), 2, "the old token is kept: {tokens:?}");
    assert!(authenticates(sandbox, &old), "the old token still works after the kill");
    // A killed run cannot release its set: a rerun is refused until its
    // Lease expires (30 s after its last renewal), or until someone sure
    // that run is gone deletes the Lease, as here.
    run(sandbox, "rotate-remote-secret.rhai", &sets, &[])
        .status(1)
        .stderr_contains("error[locked]: another mesh-run run holds ApplySet `rotate-remote-secret`")
        .stderr_contains(&format!("/{killed}/"));
    for context in CLUSTERS {
        let leases: Api<Lease> = Api::namespaced(sandbox.client(context).await, "mesh-run");
        let _ = leases.delete("rotate-remote-secret", &Default::default()).await;
    }
    run(sandbox, "rotate-remote-secret.rhai", &sets, &[])
        .status(0)
        .stdout_contains("to token Secret istio-reader-service-account-token-b");
    let token = assert_rotated(&cp, &dp2, "istio-remote-secret-cluster2", reader).await;
    assert_eq!(
        token, "istio-reader-service-account-token-b",
        "the rerun finished the same rotation"
    );
    assert_revoked(sandbox, &old, "cluster2, second rotation").await;
    rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp2, &mesh("cluster2", reader)).await;
}
