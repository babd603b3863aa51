//! `apply` / `apply_file`: server-side apply, outcomes, ordering, options.

use super::{kubectl, mesh, mesh_with, steps};

#[test]
fn apply_creates_then_reports_unchanged_then_configured() {
    let playbook = |value: &str| {
        format!(
            r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prim-apply");
let r = cp.apply(`
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: prim-apply
data:
  mode: {value}
`);
print(`outcome=${{r[0].outcome}} kind=${{r[0].kind}} ns=${{r[0].namespace}}`);
"#
        )
    };
    mesh(&playbook("one"))
        .status(0)
        .stdout_contains("outcome=created kind=ConfigMap ns=prim-apply");
    assert_eq!(
        kubectl(
            "control-plane",
            &["get", "cm", "settings", "-n", "prim-apply", "-o", "jsonpath={.data.mode}"]
        ),
        "one"
    );
    mesh(&playbook("one")).status(0).stdout_contains("outcome=unchanged");
    mesh(&playbook("two")).status(0).stdout_contains("outcome=configured");
    assert_eq!(
        kubectl(
            "control-plane",
            &["get", "cm", "settings", "-n", "prim-apply", "-o", "jsonpath={.data.mode}"]
        ),
        "two"
    );
    let managers = kubectl(
        "control-plane",
        &[
            "get",
            "cm",
            "settings",
            "-n",
            "prim-apply",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
    );
    assert!(managers.contains("mesh-run"), "field manager: {managers}");
}

#[test]
fn a_crd_and_its_resources_apply_in_one_call() {
    let out = mesh(
        r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prim-crd");
cp.apply(`
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
  namespace: prim-crd
spec:
  size: 3
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`);
print(cp.get_jsonpath("wd/w1", "{.spec.size}", #{ namespace: "prim-crd" }));
"#,
    );
    out.status(0)
        .stdout_contains("CustomResourceDefinition widgets.example.com")
        .stdout_contains("\n3\n");
    assert_eq!(
        kubectl(
            "control-plane",
            &["get", "widgets", "w1", "-n", "prim-crd", "-o", "jsonpath={.spec.size}"]
        ),
        "3"
    );
}

#[test]
fn fields_the_server_drops_are_named() {
    // The seed's own typo: `value:` where the Istio schema has `values:`.
    let out = mesh(
        r#"
let cp = cluster("control-plane");
cp.apply(`
apiVersion: sailoperator.io/v1
kind: Istio
metadata:
  name: prim-dropped
spec:
  version: v1.24.3
  namespace: istio-system
  value:
    global:
      network: network1
`);
"#,
    );
    // Servers refuse it outright; the error names the field. (Before 1.21 they pruned it
    // without a word, and mesh-run's warning named it: `dropped_fields` in runtime/kube/apply.rs.)
    out.status(1)
        .stderr_contains("error[rejected]")
        .stderr_contains(".spec.value: field not declared in schema");
}

#[test]
fn selector_and_namespace_options_work_like_kubectl() {
    // The seed: `apply -f helloworld.yaml -l service=helloworld -n sample`, then `-l version=v1`.
    let out = mesh_with(
        r#"
let dp = cluster("data-plane");
dp.ensure_namespace("prim-select");
dp.apply_file("helloworld.yaml", #{ namespace: "prim-select", selector: "service=helloworld" });
dp.apply_file("helloworld.yaml", #{ namespace: "prim-select", selector: "version=v1" });
"#,
        &["--output", "json"],
    );
    out.status(0);
    let applied: Vec<String> = steps(&out)
        .iter()
        .filter(|s| s["action"] == "apply")
        .map(|s| s["object"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        applied,
        vec!["Service prim-select/helloworld", "Deployment prim-select/helloworld-v1"]
    );
    let names = kubectl(
        "data-plane",
        &["get", "deploy,svc", "-n", "prim-select", "-o", "jsonpath={.items[*].metadata.name}"],
    );
    assert_eq!(names, "helloworld-v1 helloworld");
    // helloworld.yaml omits port protocols: mesh-run fills in TCP (servers before 1.21 need it).
    let proto = kubectl(
        "data-plane",
        &[
            "get",
            "svc",
            "helloworld",
            "-n",
            "prim-select",
            "-o",
            "jsonpath={.spec.ports[0].protocol}",
        ],
    );
    assert_eq!(proto, "TCP");
}

#[test]
fn an_api_version_the_server_does_not_serve_is_named() {
    // policy/v1beta1 was removed in 1.25: an old manifest on both pinned versions gets a clear
    // error, never a rewrite (the same path named policy/v1 on 1.20, which served only v1beta1).
    let out = mesh(
        r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prim-old");
cp.apply(`
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata: {name: pdb, namespace: prim-old}
spec: {minAvailable: 1, selector: {matchLabels: {app: x}}}
`);
"#,
    );
    out.status(1)
        .stderr_contains("error[unknown_kind]")
        .stderr_contains("does not serve PodDisruptionBudget in policy/v1beta1");
    let served = mesh(
        r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prim-old");
cp.apply(`
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: pdb, namespace: prim-old}
spec: {minAvailable: 1, selector: {matchLabels: {app: x}}}
`);
"#,
    );
    served.status(0);
}

#[test]
fn dry_run_changes_nothing_and_shows_a_diff() {
    mesh(
        r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prim-dry");
cp.apply(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "prim-dry"}, "data": {"k": "before"}}`);
"#,
    )
    .status(0);
    let playbook = r#"
let cp = cluster("control-plane");
cp.apply(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "prim-dry"}, "data": {"k": "after"}}`);
cp.apply(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new", "namespace": "prim-dry"}}`);
cp.wait("cm/never", #{ namespace: "prim-dry", timeout: "1s" });
"#;
    mesh_with(playbook, &["--dry-run"])
        .status(0)
        .stdout_contains("configured (dry run)")
        .stdout_contains("-  k: before")
        .stdout_contains("+  k: after")
        .stdout_contains("created (dry run)")
        .stdout_contains("skipped (dry run)");
    assert_eq!(
        kubectl("control-plane", &["get", "cm", "c", "-n", "prim-dry", "-o", "jsonpath={.data.k}"]),
        "before"
    );
    let out = super::kubectl_raw("control-plane", &["get", "cm", "new", "-n", "prim-dry"]);
    assert!(!out.status.success(), "dry run created an object");
}

#[test]
fn a_field_manager_conflict_names_the_fields_and_force_takes_them() {
    kubectl("control-plane", &["create", "namespace", "prim-conflict"]);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: owned, namespace: prim-conflict}\ndata: {k: theirs}\n";
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), cm).unwrap();
    kubectl(
        "control-plane",
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "someone-else",
            "-f",
            file.path().to_str().unwrap(),
        ],
    );
    let playbook = |force: bool| {
        format!(
            r#"cluster("control-plane").apply(`{{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {{"name": "owned", "namespace": "prim-conflict"}}, "data": {{"k": "ours"}}}}`, #{{ force: {force} }});"#
        )
    };
    mesh(&playbook(false))
        .status(1)
        .stderr_contains("error[conflict]")
        .stderr_contains(".data.k")
        .stderr_contains("force: true");
    mesh(&playbook(true)).status(0).stdout_contains("configured");
    assert_eq!(
        kubectl(
            "control-plane",
            &["get", "cm", "owned", "-n", "prim-conflict", "-o", "jsonpath={.data.k}"]
        ),
        "ours"
    );
}
