//! `mesh-run status` and `status(clusters)` against real sandbox clusters
//! with real istiods: a healthy multi-data-plane mesh, then each failure made
//! on purpose — and undone — named by the right check with the right advice.

mod failures;
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
    failures::unreachable_context(sandbox);
    failures::watch_redraws_on_a_change(sandbox);
    failures::missing_control_plane_clusters(sandbox);
    failures::gateway_address_changed(sandbox);
    failures::remote_secret_deleted(sandbox);
    failures::token_secret_deleted(sandbox);
    failures::secret_for_the_wrong_account(sandbox);
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
    let revision = cp.revisions.iter().find(|r| r.name == NS).expect("IstioRevision external-istiod");
    assert_eq!(
        (revision.namespace.as_str(), revision.state.as_str()),
        (NS, "Healthy"),
        "{revision:?}"
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

/// Usage errors need no cluster: exit 2 with what to do.
#[test]
fn status_usage_errors_exit_2() {
    Test::new()
        .args(["status", "--kubeconfig", "/nonexistent/kubeconfig"])
        .run()
        .status(2)
        .stderr_contains("cannot read kubeconfig /nonexistent/kubeconfig");
    Test::new()
        .args(["status", "--output", "png"])
        .run()
        .status(2)
        .stderr_contains("invalid value 'png'");
    let empty = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        empty.path(),
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    Test::new()
        .kubeconfig(empty.path())
        .args(["status", "--watch", "--output", "json"])
        .run()
        .status(2)
        .stderr_contains("the kubeconfig has no contexts");
    Test::new()
        .args(["status", "--help"])
        .run()
        .status(0)
        .stdout_contains("Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 usage.");
}
