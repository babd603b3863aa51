//! A teardown killed midway (issue 15): its namespaces are left Terminating,
//! and external.rhai run right after must still converge — ensure_namespace
//! waits each Terminating namespace out and creates it again.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::*;

/// Starts teardown.rhai, SIGKILLs it once it has asked for its namespaces'
/// deletion (its first event after those), checks some of external.rhai's
/// namespaces are still Terminating, then runs external.rhai to success.
pub(super) fn teardown_killed_midway_then_external_converges(sandbox: &SandboxHandle, api_server: &str) {
    let playbook = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks/teardown.rhai");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-run"))
        .arg(&playbook)
        .args([
            "--set",
            "CTX_CONTROL_PLANE_CLUSTER=control-plane",
            "--set",
            "CTX_DATA_PLANE_CLUSTER=data-plane",
        ])
        .args(["--output", "json"])
        .env("KUBECONFIG", sandbox.kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start teardown.rhai");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut deleted = Vec::new();
    let mut killed = false;
    for line in stdout.lines().map_while(Result::ok) {
        let event: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let object = event["object"].as_str().unwrap_or_default();
        if event["event"] == "step" && event["action"] == "delete" && object.starts_with("Namespace ") {
            deleted.push(object.to_string());
        } else if !deleted.is_empty() {
            child.kill().expect("SIGKILL teardown");
            killed = true;
            break;
        }
    }
    let _ = child.wait();
    assert!(killed, "teardown ended before it could be killed midway (deleted: {deleted:?})");
    let terminating = terminating_namespaces(sandbox);
    eprintln!("teardown killed after deleting {deleted:?}; Terminating: {terminating:?}");
    assert!(
        terminating
            .iter()
            .any(|ns| ns != "control-plane/sample" && ns != "data-plane/sample"),
        "none of external.rhai's namespaces is Terminating: {terminating:?}"
    );
    let out = run(sandbox, "external.rhai", &inputs(api_server), &[]);
    out.status(0);
    eprintln!(
        "external.rhai after the killed teardown: {}",
        out.stdout.lines().last().unwrap_or_default()
    );
}

/// `context/name` of every Terminating namespace of the sandbox.
fn terminating_namespaces(sandbox: &SandboxHandle) -> Vec<String> {
    let mut out = Vec::new();
    for context in ["control-plane", "data-plane"] {
        let listed = Command::new(sandbox.kubectl())
            .args(["--kubeconfig", &sandbox.kubeconfig().display().to_string(), "--context", context])
            .args(["get", "namespaces", "-o", "json"])
            .env_remove("KUBECONFIG")
            .output()
            .expect("kubectl get namespaces");
        let list: Value = serde_json::from_slice(&listed.stdout).unwrap_or(Value::Null);
        for ns in list["items"].as_array().into_iter().flatten() {
            if ns["status"]["phase"] == "Terminating" {
                out.push(format!("{context}/{}", ns["metadata"]["name"].as_str().unwrap_or_default()));
            }
        }
    }
    out
}
