//! The in-place upgrade (issue 13 item 1): external.rhai rerun with a new
//! ISTIO_VERSION changes only the version fields of the Sail resources and
//! returns once each new generation is reconciled and Ready. The sandbox has
//! one Istio snapshot: the simulated operator renders 1.24.4 with the same
//! charts, so this proves the flow (what changes, what is waited on), not a
//! change of Istio's binaries. A version per component (COMPONENT_VERSIONS)
//! upgrades one component first: the CNI, as upgrade guides order it.

use std::collections::BTreeSet;

use super::*;
use crate::support;

const CLUSTERS: &[&str] = &["control-plane", "data-plane"];

/// metadata.generation and status.observedGeneration of a Sail resource.
fn generations(object: &Value) -> (i64, i64) {
    let generation = object["metadata"]["generation"].as_i64().unwrap_or(0);
    (generation, object["status"]["observedGeneration"].as_i64().unwrap_or(-1))
}

/// The changed steps of a `--output json` run as "cluster object outcome".
fn changed_set(out: &crate::support::test::Output) -> BTreeSet<String> {
    changed_steps(out)
        .iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s["cluster"].as_str().unwrap_or(""),
                s["object"].as_str().unwrap_or(""),
                s["outcome"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn rerun_with_a_new_version_changes_only_versions_and_waits_for_the_new_generation() {
    let sandbox = support::sandbox("in-place-upgrade", CLUSTERS);
    let api_server = sandbox.server("data-plane");
    run(sandbox, "external.rhai", &inputs(&api_server), &[]).status(0);
    let (cp, dp) = (sandbox.client("control-plane").await, sandbox.client("data-plane").await);
    let before = sail_object(&cp, "Istio", "istios", "external-istiod").await;

    // A misspelt component stops the run before anything changes, naming the known ones.
    let typo = [inputs(&api_server), vec![("COMPONENT_VERSIONS", "cin=1.24.4")]].concat();
    run(sandbox, "external.rhai", &typo, &[])
        .status(1)
        .stderr_contains("unknown component \"cin\" in \"cin=1.24.4\": one of gateway, istiod, remote, cni")
        .stderr_contains("playbooks/external.rhai:")
        .stderr_contains("| mesh = external::with_versions(mesh, input(\"COMPONENT_VERSIONS\"")
        .stdout_contains("failed: 0 steps, 0 changed");

    // The CNI first: exactly the IstioCNI changes, and its new generation is waited for.
    let cni_first = [inputs(&api_server), vec![("COMPONENT_VERSIONS", "cni=1.24.4")]].concat();
    let out = run(sandbox, "external.rhai", &cni_first, &["--output", "json"]);
    out.status(0);
    assert_eq!(changed_set(&out), set(&["data-plane IstioCNI default configured"]));
    let cni = sail_object(&dp, "IstioCNI", "istiocnis", "default").await;
    assert_eq!(cni["spec"]["version"], "v1.24.4");
    assert_eq!(generations(&cni).0, generations(&cni).1, "the CNI's new generation was reconciled");
    assert_eq!(
        sail_object(&dp, "Istio", "istios", "external-istiod").await["spec"]["version"],
        "v1.24.3"
    );

    let upgrade = [inputs(&api_server), vec![("ISTIO_VERSION", "1.24.4")]].concat();
    run(sandbox, "external.rhai", &upgrade, &["--dry-run"])
        .status(0)
        .stdout_contains("-  version: v1.24.3")
        .stdout_contains("+  version: v1.24.4");
    assert_eq!(
        sail_object(&cp, "Istio", "istios", "external-istiod").await["spec"]["version"],
        "v1.24.3"
    );

    let out = run(sandbox, "external.rhai", &upgrade, &["--output", "json"]);
    out.status(0);
    let changed = changed_set(&out);
    // The IstioCNI runs 1.24.4 already: ISTIO_VERSION=1.24.4 leaves it as it is.
    let expected = set(&[
        "control-plane Istio default configured",
        "control-plane Istio external-istiod configured",
        "data-plane Istio external-istiod configured",
    ]);
    assert_eq!(changed, expected, "only the version fields change");

    // Read at once: the run returned only after each new generation was Ready.
    for (client, kind, plural, name) in [
        (&cp, "Istio", "istios", "default"),
        (&cp, "Istio", "istios", "external-istiod"),
        (&dp, "Istio", "istios", "external-istiod"),
        (&dp, "IstioCNI", "istiocnis", "default"),
    ] {
        let object = sail_object(client, kind, plural, name).await;
        assert_eq!(object["spec"]["version"], "v1.24.4", "{kind} {name}");
        let (generation, observed) = generations(&object);
        assert_eq!(observed, generation, "{kind} {name}: the new generation was reconciled");
        assert_eq!(ready(&object), "True", "{kind} {name}");
    }
    let after = sail_object(&cp, "Istio", "istios", "external-istiod").await;
    assert!(generations(&after).0 > generations(&before).0, "a new generation");
    let mut without_version = after["spec"].clone();
    without_version["version"] = before["spec"]["version"].clone();
    assert_eq!(without_version, before["spec"], "nothing but the version changed");
}
