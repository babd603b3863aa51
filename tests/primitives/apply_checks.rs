//! `apply` checks the whole manifest before its first change (issue 15):
//! a bad last document, a kind the server does not serve, a namespace that
//! does not exist, or a result too large for a playbook value each fail with
//! nothing applied.

use super::{kubectl, mesh, mesh_with};

/// The ConfigMaps in `namespace` other than the one every namespace gets.
fn config_maps(namespace: &str) -> Vec<String> {
    kubectl("control-plane", &["get", "cm", "-n", namespace, "-o", "name"])
        .lines()
        .filter(|l| !l.ends_with("/kube-root-ca.crt"))
        .map(str::to_string)
        .collect()
}

/// 300 good ConfigMaps into `namespace`, then `last`.
fn many_then(namespace: &str, last: &str) -> String {
    format!(
        r#"
let cp = cluster("control-plane");
cp.ensure_namespace("{namespace}");
let yaml = "";
for i in 0..300 {{
    yaml += `apiVersion: v1
kind: ConfigMap
metadata:
  name: c${{i}}
  namespace: {namespace}
---
`;
}}
cp.apply(yaml + `{last}`);
"#
    )
}

#[test]
fn a_bad_last_document_fails_before_the_first_object_is_applied() {
    mesh(&many_then(
        "prim-check-name",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: prim-check-name\n",
    ))
    .status(2)
    .stderr_contains("error[usage]: manifest object 301 of 301 (ConfigMap) has no metadata.name; nothing was applied");
    assert_eq!(config_maps("prim-check-name"), Vec::<String>::new());

    mesh(&many_then(
        "prim-check-kind",
        "apiVersion: example.com/v1\nkind: Widgte\nmetadata:\n  name: w\n",
    ))
    .status(1)
    .stderr_contains("error[unknown_kind]")
    .stderr_contains("no kind \"Widgte\" is registered for example.com/v1");
    assert_eq!(config_maps("prim-check-kind"), Vec::<String>::new());
}

#[test]
fn applying_into_a_namespace_that_does_not_exist_says_so() {
    let playbook = r#"
let cp = cluster("control-plane");
cp.apply(`
apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: prim-check-present}
---
apiVersion: v1
kind: Namespace
metadata: {name: prim-check-present}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b, namespace: prim-check-absent}
`);
"#;
    for args in [&[][..], &["--dry-run"]] {
        mesh_with(playbook, args)
            .status(1)
            .stderr_contains(
                "error[not_found]: namespace \"prim-check-absent\" (wanted by ConfigMap prim-check-absent/b) not found on control-plane",
            )
            .stderr_contains("nothing was applied: create the namespace first (ensure_namespace(\"prim-check-absent\"))");
    }
    // Not even the Namespace of the same call was created.
    let namespaces = kubectl("control-plane", &["get", "namespaces", "-o", "name"]);
    assert!(!namespaces.contains("namespace/prim-check-present"), "{namespaces}");
    // A dry run counts the namespaces it would have created.
    mesh_with(
        r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prim-check-planned");
cp.apply(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "prim-check-planned"}}`);
"#,
        &["--dry-run"],
    )
    .status(0);
}

#[test]
fn a_result_too_large_for_a_playbook_value_is_refused_before_applying() {
    mesh(
        r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prim-check-large");
let yaml = "";
for i in 0..25001 {
    yaml += `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c${i}", "namespace": "prim-check-large"}}
---
`;
}
cp.apply(yaml);
"#,
    )
    .status(2)
    .stderr_contains("error[usage]: this apply holds 25001 objects")
    .stderr_contains("nothing was applied: split the manifest into calls of at most 25000 objects");
    assert_eq!(config_maps("prim-check-large"), Vec::<String>::new());
}
