//! Which stdlib runs: the built-in one, unless `--stdlib DIR` or
//! `MESH_RUN_STDLIB` names another (announced). A `stdlib/` folder that
//! happens to sit beside the playbook's folder is never loaded.

use crate::support::Test;

const PLAYBOOK: &str = r#"
import "mesh/istio" as istio;
print(`kind: ${istio::istio("default", "istio-system", (), (), #{}).kind}`);
"#;

/// A folder laid out like the repository, with a planted `stdlib/istio.rhai`.
fn planted() -> Test {
    Test::new()
        .playbook("play/p.rhai", PLAYBOOK)
        .playbook(
            "stdlib/istio.rhai",
            "throw \"planted stdlib ran\";\nfn istio(a, b, c, d, e) { #{ kind: \"planted\" } }\n",
        )
        .playbook("mine/istio.rhai", "fn istio(a, b, c, d, e) { #{ kind: \"mine\" } }\n")
}

#[test]
fn a_stdlib_beside_the_playbooks_folder_is_not_loaded() {
    planted()
        .args(["check", "play/p.rhai"])
        .run()
        .status(0)
        .stdout_contains("ok play/p.rhai (2 scripts)")
        .stderr_lacks("note: stdlib");
    planted()
        .args(["play/p.rhai"])
        .run()
        .status(0)
        .stdout_contains("kind: Istio")
        .stderr_lacks("planted stdlib ran")
        .stderr_lacks("note: stdlib");
}

#[test]
fn an_explicit_stdlib_is_used_and_announced() {
    planted()
        .args(["play/p.rhai", "--stdlib", "mine"])
        .run()
        .status(0)
        .stdout_contains("kind: mine")
        .stderr_contains("note: stdlib modules and bundled manifests are read from mine (--stdlib / MESH_RUN_STDLIB)");
    planted()
        .env("MESH_RUN_STDLIB", "stdlib")
        .args(["play/p.rhai"])
        .run()
        .status(1)
        .stderr_contains("note: stdlib modules and bundled manifests are read from stdlib")
        .stderr_contains("planted stdlib ran");
    planted()
        .args(["play/p.rhai", "--stdlib", "nowhere"])
        .run()
        .status(2)
        .stderr_contains("error[usage]: --stdlib / MESH_RUN_STDLIB: nowhere is not a folder");
}
