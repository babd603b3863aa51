//! Mistakes a playbook shows without running, caught by `run` before its
//! first request (the HTTP trace stays empty: the kubeconfig's server is a
//! closed port, so any request would trace an `error` line) and listed by
//! `check`, each at its line with "did you mean".

use crate::support::{Output, Test};

/// Two contexts on a closed port: a request would fail, and trace.
const KUBECONFIG: &str = r#"apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: not-a-real-token}
contexts:
- name: control-plane
  context: {cluster: nowhere, user: u}
- name: data-plane
  context: {cluster: nowhere, user: u}
current-context: control-plane
"#;

/// The playbook's first statement is a request; `mistake` follows it.
fn playbook(mistake: &str) -> String {
    format!("let cp = cluster(input(\"CTX_CONTROL_PLANE_CLUSTER\"));\ncp.ensure_namespace(\"check-first\");\n{mistake}\n")
}

/// `mesh-run run p.rhai` with the HTTP trace on; asserts that no request was sent
/// and the exit code of a script or usage error.
fn run(text: &str, sets: &[&str]) -> Output {
    let out = run_any(text, sets);
    out.status(2);
    out
}

fn run_any(text: &str, sets: &[&str]) -> Output {
    let t = Test::new().playbook("kubeconfig", KUBECONFIG).playbook("p.rhai", text);
    let kubeconfig = t.dir().join("kubeconfig");
    let mut args = vec![
        "run".to_string(),
        "p.rhai".into(),
        "--set".into(),
        "CTX_CONTROL_PLANE_CLUSTER=control-plane".into(),
    ];
    for set in sets {
        args.extend(["--set".to_string(), set.to_string()]);
    }
    let out = t.kubeconfig(kubeconfig).env("MESH_RUN_TRACE", "http").args(args).run();
    out.stderr_lacks("[http]");
    out
}

