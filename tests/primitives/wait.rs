//! `wait`: watch-based, before the object or its kind exists, timeouts that
//! explain, fail_if, and stopping within a second on Ctrl-C.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{kubectl, mesh, mesh_with, sandbox};

/// An Istio resource for the simulated Sail Operator, in its own namespace.
/// Its values leave out the chart's HorizontalPodAutoscaler and PodDisruptionBudget:
/// these tests are about `wait`, not about what the chart renders.
fn istio(name: &str, namespace: &str) -> String {
    format!(
        r#"
let cp = cluster("control-plane");
cp.ensure_namespace("{namespace}");
cp.apply(`
apiVersion: sailoperator.io/v1
kind: Istio
metadata:
  name: {name}
spec:
  version: v1.24.3
  namespace: {namespace}
  values:
    pilot:
      autoscaleEnabled: false
    global:
      defaultPodDisruptionBudget:
        enabled: false
`);
"#
    )
}

#[test]
fn waits_for_a_condition_written_by_the_simulated_operator() {
    let playbook = istio("prim-wait-ready", "prim-wait-ready")
        + r#"
let o = cp.wait("istio/prim-wait-ready", #{ "for": "condition=Ready", timeout: "60s" });
print(`state=${o.status.state}`);
let o = cp.wait("istios.sailoperator.io/prim-wait-ready", #{ wait_for: ["condition=Reconciled", "jsonpath={.status.state}=Healthy"] });
"#;
    mesh(&playbook)
        .status(0)
        .stdout_contains("state=Healthy")
        .stdout_contains("wait           istio/prim-wait-ready");
}

#[test]
fn waits_for_an_object_that_does_not_exist_yet() {
    kubectl("control-plane", &["create", "namespace", "prim-wait-create"]);
    let creator = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(1500));
        kubectl("control-plane", &["create", "configmap", "late", "-n", "prim-wait-create"]);
    });
    mesh(r#"cluster("control-plane").wait("cm/late", #{ namespace: "prim-wait-create", "for": "create", timeout: "30s" });"#)
        .status(0)
        .stdout_contains("wait           cm/late");
    creator.join().unwrap();
}

#[test]
fn waits_for_a_kind_whose_crd_is_not_installed_yet() {
    let crd = r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
      "metadata": {"name": "gadgets.example.com"},
      "spec": {"group": "example.com", "scope": "Cluster", "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]}}"#;
    let gadget = r#"{"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g1"}}"#;
    let installer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("crd.json"), crd).unwrap();
        std::fs::write(dir.path().join("gadget.json"), gadget).unwrap();
        kubectl("data-plane", &["create", "-f", dir.path().join("crd.json").to_str().unwrap()]);
        // The kind becomes servable a moment after the CRD is stored.
        for _ in 0..50 {
            if super::kubectl_raw("data-plane", &["create", "-f", dir.path().join("gadget.json").to_str().unwrap()])
                .status
                .success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("could not create the Gadget");
    });
    mesh(r#"cluster("data-plane").wait("gadget/g1", #{ "for": "create", timeout: "60s" });"#)
        .status(0)
        .stdout_contains("wait           gadget/g1");
    installer.join().unwrap();
}

#[test]
fn a_timeout_explains_what_was_seen() {
    let playbook = istio("prim-wait-timeout", "prim-wait-timeout")
        + r#"
cp.wait("istio/prim-wait-timeout", #{ "for": "condition=Ready", timeout: "60s" });
cp.wait("istio/prim-wait-timeout", #{ "for": "condition=Upgraded", timeout: "2s" });
"#;
    let started = Instant::now();
    mesh(&playbook)
        .status(1)
        .stderr_contains(
            "error[timeout]: timed out after 2s waiting for Istio prim-wait-timeout on control-plane (condition=Upgraded=True)",
        )
        .stderr_contains("the object exists")
        .stderr_contains("Ready = True  reason: Ready")
        .stderr_contains("observedGeneration 1, generation 1")
        .stderr_contains("--> p.rhai:21:");
    assert!(started.elapsed() < Duration::from_secs(30));
    mesh(r#"cluster("control-plane").wait("istio/prim-never-created", #{ timeout: "1s" });"#)
        .status(1)
        .stderr_contains("the object does not exist");
    mesh(r#"cluster("control-plane").wait("svc/kubernetes", #{ "for": "jsonpath={.spec.type}=LoadBalancer", timeout: "1s" });"#)
        .status(1)
        .stderr_contains("last value of {.spec.type}: \"ClusterIP\"");
}

#[test]
fn fail_if_stops_at_a_failure_state() {
    // The target namespace does not exist: the simulated operator reports ReconcileError.
    let playbook = r#"
let cp = cluster("control-plane");
cp.apply(`{"apiVersion": "sailoperator.io/v1", "kind": "Istio", "metadata": {"name": "prim-wait-fail"},
  "spec": {"version": "v1.24.3", "namespace": "prim-no-such-namespace"}}`);
cp.wait("istio/prim-wait-fail", #{ timeout: "60s", fail_if: "condition=Reconciled=False" });
"#;
    let started = Instant::now();
    mesh(playbook)
        .status(1)
        .stderr_contains("error[fail_state]")
        .stderr_contains("ReconcileError")
        .stderr_contains("prim-no-such-namespace");
    assert!(started.elapsed() < Duration::from_secs(30), "fail_if must not wait for the timeout");
}

#[test]
fn errors_are_caught_by_kind() {
    mesh(
        r#"
try {
    cluster("control-plane").wait("cm/prim-absent", #{ timeout: "1s" });
} catch (e) {
    print(`caught kind=${e.kind}`);
}
"#,
    )
    .status(0)
    .stdout_contains("caught kind=timeout");
}

#[test]
fn the_whole_run_has_a_timeout() {
    mesh_with(
        r#"cluster("control-plane").wait("cm/prim-absent-2", #{ timeout: "5m" });"#,
        &["--timeout", "2s"],
    )
    .status(1)
    .stderr_contains("error[timeout]")
    .stderr_contains("--timeout");
}

#[test]
fn ctrl_c_stops_a_long_wait_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let playbook = dir.path().join("p.rhai");
    std::fs::write(
        &playbook,
        "let cp = cluster(\"control-plane\");\ncp.wait(\"cm/prim-forever\", #{ timeout: \"10m\" });\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-run"))
        .arg(&playbook)
        .env("KUBECONFIG", sandbox().kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let signalled = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(signalled.elapsed() < Duration::from_secs(1), "still running a second after Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("error[interrupted]: interrupted by Ctrl-C"), "{stderr}");
    assert!(stderr.contains("p.rhai:2:"), "says where: {stderr}");
}
