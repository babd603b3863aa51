//! Bad input: each gets one clear error (what, where, what to do), the
//! right exit code, and nothing half-done.

use std::time::{Duration, Instant};

use super::{kubectl_raw, mesh, sandbox};
use crate::support::Test;

#[test]
fn a_syntax_error_points_at_the_line_and_touches_nothing() {
    mesh(
        r#"
cluster("control-plane").ensure_namespace("prim-syntax");
let x = (;
"#,
    )
    .status(2)
    .stderr_contains("error[script]")
    .stderr_contains("--> p.rhai:3:")
    .stderr_contains("3 | let x = (;");
    assert!(
        !kubectl_raw("control-plane", &["get", "namespace", "prim-syntax"]).status.success(),
        "syntax error but the cluster was touched"
    );
}

#[test]
fn unknown_primitives_and_wrong_arguments_are_script_errors() {
    mesh(r#"cluster("control-plane").aply("x");"#)
        .status(2)
        .stderr_contains("unknown method .aply(...); did you mean \"apply\"?");
    mesh(r#"cluster("control-plane").wait(42);"#)
        .status(2)
        .stderr_contains("unknown function or wrong arguments: wait (Cluster, i64)");
}

/// The static check runs before the first request: the namespace the
/// playbook's first line would create is not created, and the HTTP trace is empty.
#[test]
fn a_mistake_later_in_the_playbook_stops_it_before_any_request() {
    Test::new()
        .kubeconfig(sandbox().kubeconfig())
        .env("MESH_RUN_TRACE", "http")
        .playbook(
            "p.rhai",
            "let cp = cluster(\"control-plane\");\ncp.ensure_namespace(\"prim-check-first\");\ncp.wait(\"cm/x\", #{ namespace: \"prim-check-first\", timout: \"1s\" });\n",
        )
        .args(["p.rhai"])
        .run()
        .status(2)
        .stderr_contains("unknown option \"timout\" for wait; did you mean \"timeout\"?")
        .stderr_contains("--> p.rhai:3:")
        .stderr_lacks("[http]");
    assert!(
        !kubectl_raw("control-plane", &["get", "namespace", "prim-check-first"])
            .status
            .success(),
        "the check let the first request through"
    );
}

#[test]
fn an_unknown_option_key_lists_the_valid_ones() {
    mesh(r#"cluster("control-plane").wait("cm/x", #{ timout: "1s" });"#)
        .status(2)
        .stderr_contains("error[script]: unknown option \"timout\" for wait; did you mean \"timeout\"? (valid options: for, wait_for, timeout, namespace, fail_if)")
        .stderr_contains("--> p.rhai:1:");
}

#[test]
fn invalid_yaml_names_document_and_line() {
    mesh(
        r#"
cluster("control-plane").apply(`
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: default}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: [unclosed
`);
"#,
    )
    // Caught before any request, at the playbook's line.
    .status(2)
    .stderr_contains("error[script]: this manifest is not valid YAML (document 2)")
    .stderr_contains("--> p.rhai:10:")
    .stderr_contains("10 |   name: [unclosed");
}

#[test]
fn an_unknown_kind_says_the_crd_is_missing_and_where() {
    mesh(r#"cluster("data-plane").apply(`{"apiVersion": "example.org/v1", "kind": "Frobnicator", "metadata": {"name": "f"}}`);"#)
        .status(1)
        .stderr_contains(
            "error[unknown_kind]: cluster data-plane: no kind \"Frobnicator\" is registered for example.org/v1: its CRD is not installed",
        );
    mesh(r#"cluster("data-plane").get("frobnicators/f");"#)
        .status(1)
        .stderr_contains("error[unknown_kind]: cluster data-plane: the server doesn't have a resource type \"frobnicators\"");
}

#[test]
fn an_unknown_context_lists_the_available_ones() {
    mesh(r#"cluster("nope");"#)
        .status(1)
        .stderr_contains("error[context]: unknown kubeconfig context \"nope\" (available: control-plane, data-plane")
        .stderr_contains("--> p.rhai:1:");
}

#[test]
fn an_unreachable_api_server_fails_within_seconds_naming_cluster_and_url() {
    let kubeconfig = std::fs::read_to_string(sandbox().kubeconfig()).unwrap();
    // Point control-plane at a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server_line = kubeconfig
        .lines()
        .find(|l| l.trim_start().starts_with("server:"))
        .unwrap()
        .trim()
        .to_string();
    let broken = kubeconfig.replace(&server_line, &format!("server: https://127.0.0.1:{closed}"));
    let test = Test::new().playbook(
        "p.rhai",
        r#"for name in ["control-plane", "data-plane"] { cluster(name).ensure_namespace("prim-unreachable"); }"#,
    );
    std::fs::write(test.dir().join("kubeconfig"), broken).unwrap();
    let path = test.dir().join("kubeconfig");
    let started = Instant::now();
    test.kubeconfig(&path)
        .args(["p.rhai"])
        .run()
        .status(1)
        .stderr_contains("error[unreachable]: cluster ")
        .stderr_contains(&format!("API server https://127.0.0.1:{closed} is unreachable"));
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[test]
fn a_missing_input_is_reported_before_any_cluster_is_touched() {
    mesh(
        r#"
cluster("control-plane").ensure_namespace("prim-input");
let ctx = input("PRIM_SURELY_UNSET_CONTEXT");
let other = input("PRIM_SURELY_UNSET_OTHER");
let fine = input("PRIM_WITH_DEFAULT", "x");
"#,
    )
    .status(2)
    .stderr_contains("error[input]: missing required input PRIM_SURELY_UNSET_CONTEXT, PRIM_SURELY_UNSET_OTHER: pass --set PRIM_SURELY_UNSET_CONTEXT=VALUE");
    assert!(!kubectl_raw("control-plane", &["get", "namespace", "prim-input"]).status.success());
}

#[test]
fn inputs_come_from_set_then_environment() {
    Test::new()
        .kubeconfig(sandbox().kubeconfig())
        .playbook(
            "p.rhai",
            r#"print(`a=${input("PRIM_A")} b=${input("PRIM_B", "default")} c=${input("PRIM_C", "dc")}`);"#,
        )
        .env("PRIM_A", "from-env")
        .env("PRIM_B", "env-b")
        .args(["p.rhai", "--set", "PRIM_A=from-set"])
        .run()
        .status(0)
        .stdout_contains("a=from-set b=env-b c=dc");
}

/// Found by fuzzing (issue 15): a value nested 1,000 levels deep overflowed
/// the playbook thread's stack in the conversion to JSON and aborted mesh-run.
#[test]
fn a_deeply_nested_value_is_a_usage_error_not_a_crash() {
    mesh(
        r#"
let a = [];
for i in 0..1000 { a = [a]; }
cluster("control-plane").apply(a);
"#,
    )
    .status(2)
    .stderr_contains("error[usage]: apply's manifests nests arrays and maps more than 128 levels deep");
}
