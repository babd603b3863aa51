// In tests/primitives/ (not tests/primitives.rs): Cargo would build every tests/*.rs as a test binary of its own.
//! The primitives against real API servers, through the mesh-run binary:
//! each test runs a playbook in its own namespace and checks the objects on
//! the server (kubectl, the independent oracle, where it matters) and what
//! mesh-run printed. Run on both pinned versions, like the whole suite (MESH_RUN_TEST_KUBE_VERSION).

use std::process::Command;

use crate::support::{self, Output, SandboxHandle, Test};

mod apply;
mod apply_checks;
mod errors;
mod get_jsonpath;
mod get_raw;
mod objects;
mod rollout_restart;
mod trace;
mod wait;

const CLUSTERS: &[&str] = &["control-plane", "data-plane"];

pub(crate) fn sandbox() -> &'static SandboxHandle {
    support::sandbox("default", CLUSTERS)
}

/// Runs `playbook` (written as p.rhai) against the shared sandbox.
fn mesh(playbook: &str) -> Output {
    mesh_with(playbook, &[])
}

pub(crate) fn mesh_with(playbook: &str, args: &[&str]) -> Output {
    let mut all = vec!["p.rhai"];
    all.extend_from_slice(args);
    Test::new()
        .kubeconfig(sandbox().kubeconfig())
        .playbook("p.rhai", playbook)
        .args(all)
        .own_set()
        .run()
}

/// kubectl of the version under test, on `context` of the sandbox; panics on failure.
pub(crate) fn kubectl(context: &str, args: &[&str]) -> String {
    let out = kubectl_raw(context, args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn kubectl_raw(context: &str, args: &[&str]) -> std::process::Output {
    Command::new(sandbox().kubectl())
        .arg("--kubeconfig")
        .arg(sandbox().kubeconfig())
        .arg("--context")
        .arg(context)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl")
}

/// The `step` events of a `--output json` run.
fn steps(out: &Output) -> Vec<serde_json::Value> {
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "step")
        .collect()
}
