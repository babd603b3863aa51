// In tests/hardening/ (not tests/hardening.rs): one test binary for all.
//! Issue 15 (hardening), each weakness with the test that failed before its
//! fix: the stdlib comes only from where the user says, a silent API server
//! ends a run within the request deadline, waits tell the truth, and every
//! error has a documented kind with words, not dumps.

use std::process::Command;

use crate::support::{self, Output, SandboxHandle, Test};

mod deadlines;
mod errors;
mod stdlib;
mod waits;

const CLUSTERS: &[&str] = &["control-plane", "data-plane"];

fn sandbox() -> &'static SandboxHandle {
    support::sandbox("default", CLUSTERS)
}

/// Runs `playbook` (written as p.rhai) against the shared sandbox, with `args`.
fn mesh_with(playbook: &str, args: &[&str]) -> Output {
    let mut all = vec!["p.rhai"];
    all.extend_from_slice(args);
    Test::new()
        .kubeconfig(sandbox().kubeconfig())
        .playbook("p.rhai", playbook)
        .args(all)
        .run()
}

/// kubectl of the version under test on `context` of the shared sandbox; panics on failure.
fn kubectl(context: &str, args: &[&str]) -> String {
    let out = Command::new(sandbox().kubectl())
        .arg("--kubeconfig")
        .arg(sandbox().kubeconfig())
        .arg("--context")
        .arg(context)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
