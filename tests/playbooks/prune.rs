//! Pruning (issue 14): what a playbook stops applying goes after its next
//! successful run, and nothing else does — not objects mesh-run did not
//! create, not another playbook's, not after a failed or interrupted run.
//! kubectl, the oracle, sees the same ApplySet.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{self, Output, SandboxHandle, Test};

const CLUSTERS: &[&str] = &["control-plane", "data-plane"];

fn sandbox() -> &'static SandboxHandle {
    support::sandbox("default", CLUSTERS)
}

/// A playbook at a fixed path: reruns of one file are what prune.
struct Playbook {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Playbook {
    fn new(name: &str) -> Playbook {
        let dir = tempfile::Builder::new().prefix("mesh-run-prune-").tempdir().unwrap();
        let path = dir.path().join(name);
        Playbook { _dir: dir, path }
    }

    /// Writes `text` and runs it with `args`.
    fn run(&self, text: &str, args: &[&str]) -> Output {
        std::fs::write(&self.path, text).unwrap();
        run_file(&self.path, args)
    }
}

fn run_file(path: &Path, args: &[&str]) -> Output {
    Test::new()
        .kubeconfig(sandbox().kubeconfig())
        .arg(path.display().to_string())
        .args(args.iter().copied())
        .run()
}

fn kubectl_raw(args: &[&str]) -> std::process::Output {
    Command::new(sandbox().kubectl())
        .arg("--kubeconfig")
        .arg(sandbox().kubeconfig())
        .args(["--context", "control-plane"])
        .args(args)
        .env_remove("KUBECONFIG")
        .env("KUBECTL_APPLYSET", "true")
        .output()
        .expect("run kubectl")
}

fn kubectl(args: &[&str]) -> String {
    let out = kubectl_raw(args);
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn exists(args: &[&str]) -> bool {
    kubectl_raw(&[&["get"], args].concat()).status.success()
}

/// `kind/name` of every object kubectl finds with the set's `part-of` label.
fn kubectl_members(set: &str, kinds: &str) -> Vec<String> {
    let id = mesh_run::applyset::id::applyset_id(set, "mesh-run", "ConfigMap", "");
    let out = kubectl(&[
        "get",
        kinds,
        "-A",
        "-l",
        &format!("applyset.kubernetes.io/part-of={id}"),
        "-o",
        "jsonpath={range .items[*]}{.kind}/{.metadata.name}{\"\\n\"}{end}",
    ]);
    let mut members: Vec<String> = out.lines().map(str::to_string).collect();
    members.sort();
    members
}

fn steps(out: &Output, action: &str) -> Vec<String> {
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "step" && e["action"] == action)
        .map(|e| {
            format!(
                "{} {}",
                e["object"].as_str().unwrap_or_default(),
                e["outcome"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

const V1: &str = r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prune-a");
cp.apply(`
apiVersion: v1
kind: ConfigMap
metadata: {name: one, namespace: prune-a}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: two, namespace: prune-a}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: foreign, namespace: prune-a}
data: {by: mesh-run}
`);
cp.label("namespace/prune-a", #{ a: "1", b: "2", keep: "yes" });
cp.annotate("namespace/prune-a", #{ note: "x" });
"#;

const V2: &str = r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prune-a");
cp.apply(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "one", "namespace": "prune-a"}}`);
cp.label("namespace/prune-a", #{ a: "1" });
"#;

#[test]
fn an_edit_that_removes_an_object_or_a_label_removes_it_and_nothing_else() {
    let playbook = Playbook::new("prune-labels.rhai");
    // Not mesh-run's: a ConfigMap and a label that exist before the first run.
    kubectl(&["create", "namespace", "prune-a"]);
    kubectl(&["create", "configmap", "foreign", "-n", "prune-a"]);
    kubectl(&["label", "namespace", "prune-a", "keep=yes"]);
    playbook.run(V1, &[]).status(0);
    // The namespace existed: not a member either.
    assert_eq!(
        kubectl_members("prune-labels", "configmaps,namespaces"),
        vec!["ConfigMap/one", "ConfigMap/two"]
    );

    // kubectl reads our parent as an ApplySet, and will not take it over.
    let manifest = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        manifest.path(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: by-kubectl, namespace: mesh-run}\n",
    )
    .unwrap();
    let file = manifest.path().display().to_string();
    let out = kubectl_raw(&[
        "apply",
        "--server-side",
        "--prune",
        "--applyset=configmaps/prune-labels",
        "-n",
        "mesh-run",
        "-f",
        &file,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("managed by tooling \"mesh-run\""),
        "{stderr}"
    );

    let plan = playbook.run(V2, &["--dry-run"]);
    plan.status(0)
        .stdout_contains("plan for control-plane: 0 to create, 0 to change, 2 to prune")
        .stdout_contains("- ConfigMap prune-a/two")
        .stdout_contains("- Namespace prune-a labels b annotations note");
    assert!(exists(&["cm", "two", "-n", "prune-a"]), "a dry run pruned");

    let out = playbook.run(V2, &["--output", "json"]);
    out.status(0);
    let mut pruned = steps(&out, "prune");
    pruned.sort();
    assert_eq!(
        pruned,
        vec![
            "ConfigMap prune-a/two pruned",
            "Namespace prune-a annotations note removed",
            "Namespace prune-a labels b removed",
        ]
    );
    assert!(!exists(&["cm", "two", "-n", "prune-a"]));
    assert!(exists(&["cm", "one", "-n", "prune-a"]));
    assert_eq!(
        kubectl(&["get", "cm", "foreign", "-n", "prune-a", "-o", "jsonpath={.data.by}"]),
        "mesh-run",
        "applied but not created by mesh-run: kept"
    );
    let labels: Value = serde_json::from_str(&kubectl(&["get", "ns", "prune-a", "-o", "jsonpath={.metadata.labels}"])).unwrap();
    assert_eq!(labels["a"], "1");
    assert_eq!(labels["keep"], "yes", "a label someone else set stays");
    assert!(labels.get("b").is_none(), "{labels}");
    let annotations = kubectl(&["get", "ns", "prune-a", "-o", "jsonpath={.metadata.annotations}"]);
    assert!(!annotations.contains("note"), "{annotations}");
    assert_eq!(kubectl_members("prune-labels", "configmaps,namespaces"), vec!["ConfigMap/one"]);
    // A rerun has nothing left to prune.
    assert!(steps(&playbook.run(V2, &["--output", "json"]), "prune").is_empty());
}

#[test]
fn a_failed_or_interrupted_run_does_not_prune() {
    let playbook = Playbook::new("prune-failed.rhai");
    let both = r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prune-b");
cp.apply(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "prune-b"}}`);
cp.apply(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y", "namespace": "prune-b"}}`);
"#;
    let only_x = r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prune-b");
cp.apply(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "prune-b"}}`);
"#;
    playbook.run(both, &[]).status(0);
    playbook.run(&format!("{only_x}\nthrow \"boom\";"), &[]).status(1);
    assert!(exists(&["cm", "y", "-n", "prune-b"]), "a failed run pruned");
    let waits = format!("{only_x}\ncp.wait(\"cm/never\", #{{ namespace: \"prune-b\", timeout: \"1m\" }});");
    let out = playbook.run(&waits, &["--timeout", "2s"]);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(exists(&["cm", "y", "-n", "prune-b"]), "an interrupted run pruned");
    playbook
        .run(only_x, &["--no-prune"])
        .status(0)
        .stderr_contains("kept (--no-prune), no longer applied: ConfigMap prune-b/y");
    assert!(exists(&["cm", "y", "-n", "prune-b"]));
    playbook.run(only_x, &[]).status(0).stdout_contains("ConfigMap prune-b/y");
    assert!(!exists(&["cm", "y", "-n", "prune-b"]));
}

#[test]
fn two_playbooks_on_one_cluster_never_prune_each_other() {
    let apply = |name: &str| {
        format!(
            r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prune-c");
cp.apply(`{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "{name}", "namespace": "prune-c"}}}}`);
"#
        )
    };
    let nothing = "let cp = cluster(\"control-plane\");\ncp.ensure_namespace(\"prune-c\");\n";
    let a = Playbook::new("prune-a.rhai");
    let b = Playbook::new("prune-b.rhai");
    a.run(&apply("from-a"), &[]).status(0);
    b.run(&apply("from-b"), &[]).status(0);
    // Two installs of one playbook: --instance names each.
    b.run(&apply("from-b2"), &["--instance", "second"]).status(0);
    b.run(nothing, &[]).status(0);
    assert!(!exists(&["cm", "from-b", "-n", "prune-c"]));
    assert!(exists(&["cm", "from-a", "-n", "prune-c"]), "b pruned a's object");
    assert!(
        exists(&["cm", "from-b2", "-n", "prune-c"]),
        "instance `second` was pruned by the default one"
    );
    // Another file of the same name (a copy elsewhere) does not prune without --prune.
    let copy = Playbook::new("prune-a.rhai");
    copy.run(nothing, &[])
        .status(0)
        .stderr_contains("last recorded by another file of that name");
    assert!(exists(&["cm", "from-a", "-n", "prune-c"]));
    // The namespace belongs to the set that created it (a's): it stays while a runs.
    a.run(&apply("from-a"), &["--prune"]).status(0);
    assert!(exists(&["ns", "prune-c"]));
}