#[test]
fn an_unknown_option_key_names_the_valid_ones() {
    run(&playbook(r#"cp.wait("istio/x", #{ timout: "3m" });"#), &[])
        .stderr_contains("error[script]: unknown option \"timout\" for wait; did you mean \"timeout\"? (valid options: for, wait_for, timeout, namespace, fail_if)")
        .stderr_contains("--> p.rhai:3:23")
        .stderr_contains(r#"3 | cp.wait("istio/x", #{ timout: "3m" });"#);
}

#[test]
fn an_unknown_stdlib_function_and_a_wrong_argument_count_show_the_definition() {
    let text = format!(
        "import \"mesh/istio\" as istio;\n{}",
        playbook(r#"istio::wait_redy(cp, "istio/x", "3m");"#)
    );
    run(&text, &[])
        .stderr_contains("unknown function istio::wait_redy: \"mesh/istio\" has no function `wait_redy`; did you mean \"wait_ready\"?")
        .stderr_contains("--> p.rhai:4:");
    let text = format!(
        "import \"mesh/istio\" as istio;\n{}",
        playbook(r#"istio::wait_ready(cp, "istio/x");"#)
    );
    run(&text, &[]).stderr_contains(
        "istio::wait_ready(...) called with 2 argument(s); defined in \"mesh/istio\" as fn wait_ready(cluster, resource, timeout)",
    );
}

#[test]
fn an_unknown_primitive_or_a_wrong_argument_count_shows_the_forms() {
    run(&playbook(r#"cp.get_jsonpth("svc/x", "{.a}");"#), &[])
        .stderr_contains("unknown method .get_jsonpth(...); did you mean \"get_jsonpath\"?")
        .stderr_contains("--> p.rhai:3:4");
    run(&playbook(r#"cp.apply("kind: A", #{}, true);"#), &[])
        .stderr_contains(".apply(...) called with 3 argument(s); its forms:")
        .stderr_contains("cp.apply(manifests, #{namespace, selector, force}) -> array");
    run(&playbook("fn helper(a, b) { a + b }\nhelper(1);"), &[])
        .stderr_contains("helper(...) called with 1 argument(s); defined as fn helper(a, b)");
}

#[test]
fn a_yaml_error_in_a_literal_manifest_points_at_its_playbook_line() {
    let manifest = "cp.apply(`\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${cp.name}\n  labels: [a\n`);";
    run(&playbook(manifest), &[])
        .stderr_contains("this manifest is not valid YAML (document 1)")
        .stderr_contains("--> p.rhai:8:11")
        .stderr_contains("8 |   labels: [a");
}

#[test]
fn a_set_key_no_input_reads_is_named_with_the_inputs() {
    run(&playbook(""), &["CTX_DATA_PLANE_CLUSTR=data-plane"]).stderr_contains(
        "error[usage]: --set CTX_DATA_PLANE_CLUSTR: no input(\"CTX_DATA_PLANE_CLUSTR\") in p.rhai or its modules reads it; did you mean \"CTX_CONTROL_PLANE_CLUSTER\"?",
    );
}

#[test]
fn an_unknown_context_suggests_the_closest() {
    let text = playbook("let dp = cluster(input(\"CTX_DATA_PLANE_CLUSTER\"));");
    // The error a run meets at `cluster(...)` (kind and exit code), before the first request.
    run_any(&text, &["CTX_DATA_PLANE_CLUSTER=data-plane2"])
        .status(1)
        .stderr_contains("error[context]: unknown kubeconfig context \"data-plane2\" (available: control-plane, data-plane; did you mean \"data-plane\"?)")
        .stderr_contains("--> p.rhai:3:");
}

#[test]
fn for_as_a_map_key_says_quote_it_or_use_wait_for() {
    run(&playbook(r#"cp.wait("istio/x", #{ for: "condition=Ready" });"#), &[])
        .stderr_contains("`for` is a Rhai keyword, so it cannot be a bare map key; quote it (#{ \"for\": \"condition=Ready\" }) or use its alias (#{ wait_for: \"condition=Ready\" })")
        .stderr_contains("--> p.rhai:3:");
}

#[test]
fn an_unclosed_block_points_where_it_was_opened() {
    run(&playbook("if true {\n    print(1);\n\nprint(2);"), &[])
        .stderr_contains("`{` opened here is never closed")
        .stderr_contains("--> p.rhai:3:9")
        .stderr_contains("3 | if true {");
}

#[test]
fn run_names_the_first_mistake_and_check_lists_them_all() {
    let text = playbook("cp.wait(\"istio/x\", #{ timout: \"3m\" });\ncp.get_jsonpth(\"svc/x\", \"{.a}\");");
    run(&text, &[]).stderr_contains("and 1 more: `mesh-run check p.rhai` lists them");
    Test::new()
        .playbook("p.rhai", &text)
        .args(["check", "p.rhai", "--set", "NOT_READ=1"])
        .run()
        .status(2)
        .stderr_contains("p.rhai:3:")
        .stderr_contains("p.rhai:4:")
        .stderr_contains("--set NOT_READ");
}

#[test]
fn doc_covers_the_stdlib_and_shows_one_entry_by_name() {
    Test::new()
        .args(["doc"])
        .run()
        .status(0)
        .stdout_contains("### `wait`")
        .stdout_contains("#### `mesh/istio`")
        .stdout_contains("    istio::wait_ready(cluster, resource, timeout)")
        .stdout_contains("    external::additional_data_plane(cp, dp, mesh, name, api_server)");
    Test::new()
        .args(["doc", "istio::wait_ready"])
        .run()
        .status(0)
        .stdout_contains("kubectl wait --for condition=Ready")
        .stdout_lacks("### `wait`");
    Test::new()
        .args(["doc", "create_remote_secret"])
        .run()
        .status(0)
        .stdout_contains("### `create_remote_secret`")
        .stdout_lacks("### `apply`");
    Test::new()
        .args(["doc", "wait_redy"])
        .run()
        .status(2)
        .stderr_contains("did you mean \"istio::wait_ready\"?");
}

#[test]
fn inputs_lists_a_playbooks_inputs_with_defaults_and_docs() {
    let playbook = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks/external-multi-dataplane.rhai");
    Test::new()
        .args(["inputs", &playbook.display().to_string()])
        .run()
        .status(0)
        .stdout_contains("  CTX_CONTROL_PLANE_CLUSTER  required")
        .stdout_contains("  ISTIO_VERSION  default \"1.24.3\"")
        .stdout_contains("  DATA_PLANE_API_SERVERS  default \"\"")
        .stdout_contains("      The data planes' API servers as the control plane reaches them (default: each context's URL).");
}
