//! The error table, complete and true: exec on a missing pod is `not_found`;
//! HTTP 401 is kind `api` in words; SIGTERM is reported as itself;
//! `ensure_namespace` outlasts a Terminating namespace; `http_get` never
//! shows a URL's credentials.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{kubectl, mesh_with, sandbox};
use crate::support::Test;

#[test]
fn exec_on_a_missing_pod_is_not_found() {
    mesh_with(r#"cluster("control-plane").exec("no-such-pod", ["true"]);"#, &[])
        .status(1)
        .stderr_contains("error[not_found]: Pod default/no-such-pod not found on control-plane");
    mesh_with(
        r#"try { cluster("control-plane").exec("pod/no-such-pod", ["true"]); } catch (e) { print(`kind=${e.kind}`); }"#,
        &[],
    )
    .status(0)
    .stdout_contains("kind=not_found");
}

#[test]
fn rejected_credentials_are_kind_api_in_words() {
    let text = std::fs::read_to_string(sandbox().kubeconfig()).unwrap();
    let mut config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    for user in config["users"].as_array_mut().unwrap() {
        user["user"] = serde_json::json!({"token": "not-a-valid-token"});
    }
    let test = Test::new().playbook("p.rhai", r#"cluster("control-plane").get("cm/x");"#);
    let kubeconfig = test.dir().join("bad-kubeconfig");
    std::fs::write(&kubeconfig, serde_json::to_string(&config).unwrap()).unwrap();
    let out = test.kubeconfig(&kubeconfig).args(["p.rhai"]).run();
    out.status(1)
        .stderr_contains("error[api]: discovery /api")
        .stderr_contains("refused (HTTP 401 Unauthorized): the API server did not accept the credentials of context control-plane")
        .stderr_lacks("not-a-valid-token");
    assert!(!out.stderr.contains('{'), "raw JSON in: {}", out.stderr);
}

#[test]
fn sigterm_is_reported_as_a_signal_not_ctrl_c() {
    let test = Test::new().playbook(
        "p.rhai",
        "let cp = cluster(\"control-plane\");\ncp.wait(\"cm/h15-forever\", #{ timeout: \"10m\" });\n",
    );
    let child = Command::new(env!("CARGO_BIN_EXE_mesh-run"))
        .current_dir(test.dir())
        .arg("p.rhai")
        .env("KUBECONFIG", sandbox().kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let signalled = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(signalled.elapsed() < Duration::from_secs(2), "took {:?}", signalled.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("error[interrupted]: interrupted by SIGTERM"), "{stderr}");
    assert!(!stderr.contains("Ctrl-C"), "{stderr}");
    assert!(stderr.contains("p.rhai:2:"), "says where: {stderr}");
}

#[test]
fn ensure_namespace_waits_out_a_terminating_namespace_and_creates_it_again() {
    let ns = "h15-terminating";
    kubectl("control-plane", &["create", "namespace", ns]);
    kubectl("control-plane", &["create", "configmap", "held", "-n", ns]);
    kubectl(
        "control-plane",
        &[
            "patch",
            "configmap",
            "held",
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        ],
    );
    let old_uid = kubectl("control-plane", &["get", "namespace", ns, "-o", "jsonpath={.metadata.uid}"]);
    kubectl("control-plane", &["delete", "namespace", ns, "--wait=false"]);
    let phase = kubectl("control-plane", &["get", "namespace", ns, "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Terminating");
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(3));
        kubectl(
            "control-plane",
            &[
                "patch",
                "configmap",
                "held",
                "-n",
                ns,
                "--type=json",
                "-p",
                r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
            ],
        );
    });
    mesh_with(
        &format!(
            r#"
let cp = cluster("control-plane");
print(`namespace: ${{cp.ensure_namespace("{ns}")}}`);
cp.apply(`{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "after", "namespace": "{ns}"}}}}`);
"#
        ),
        &[],
    )
    .status(0)
    .stdout_contains("namespace: created");
    release.join().unwrap();
    let new_uid = kubectl("control-plane", &["get", "namespace", ns, "-o", "jsonpath={.metadata.uid}"]);
    assert_ne!(old_uid, new_uid, "the namespace was not created again");
    kubectl("control-plane", &["get", "configmap", "after", "-n", ns]);
}

#[test]
fn http_get_never_shows_user_info_or_query_values() {
    // Port 1 on loopback: refused at once. From an input, so the playbook's
    // own text (quoted in the code frame) holds no URL.
    let out = mesh_with(
        r#"http_get(input("URL"));"#,
        &["--set", "URL=http://admin:s3cr3t-pw@127.0.0.1:1/hello?token=t0ken-value&x=1"],
    );
    out.status(1)
        .stderr_contains("error[remote]: GET http://***@127.0.0.1:1/hello?token=***&x=***")
        .stderr_lacks("s3cr3t-pw")
        .stderr_lacks("t0ken-value")
        .stderr_lacks("admin");
    assert!(!out.stdout.contains("s3cr3t-pw"), "{}", out.stdout);
}
