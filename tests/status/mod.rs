//! `mesh-run status` and `status(clusters)` against real sandbox clusters
//! with real istiods: a healthy multi-data-plane mesh, then each failure made
//! on purpose — and undone — named by the right check with the right advice.

mod meshes;
mod xml;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use mesh_run::status::model::{Check, Status, Verdict};
use serde_json::Value;

use crate::support::{self, Output, SandboxHandle, Test};

const CLUSTERS: &[&str] = &["cp", "dp1", "dp2"];
const INPUTS: &[(&str, &str)] = &[("CTX_CONTROL_PLANE_CLUSTER", "cp"), ("CTX_DATA_PLANE_CLUSTERS", "dp1,dp2")];
const NS: &str = "external-istiod";

fn install(sandbox: &SandboxHandle) {
    let playbook = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks/external-multi-dataplane.rhai");
    let mut args = vec!["run".to_string(), playbook.display().to_string()];
    for (k, v) in INPUTS {
        args.extend(["--set".to_string(), format!("{k}={v}")]);
    }
    Test::new().kubeconfig(sandbox.kubeconfig()).args(args).run().status(0);
}

/// `mesh-run status --output json` with `extra` args, parsed.
fn status_json(kubeconfig: &Path, extra: &[&str]) -> (Output, Status) {
    let out = Test::new()
        .kubeconfig(kubeconfig)
        .args(["status", "--output", "json"])
        .args(extra.iter().copied())
        .run();
    let status: Status = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    (out, status)
}

/// The failed check `name` on `cluster`; panics with every failure otherwise.
fn failed<'a>(status: &'a Status, name: &str, cluster: &str) -> &'a Check {
    let found = status
        .checks
        .iter()
        .find(|c| c.check == name && c.cluster == cluster && c.verdict == Verdict::Fail);
    found.unwrap_or_else(|| {
        let failures: Vec<String> = status
            .failed()
            .map(|c| format!("{} {}: {}", c.check, c.cluster, c.message))
            .collect();
        panic!("no failed {name} on {cluster}; failures: {failures:#?}")
    })
}

