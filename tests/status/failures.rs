//! Failures made on purpose on the shared mesh — and undone — each named by
//! the right check with the right advice.

use std::process::Command;
use std::time::Instant;

use mesh_run::status::model::{Status, Verdict};
use serde_json::Value;

use super::{NS, failed, healthy_again, install, kubectl, status_json};
use crate::support::{SandboxHandle, Test};

pub fn unreachable_context(sandbox: &SandboxHandle) {
    let text = std::fs::read_to_string(sandbox.kubeconfig()).unwrap();
    let mut config: Value = serde_saphyr::from_str(&text).unwrap();
    let cluster = serde_json::json!({"name": "gone", "cluster": {"server": "https://127.0.0.1:1"}});
    let context = serde_json::json!({"name": "gone", "context": {"cluster": "gone", "user": config["users"][0]["name"]}});
    config["clusters"].as_array_mut().unwrap().push(cluster);
    config["contexts"].as_array_mut().unwrap().push(context);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap(); // JSON is YAML
    let (out, status) = status_json(&path, &[]);
    out.status(1);
    let check = failed(&status, "cluster.reachable", "gone");
    assert!(check.message.contains("127.0.0.1:1"), "{check:?}");
    assert!(check.advice.as_deref().unwrap().contains("kubectl --context gone"), "{check:?}");
    // The other clusters are still read and judged.
    assert_eq!(status.failed().count(), 1, "{:?}", status.failed().collect::<Vec<_>>());
    assert!(status.clusters[0].istiods.iter().any(|i| i.external));
}

/// `--watch` draws once, then again when a watched object changes; with
/// `--output json`, one whole status per line.
pub fn watch_redraws_on_a_change(sandbox: &SandboxHandle) {
    let (first, redrawn) = watch_across_a_change(sandbox, &[]);
    assert!(first.contains("0 failed") && first.contains("after: start"), "{first}");
    assert!(redrawn.contains("✗ remote-istiod.leadership"), "{redrawn}");
    assert!(redrawn.contains("after: dp2 namespaces"), "{redrawn}");
    healthy_again(sandbox);

    let (first, redrawn) = watch_across_a_change(sandbox, &["--output", "json"]);
    let parse = |line: &str| -> Status { serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")) };
    let (first, redrawn) = (parse(&first), parse(&redrawn));
    assert_eq!(first.failed().count(), 0, "{:?}", first.failed().collect::<Vec<_>>());
    failed(&redrawn, "remote-istiod.leadership", "dp2");
    healthy_again(sandbox);
}

/// The first output of `status --watch EXTRA` (a text drawing, or a JSON
/// line) and the next one after the controlPlaneClusters annotation of dp2's
/// namespace is removed (and put back, once seen).
fn watch_across_a_change(sandbox: &SandboxHandle, extra: &[&str]) -> (String, String) {
    use std::io::BufRead;
    let json = !extra.is_empty();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-run"))
        .args(["status", "--watch"])
        .args(extra)
        .env("KUBECONFIG", sandbox.kubeconfig())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mesh-run status --watch");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut drawing = String::new();
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            drawing.push_str(&line);
            drawing.push('\n');
            let complete = json || line.starts_with("watching 3 cluster(s)");
            if complete && tx.send(std::mem::take(&mut drawing)).is_err() {
                return;
            }
        }
    });
    let timeout = std::time::Duration::from_secs(30);
    let first = rx.recv_timeout(timeout).expect("a first drawing");
    let changed = Instant::now();
    kubectl(
        sandbox,
        "dp2",
        &["annotate", "namespace", NS, "topology.istio.io/controlPlaneClusters-"],
    );
    let redrawn = rx.recv_timeout(timeout).expect("a redrawing after the change");
    eprintln!("status --watch {extra:?} redrew {:?} after the change", changed.elapsed());
    kubectl(
        sandbox,
        "dp2",
        &["annotate", "namespace", NS, "topology.istio.io/controlPlaneClusters=cluster1"],
    );
    let _ = child.kill();
    let _ = child.wait();
    (first, redrawn)
}

pub fn missing_control_plane_clusters(sandbox: &SandboxHandle) {
    kubectl(
        sandbox,
        "dp2",
        &["annotate", "namespace", NS, "topology.istio.io/controlPlaneClusters-"],
    );
    let (out, status) = status_json(&sandbox.kubeconfig(), &[]);
    out.status(1);
    let check = failed(&status, "remote-istiod.leadership", "dp2");
    assert!(
        check.message.contains("topology.istio.io/controlPlaneClusters missing"),
        "{check:?}"
    );
    assert_eq!(
        check.advice.as_deref(),
        Some("dp.annotate(\"namespace/external-istiod\", #{ \"topology.istio.io/controlPlaneClusters\": \"cluster1\" })")
    );
    kubectl(
        sandbox,
        "dp2",
        &["annotate", "namespace", NS, "topology.istio.io/controlPlaneClusters=cluster1"],
    );
    healthy_again(sandbox);
}

