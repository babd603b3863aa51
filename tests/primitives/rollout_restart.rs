//! `rollout_restart`: kubectl's restart annotation, new pods on the kwok
//! Nodes, and the call returns only once the rollout is done.

use std::collections::BTreeSet;

use super::{kubectl, mesh, sandbox};

/// A Deployment (2 replicas) and a DaemonSet of pause pods in `namespace`.
fn workloads(namespace: &str) {
    kubectl("data-plane", &["create", "namespace", namespace]);
    let manifest = format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{ name: web, namespace: {namespace}, labels: {{ tier: front }} }}
spec:
  replicas: 2
  selector: {{ matchLabels: {{ app: web }} }}
  template:
    metadata: {{ labels: {{ app: web }} }}
    spec: {{ containers: [{{ name: app, image: registry.k8s.io/pause:3.10 }}] }}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{ name: agent, namespace: {namespace}, labels: {{ tier: node }} }}
spec:
  selector: {{ matchLabels: {{ app: agent }} }}
  template:
    metadata: {{ labels: {{ app: agent }} }}
    spec: {{ containers: [{{ name: app, image: registry.k8s.io/pause:3.10 }}] }}
"#
    );
    kubectl_apply(&manifest);
    for workload in ["deploy/web", "ds/agent"] {
        kubectl("data-plane", &["rollout", "status", workload, "-n", namespace, "--timeout=90s"]);
    }
}

/// `kubectl apply -f` of `manifest` on the data plane.
fn kubectl_apply(manifest: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), manifest).unwrap();
    kubectl("data-plane", &["apply", "-f", &file.path().display().to_string()]);
}

