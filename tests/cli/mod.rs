// In tests/cli/ (not tests/cli.rs): Cargo would build every tests/*.rs as a test binary of its own.
//! The command line without clusters: help that teaches, `check`, `doc`, usage errors.

mod check;

use std::path::PathBuf;

use crate::support::Test;

fn repo(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel).display().to_string()
}

#[test]
fn help_teaches_with_examples_and_exit_codes() {
    Test::new()
        .args(["--help"])
        .run()
        .status(0)
        .stdout_contains("mesh-run playbooks/external.rhai")
        .stdout_contains("mesh-run sandbox")
        .stdout_contains("MESH_RUN_TRACE=http")
        .stdout_contains("Exit codes: 0 success, 1 the playbook failed, 2 usage or script error, 130 Ctrl-C, 143 SIGTERM.");
    Test::new()
        .args(["run", "--help"])
        .run()
        .status(0)
        .stdout_contains("--set <KEY=VALUE>")
        .stdout_contains("--dry-run");
}

#[test]
fn check_compiles_every_shipped_playbook_and_its_modules() {
    let playbooks: Vec<String> = std::fs::read_dir(repo("playbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(!playbooks.is_empty());
    let out = Test::new().args(["check"]).args(playbooks.iter().cloned()).run();
    out.status(0);
    for p in &playbooks {
        out.stdout_contains(&format!("ok {p}"));
    }
}

#[test]
fn check_reports_a_syntax_error_in_an_imported_module() {
    Test::new()
        .playbook("main.rhai", "import \"lib\" as lib;\nlib::f();\n")
        .playbook("lib.rhai", "fn f() {\n  let x = ;\n}\n")
        .args(["check", "main.rhai"])
        .run()
        .status(2)
        .stderr_contains("error[script]")
        .stderr_contains("lib.rhai:2:");
}

#[test]
fn doc_lists_every_primitive() {
    let out = Test::new().args(["doc"]).run();
    out.status(0);
    for name in [
        "cluster",
        "apply",
        "apply_file",
        "wait",
        "get_jsonpath",
        "create_remote_secret",
        "ensure_namespace",
        "exec",
        "parallel",
    ] {
        out.stdout_contains(&format!("### `{name}`"));
    }
}

#[test]
fn usage_errors_exit_2() {
    Test::new().run().status(2).stderr_contains("<PLAYBOOK>");
    Test::new()
        .args(["p.rhai", "--set", "NOEQUALS"])
        .run()
        .status(2)
        .stderr_contains("expected KEY=VALUE");
    Test::new()
        .args(["missing.rhai"])
        .run()
        .status(2)
        .stderr_contains("cannot read playbook missing.rhai");
}

#[test]
fn the_script_engine_is_sandboxed() {
    Test::new()
        .playbook("p.rhai", "eval(\"1 + 1\");\n")
        .args(["p.rhai"])
        .run()
        .status(2)
        .stderr_contains("error[script]");
    Test::new()
        .playbook("p.rhai", "let x = 0;\nloop { x += 1; }\n")
        .args(["p.rhai"])
        .run()
        .status(2)
        .stderr_contains("error[script]: Too many operations");
    Test::new()
        .playbook("p.rhai", "fn f(n) { f(n + 1) }\nf(0);\n")
        .args(["p.rhai"])
        .run()
        .status(2)
        .stderr_contains("error[script]");
}

/// Per-value limits let 30 frames of 15 MB strings reach 1.8 GB (issue 15):
/// the run's heap has a cap of its own.
#[test]
fn a_playbook_that_keeps_too_much_memory_is_stopped() {
    let playbook =
        "fn hold(n) { let s = \"\"; s.pad(15000000, 'x'); let r = if n > 0 { hold(n - 1) } else { 0 }; r + s.len() }\nprint(hold(29));\n";
    Test::new()
        .playbook("p.rhai", playbook)
        .args(["p.rhai"])
        .env("MESH_RUN_MAX_MEMORY", "200MiB")
        .run()
        .status(1)
        .stderr_contains("error[memory]: the playbook stopped: mesh-run's memory passed 200 MiB (MESH_RUN_MAX_MEMORY)");
    // Below the cap the same code runs.
    Test::new()
        .playbook("p.rhai", &playbook.replace("hold(29)", "hold(2)"))
        .args(["p.rhai"])
        .env("MESH_RUN_MAX_MEMORY", "200MiB")
        .run()
        .status(0)
        .stdout_contains("45000000");
}

#[test]
fn a_kubeconfig_proxy_is_refused_with_what_to_do() {
    let kubeconfig = r#"apiVersion: v1
kind: Config
clusters:
- name: behind-proxy
  cluster:
    server: https://127.0.0.1:1
    proxy-url: http://proxy.example:3128
users:
- name: u
  user:
    token: not-a-real-token
contexts:
- name: c
  context: {cluster: behind-proxy, user: u}
current-context: c
"#;
    let t = Test::new()
        .playbook("kubeconfig", kubeconfig)
        .playbook("p.rhai", "cluster(\"c\").get(\"ns/default\");\n");
    let path = t.dir().join("kubeconfig");
    t.kubeconfig(path)
        .args(["p.rhai"])
        .run()
        .status(1)
        .stderr_contains("error[kubeconfig]")
        .stderr_contains("proxy-url http://proxy.example:3128/")
        .stderr_contains("remove proxy-url")
        .stderr_contains("p.rhai:1:")
        .stderr_lacks("not-a-real-token");
}