pub fn gateway_address_changed(sandbox: &SandboxHandle) {
    let jsonpath = "jsonpath={.status.loadBalancer.ingress[0].ip}";
    let old = kubectl(
        sandbox,
        "cp",
        &["get", "svc", "-n", "istio-system", "istio-ingressgateway", "-o", jsonpath],
    );
    let (prefix, last) = old.rsplit_once('.').expect("an IPv4 address");
    let new = format!("{prefix}.{}", last.parse::<u8>().unwrap() + 1);
    let patch = |ip: &str| format!(r#"{{"status":{{"loadBalancer":{{"ingress":[{{"ip":"{ip}"}}]}}}}}}"#);
    let set = |ip: &str| {
        kubectl(
            sandbox,
            "cp",
            &[
                "patch",
                "svc",
                "-n",
                "istio-system",
                "istio-ingressgateway",
                "--subresource=status",
                "--type=merge",
                "-p",
                &patch(ip),
            ],
        );
    };
    set(&new);
    let (out, status) = status_json(&sandbox.kubeconfig(), &[]);
    set(&old);
    out.status(1);
    let drift = failed(&status, "drift.gateway-address", "cp");
    for stale in [
        format!("caAddress {old}:15012"),
        format!("discoveryAddress {old}:15012"),
        format!("remotePilotAddress {old}"),
    ] {
        assert!(drift.message.contains(&stale), "{stale}: {drift:?}");
    }
    assert!(drift.message.contains(&format!("is now at {new}")), "{drift:?}");
    assert!(drift.advice.as_deref().unwrap().contains("rerun the install playbook"), "{drift:?}");
    for dp in ["dp1", "dp2"] {
        let address = failed(&status, "remote-istiod.address", dp);
        assert!(
            address.message.contains(&format!(
                "points at {old}, but gateway istio-system/istio-ingressgateway is at {new}"
            )),
            "{address:?}"
        );
    }
    healthy_again(sandbox);
}

pub fn remote_secret_deleted(sandbox: &SandboxHandle) {
    kubectl(sandbox, "cp", &["delete", "secret", "-n", NS, "istio-remote-secret-cluster2"]);
    let (out, status) = status_json(&sandbox.kubeconfig(), &[]);
    out.status(1);
    let check = failed(&status, "remote-istiod.control-plane", "dp2");
    assert!(
        check.message.contains("no control plane holds a remote secret for dp2"),
        "{check:?}"
    );
    assert!(
        check
            .advice
            .as_deref()
            .unwrap()
            .contains("create_remote_secret(#{ type: \"remote\", name: \"cluster2\""),
        "{check:?}"
    );
    assert_eq!(status.clusters[2].data_planes[0].istiod, None);
    install(sandbox);
    healthy_again(sandbox);
}

pub fn token_secret_deleted(sandbox: &SandboxHandle) {
    kubectl(
        sandbox,
        "dp2",
        &[
            "delete",
            "secret",
            "-n",
            NS,
            "istio-reader-service-account-istio-remote-secret-token",
        ],
    );
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    // The token controller forgets the token when its Secret goes: the API server then refuses it.
    let status = loop {
        let (_, status) = status_json(&sandbox.kubeconfig(), &[]);
        let revoked = status
            .checks
            .iter()
            .any(|c| c.check == "secret.credentials" && c.verdict == Verdict::Fail);
        if revoked || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    let check = failed(&status, "secret.credentials", "cp");
    assert!(check.subject.ends_with("/secret/istio-remote-secret-cluster2"), "{check:?}");
    assert!(
        check
            .message
            .contains("rejects the token (401 Unauthorized): its token Secret was deleted"),
        "{check:?}"
    );
    assert!(
        check
            .advice
            .as_deref()
            .unwrap()
            .starts_with("create the remote secret again for cluster2"),
        "{check:?}"
    );
    let edge = status.edges.iter().find(|e| e.subject == check.subject).expect("the secret's edge");
    assert!(!edge.ok, "{edge:?}");
    install(sandbox);
    healthy_again(sandbox);
}

pub fn secret_for_the_wrong_account(sandbox: &SandboxHandle) {
    let playbook = r#"
let cp = cluster("cp");
let dp = cluster("dp2");
dp.create_service_account("external-istiod", "nobody");
cp.apply(dp.create_remote_secret(#{ type: "remote", name: "cluster2", namespace: "external-istiod", service_account: "nobody", create_service_account: false }));
"#;
    let test = Test::new().playbook("wrong.rhai", playbook).kubeconfig(sandbox.kubeconfig());
    test.args(["run", "wrong.rhai"]).run().status(0);
    let (out, status) = status_json(&sandbox.kubeconfig(), &[]);
    out.status(1);
    let check = failed(&status, "secret.credentials", "cp");
    assert!(
        check
            .message
            .contains("authenticates as system:serviceaccount:external-istiod:nobody, who may not list pods"),
        "{check:?}"
    );
    assert!(
        check.advice.as_deref().unwrap().contains("istio-reader-service-account"),
        "{check:?}"
    );
    install(sandbox);
    healthy_again(sandbox);
}
