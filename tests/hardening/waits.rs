//! True timeout messages: a satisfied wait succeeds with timeout "0"; a
//! mistyped kind fails at once, naming what it resembles; a kind not served
//! is never reported as "the object does not exist".

use std::time::{Duration, Instant};

use super::mesh_with;

#[test]
fn a_satisfied_condition_succeeds_with_timeout_zero() {
    mesh_with(
        r#"
let o = cluster("control-plane").wait("svc/kubernetes", #{ "for": "jsonpath={.spec.type}=ClusterIP", timeout: "0" });
print(`type=${o.spec.type}`);
"#,
        &[],
    )
    .status(0)
    .stdout_contains("type=ClusterIP");
    let started = Instant::now();
    mesh_with(
        r#"cluster("control-plane").wait("svc/kubernetes", #{ "for": "jsonpath={.spec.type}=LoadBalancer", timeout: 0 });"#,
        &[],
    )
    .status(1)
    .stderr_contains("error[timeout]: timed out after 0s waiting for Service default/kubernetes")
    .stderr_contains("the object exists")
    .stderr_contains("last value of {.spec.type}: \"ClusterIP\"");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[test]
fn a_mistyped_kind_fails_at_once_and_suggests_the_served_one() {
    let started = Instant::now();
    mesh_with(r#"cluster("control-plane").wait("istoi/default", #{ timeout: "5m" });"#, &[])
        .status(1)
        .stderr_contains("error[unknown_kind]: cluster control-plane: the server doesn't have a resource type \"istoi\": not served; did you mean istio (Istio, istios.sailoperator.io)?");
    assert!(started.elapsed() < Duration::from_secs(10), "a typo waited {:?}", started.elapsed());
    mesh_with(r#"cluster("control-plane").get("deploymnet/x");"#, &[])
        .status(1)
        .stderr_contains("did you mean deployment (Deployment, deployments.apps)?");
}

#[test]
fn a_timeout_on_a_kind_not_served_says_so_not_does_not_exist() {
    mesh_with(
        r#"cluster("control-plane").wait("frobnicators/f", #{ "for": "create", timeout: "2s" });"#,
        &[],
    )
    .status(1)
    .stderr_contains("error[timeout]: timed out after 2s waiting for frobnicators/f on control-plane")
    .stderr_contains("its kind \"frobnicators\" is not served by this cluster")
    .stderr_lacks("does not exist");
}