fn pod_names(namespace: &str, app: &str) -> BTreeSet<String> {
    let out = kubectl(
        "data-plane",
        &[
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            &format!("app={app}"),
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    out.split_whitespace().map(str::to_string).collect()
}

fn jsonpath(namespace: &str, object: &str, path: &str) -> String {
    kubectl("data-plane", &["get", object, "-n", namespace, "-o", &format!("jsonpath={path}")])
}

#[test]
fn restarts_a_deployment_and_returns_once_it_rolled_out() {
    let ns = "prim-rollout-deploy";
    workloads(ns);
    let before = pod_names(ns, "web");
    assert_eq!(before.len(), 2, "{before:?}");

    // A dry run patches nothing.
    super::mesh_with(
        &format!(r#"cluster("data-plane").rollout_restart("deploy/web", #{{ namespace: "{ns}" }});"#),
        &["--dry-run"],
    )
    .status(0)
    .stdout_contains("restarted (dry run)");
    let annotation = r#"{.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}"#;
    assert_eq!(jsonpath(ns, "deploy/web", annotation), "");

    mesh(&format!(
        r#"let names = cluster("data-plane").rollout_restart("deploy/web", #{{ namespace: "{ns}", timeout: "90s" }});
print(`names=${{names}}`);"#
    ))
    .status(0)
    .stdout_contains(&format!("names=[\"Deployment {ns}/web\"]"))
    .stdout_contains("rolled out");

    // Read at once: the call returned only after the rollout finished.
    assert!(!jsonpath(ns, "deploy/web", annotation).is_empty(), "kubectl's restart annotation");
    let generation = jsonpath(ns, "deploy/web", "{.metadata.generation}");
    assert_eq!(jsonpath(ns, "deploy/web", "{.status.observedGeneration}"), generation);
    assert_eq!(jsonpath(ns, "deploy/web", "{.status.updatedReplicas}"), "2");
    assert_eq!(jsonpath(ns, "deploy/web", "{.status.availableReplicas}"), "2");
    assert_eq!(jsonpath(ns, "deploy/web", "{.status.replicas}"), "2", "old replicas gone");
    let after = pod_names(ns, "web");
    let running = kubectl(
        "data-plane",
        &["get", "pods", "-n", ns, "-l", "app=web", "-o", "jsonpath={.items[*].status.phase}"],
    );
    assert!(before.is_disjoint(&after), "new pods: {before:?} then {after:?} ({running})");
}

#[test]
fn restarts_every_object_of_a_kind_matching_a_selector() {
    let ns = "prim-rollout-selector";
    workloads(ns);
    let agents = pod_names(ns, "agent");
    let web = pod_names(ns, "web");
    mesh(&format!(
        r#"let dp = cluster("data-plane");
let a = dp.rollout_restart("ds", #{{ namespace: "{ns}", selector: "tier=node", timeout: "90s" }});
let b = dp.rollout_restart("daemonsets", #{{ namespace: "{ns}", selector: "tier=front" }});
let none = dp.rollout_restart("deployments", #{{ namespace: "{ns}", selector: "tier=none" }});
print(`restarted=${{a + b}} none=${{none.len()}}`);"#
    ))
    .status(0)
    .stdout_contains(&format!("restarted=[\"DaemonSet {ns}/agent\"] none=0"));
    assert!(agents.is_disjoint(&pod_names(ns, "agent")), "the DaemonSet's pods are new");
    assert_eq!(web, pod_names(ns, "web"), "the Deployment did not match");
    let ds_gen = jsonpath(ns, "ds/agent", "{.metadata.generation}");
    assert_eq!(jsonpath(ns, "ds/agent", "{.status.observedGeneration}"), ds_gen);
    assert_eq!(jsonpath(ns, "ds/agent", "{.status.updatedNumberScheduled}"), "2");
    assert_eq!(jsonpath(ns, "ds/agent", "{.status.numberAvailable}"), "2");
}

/// A StatefulSet replaces its pods one by one under the same names: the
/// restart is judged by revisions (kubectl's `rollout status`), the new pods by UID.
#[test]
fn restarts_a_stateful_set_and_returns_once_every_pod_is_on_the_new_revision() {
    let ns = "prim-rollout-sts";
    let _ = sandbox();
    kubectl("data-plane", &["create", "namespace", ns]);
    let manifest = format!(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {{ name: db, namespace: {ns} }}
spec:
  replicas: 2
  serviceName: db
  selector: {{ matchLabels: {{ app: db }} }}
  template:
    metadata: {{ labels: {{ app: db }} }}
    spec: {{ containers: [{{ name: app, image: registry.k8s.io/pause:3.10 }}] }}
"#
    );
    kubectl_apply(&manifest);
    kubectl("data-plane", &["rollout", "status", "sts/db", "-n", ns, "--timeout=90s"]);
    let uids = || {
        kubectl(
            "data-plane",
            &["get", "pods", "-n", ns, "-l", "app=db", "-o", "jsonpath={.items[*].metadata.uid}"],
        )
        .split_whitespace()
        .map(str::to_string)
        .collect::<BTreeSet<_>>()
    };
    let before = uids();
    assert_eq!(before.len(), 2, "{before:?}");
    let revision = jsonpath(ns, "sts/db", "{.status.updateRevision}");

    mesh(&format!(
        r#"cluster("data-plane").rollout_restart("statefulset/db", #{{ namespace: "{ns}", timeout: "90s" }});"#
    ))
    .status(0)
    .stdout_contains("rolled out");

    // Read at once: every pod is on the new revision and Ready.
    let update = jsonpath(ns, "sts/db", "{.status.updateRevision}");
    assert_ne!(update, revision, "a new revision");
    assert_eq!(jsonpath(ns, "sts/db", "{.status.currentRevision}"), update);
    assert_eq!(jsonpath(ns, "sts/db", "{.status.updatedReplicas}"), "2");
    assert_eq!(jsonpath(ns, "sts/db", "{.status.readyReplicas}"), "2");
    let after = uids();
    assert!(before.is_disjoint(&after), "new pods: {before:?} then {after:?}");
}

#[test]
fn refuses_what_has_no_rollout() {
    let _ = sandbox();
    mesh(r#"cluster("data-plane").rollout_restart("cm/kube-root-ca.crt");"#)
        .status(2)
        .stderr_contains("only Deployment, DaemonSet, StatefulSet have rollouts");
}
