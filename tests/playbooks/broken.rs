//! The external topology broken on purpose, on the real bed (a real istiod,
//! the simulated gateway hop, Sail's probe): each mistake fails the
//! playbook's wait with an explanation that names its cause, and fixing it
//! converges. Own sandbox: the breakage must not reach other tests.

use kube::api::{Api, DeleteParams, DynamicObject, ListParams};

use super::*;
use crate::support::{self, Test};

const CLUSTERS: &[&str] = &["control-plane", "data-plane"];

/// `istio::wait_ready` on `istio/external-istiod` of `context`, as external.rhai's steps 8.7-8.8 do.
fn wait_istio(sandbox: &SandboxHandle, context: &str, timeout: &str) -> crate::support::Output {
    Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .playbook(
            "wait.rhai",
            &format!(
                r#"import "mesh/istio" as istio;
                istio::wait_ready(cluster("{context}"), "istio/external-istiod", "{timeout}");"#
            ),
        )
        .args(["run", "wait.rhai"])
        .run()
}

fn wait_control_plane(sandbox: &SandboxHandle, timeout: &str) -> crate::support::Output {
    wait_istio(sandbox, "control-plane", timeout)
}

fn wait_data_plane(sandbox: &SandboxHandle, timeout: &str) -> crate::support::Output {
    wait_istio(sandbox, "data-plane", timeout)
}

/// Until the data plane's Istio is no longer Ready (the probe runs every 3 s).
async fn until_not_ready(dp: &kube::Client) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ready(&sail_object(dp, "Istio", "istios", "external-istiod").await) == "True" {
        assert!(std::time::Instant::now() < deadline, "the data plane's Istio stayed Ready");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// Deletes the external istiod's pod, as a restart would: the new process reads the secret anew.
async fn restart_istiod(cp: &kube::Client) {
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(cp.clone(), "external-istiod");
    for pod in pods.list(&ListParams::default().labels("app=istiod")).await.unwrap() {
        pods.delete(&pod.metadata.name.unwrap(), &DeleteParams::default()).await.unwrap();
    }
}

#[tokio::test]
async fn each_mistake_fails_the_wait_naming_its_cause_and_the_fix_converges() {
    let sandbox = support::sandbox("broken", CLUSTERS);
    let api_server = sandbox.server("data-plane");
    run(sandbox, "external.rhai", &inputs(&api_server), &[]).status(0);
    let cp = sandbox.client("control-plane").await;
    let dp = sandbox.client("data-plane").await;

    // Step 8.6 missing: without the VirtualService the gateway routes nothing
    // to istiod, and the probe's connection to the published address is refused.
    let vs = Api::<DynamicObject>::namespaced_with(cp.clone(), "external-istiod", &networking("VirtualService", "virtualservices"));
    vs.delete("external-istiod-vs", &DeleteParams::default()).await.unwrap();
    until_not_ready(&dp).await;
    wait_data_plane(sandbox, "20s")
        .status(1)
        .stderr_contains("error[timeout]")
        .stderr_contains("RemoteIstiodNotReady")
        .stderr_contains("Sail's readiness probe of the remote istiod:")
        .stderr_contains("Connection refused");
    run(sandbox, "external.rhai", &inputs(&api_server), &[]).status(0);
    wait_data_plane(sandbox, "60s").status(0);

    // A wrong `server` in the remote secret: the restarted istiod cannot reach
    // the config cluster and is never ready.
    // (The running istiod still holds the old secret: the run itself may pass.)
    let _ = run(sandbox, "external.rhai", &inputs("https://127.0.0.1:9"), &["--timeout", "30s"]);
    restart_istiod(&cp).await;
    until_not_ready(&dp).await;
    // The control plane says its istiod is not ready; the data plane's probe
    // finds no ready istiod behind the gateway.
    wait_control_plane(sandbox, "20s")
        .status(1)
        .stderr_contains("IstiodNotReady")
        .stderr_contains("not all istiod pods are ready");
    wait_data_plane(sandbox, "10s")
        .status(1)
        .stderr_contains("Sail's readiness probe of the remote istiod: TLS to istiod-external-istiod.external-istiod.svc");
    // The fix: the right secret, then a restart (istiod reads its kubeconfig
    // only at start, on real clusters too), then the playbook converges.
    let _ = run(sandbox, "external.rhai", &inputs(&api_server), &["--timeout", "15s"]);
    restart_istiod(&cp).await;
    run(sandbox, "external.rhai", &inputs(&api_server), &[]).status(0);
    wait_data_plane(sandbox, "90s").status(0);

    // A remote secret for an account without the chart's RBAC: istiod
    // authenticates but may not read the cluster, so it never becomes ready.
    let wrong_account = Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .playbook(
            "wrong.rhai",
            &format!(
                r#"let dp = cluster("data-plane");
                let cp = cluster("control-plane");
                cp.apply(dp.create_remote_secret(#{{ type: "config", name: "cluster1", namespace: "external-istiod",
                    service_account: "default", create_service_account: false, server: "{api_server}" }}));"#
            ),
        )
        .args(["run", "wrong.rhai"])
        .run();
    wrong_account.status(0);
    restart_istiod(&cp).await;
    until_not_ready(&dp).await;
    wait_control_plane(sandbox, "20s")
        .status(1)
        .stderr_contains("not all istiod pods are ready");
    let log = istiod_log(sandbox.dir(), "control-plane", "external-istiod");
    assert!(log.contains("forbidden"), "istiod's log names the RBAC refusal");
    wait_data_plane(sandbox, "10s")
        .status(1)
        .stderr_contains("Sail's readiness probe of the remote istiod:");
    // The fix: the right secret, then a restart (istiod reads its kubeconfig
    // only at start, on real clusters too), then the playbook converges.
    let _ = run(sandbox, "external.rhai", &inputs(&api_server), &["--timeout", "15s"]);
    restart_istiod(&cp).await;
    run(sandbox, "external.rhai", &inputs(&api_server), &[]).status(0);
    wait_data_plane(sandbox, "90s").status(0);
}

/// Every istiod.log of `namespace`'s istiods on `cluster`, concatenated.
fn istiod_log(dir: &std::path::Path, cluster: &str, namespace: &str) -> String {
    let folder = dir.join(cluster).join("istiod");
    std::fs::read_dir(&folder)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(namespace))
                .filter_map(|e| std::fs::read_to_string(e.path().join("istiod.log")).ok())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}