fn kubectl(sandbox: &SandboxHandle, context: &str, args: &[&str]) -> String {
    let out = Command::new(sandbox.kubectl())
        .arg("--kubeconfig")
        .arg(sandbox.kubeconfig())
        .args(["--context", context])
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl");
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `status` passes again after a failure was undone.
fn healthy_again(sandbox: &SandboxHandle) {
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (out, status) = status_json(&sandbox.kubeconfig(), &[]);
        if out.code == Some(0) {
            return;
        }
        let failures: Vec<String> = status
            .failed()
            .map(|c| format!("{} {}: {}", c.check, c.cluster, c.message))
            .collect();
        assert!(Instant::now() < deadline, "not healthy again: {failures:#?}");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn a_multi_data_plane_mesh_healthy_then_broken_on_purpose() {
    let sandbox = support::sandbox("status", CLUSTERS);
    install(sandbox);
    healthy_again(sandbox);
    healthy(sandbox);
    unreachable_context(sandbox);
    watch_redraws_on_a_change(sandbox);
    missing_control_plane_clusters(sandbox);
    gateway_address_changed(sandbox);
    remote_secret_deleted(sandbox);
    token_secret_deleted(sandbox);
    secret_for_the_wrong_account(sandbox);
}

fn healthy(sandbox: &SandboxHandle) {
    let started = Instant::now();
    let (out, status) = status_json(&sandbox.kubeconfig(), &[]);
    eprintln!("status of {} clusters: {:?}", CLUSTERS.len(), started.elapsed());
    out.status(0);
    assert!(status.healthy);
    // The graph: one external istiod on cp holding a secret per data plane, each served by it.
    let cp = &status.clusters[0];
    let istiod = cp.istiods.iter().find(|i| i.external).expect("the external istiod");
    assert_eq!((istiod.namespace.as_str(), istiod.cluster_id.as_str()), (NS, "cluster1"));
    assert_eq!(istiod.pods.len(), 1, "{istiod:?}");
    let secrets: Vec<(&str, Option<&str>, Option<&str>)> = istiod
        .remote_secrets
        .iter()
        .map(|s| (s.cluster_name.as_str(), s.context.as_deref(), s.account.as_deref()))
        .collect();
    assert_eq!(
        secrets,
        vec![
            (
                "cluster1",
                Some("dp1"),
                Some("system:serviceaccount:external-istiod:istiod-external-istiod")
            ),
            (
                "cluster2",
                Some("dp2"),
                Some("system:serviceaccount:external-istiod:istio-reader-service-account")
            ),
        ]
    );
    for (k, context) in ["dp1", "dp2"].iter().enumerate() {
        let dp = &status.clusters[k + 1].data_planes[0];
        assert_eq!(status.clusters[k + 1].context, *context);
        assert_eq!(dp.istiod.as_deref(), Some(istiod.id.as_str()), "{context}");
        assert_eq!(dp.cluster_id, format!("cluster{}", k + 1));
    }
    for check in [
        "secret.credentials",
        "istiod.clusterz",
        "remote-istiod.probe",
        "drift.gateway-address",
        "remote-istiod.leadership",
    ] {
        assert!(
            status.checks.iter().any(|c| c.check == check && c.verdict == Verdict::Pass),
            "{check} passed"
        );
    }
    // No token in any output.
    let token_secret = kubectl(
        sandbox,
        "dp2",
        &[
            "get",
            "secret",
            "-n",
            NS,
            "istio-reader-service-account-istio-remote-secret-token",
            "-o",
            "jsonpath={.data.token}",
        ],
    );
    let token = String::from_utf8(base64_decode(&token_secret)).unwrap();
    assert!(
        !out.stdout.contains(&token) && !out.stdout.contains(&token_secret),
        "the token was printed"
    );

    // JSON round-trips through the documented model.
    let raw: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(serde_json::to_value(&status).unwrap(), raw);
    assert_eq!(raw["schemaVersion"], 1);

    // The text tree, plain when not on a terminal.
    let text = Test::new().kubeconfig(sandbox.kubeconfig()).arg("status").run();
    text.status(0)
        .stdout_contains("external istiod external-istiod/external-istiod")
        .stdout_contains("remote secret istio-remote-secret-cluster2 → cluster cluster2 = context dp2")
        .stdout_contains("✓ istiod.clusterz");
    assert!(!text.stdout.contains('\x1b'), "colour without a terminal");

    // The SVG: well-formed, every cluster, istiod, data plane and edge drawn.
    let svg = Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .args(["status", "--output", "svg"])
        .run();
    svg.status(0);
    xml::check_well_formed(&svg.stdout).unwrap_or_else(|e| panic!("{e}\n{}", svg.stdout));
    for c in &status.clusters {
        assert!(svg.stdout.contains(&format!(">{}</text>", c.context)), "{}", c.context);
        for i in &c.istiods {
            assert!(svg.stdout.contains(&format!("{}/{}</text>", i.namespace, i.revision)), "{}", i.id);
        }
        for d in &c.data_planes {
            assert!(
                svg.stdout.contains(&format!("data plane {}/{}", d.namespace, d.revision)),
                "{}",
                d.id
            );
        }
    }
    assert_eq!(status.edges.len(), 4, "two secrets, two webhooks: {:?}", status.edges);
    for e in &status.edges {
        assert!(svg.stdout.contains(&format!("<title>{} → {}</title>", e.from, e.to)), "{e:?}");
    }
    let dot = Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .args(["status", "--output", "dot"])
        .run();
    dot.status(0)
        .stdout_contains("digraph mesh {")
        .stdout_contains("subgraph cluster_2");

    // The primitive returns the same shape to a playbook.
    let playbook = r#"
let s = status([cluster("cp"), cluster("dp1"), cluster("dp2")]);
if !s.healthy { throw "unhealthy"; }
let dp = s.clusters[2].dataPlanes[0];
print(`served-by=${dp.istiod} secrets=${s.clusters[0].istiods.filter(|i| i.external)[0].remoteSecrets.len()}`);
"#;
    Test::new()
        .playbook("s.rhai", playbook)
        .kubeconfig(sandbox.kubeconfig())
        .args(["run", "s.rhai"])
        .run()
        .status(0)
        .stdout_contains("served-by=cp/external-istiod/external-istiod secrets=2");
    // Usage: a context the kubeconfig lacks.
    Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .args(["status", "--context", "nope"])
        .run()
        .status(2)
        .stderr_contains("unknown kubeconfig context \"nope\"");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s.trim()).expect("base64")
}

fn unreachable_context(sandbox: &SandboxHandle) {
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

/// `--watch` draws once, then again when a watched object changes.
fn watch_redraws_on_a_change(sandbox: &SandboxHandle) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-run"))
        .args(["status", "--watch"])
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
            if line.starts_with("watching 3 cluster(s)") && tx.send(std::mem::take(&mut drawing)).is_err() {
                return;
            }
        }
    });
    let timeout = std::time::Duration::from_secs(30);
    let first = rx.recv_timeout(timeout).expect("a first drawing");
    assert!(first.contains("0 failed") && first.contains("after: start"), "{first}");
    let changed = Instant::now();
    kubectl(
        sandbox,
        "dp2",
        &["annotate", "namespace", NS, "topology.istio.io/controlPlaneClusters-"],
    );
    let redrawn = rx.recv_timeout(timeout).expect("a redrawing after the change");
    eprintln!("status --watch redrew {:?} after the change", changed.elapsed());
    kubectl(
        sandbox,
        "dp2",
        &["annotate", "namespace", NS, "topology.istio.io/controlPlaneClusters=cluster1"],
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(redrawn.contains("✗ remote-istiod.leadership"), "{redrawn}");
    assert!(redrawn.contains("after: dp2 namespaces"), "{redrawn}");
    healthy_again(sandbox);
}

fn missing_control_plane_clusters(sandbox: &SandboxHandle) {
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

fn gateway_address_changed(sandbox: &SandboxHandle) {
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

fn remote_secret_deleted(sandbox: &SandboxHandle) {
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

fn token_secret_deleted(sandbox: &SandboxHandle) {
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

fn secret_for_the_wrong_account(sandbox: &SandboxHandle) {
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
