//! `cp.ensure_namespace(name)`: `oc get project X || oc new-project X`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use rhai::{Engine, EvalAltResult};
use serde_json::Value;

use super::Primitive;
use crate::error::{Error, Result};
use crate::kube::apply::Outcome;
use crate::kube::condition::Check;
use crate::kube::watch::{self, WaitRequest};
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "ensure_namespace",
    signatures: &["cp.ensure_namespace(name) -> string"],
    doc: r#"
Makes sure a namespace exists: on OpenShift (the `project.openshift.io` API is served) it requests a
Project, like `oc new-project`; elsewhere it creates a Namespace. An existing one is fine: returns
`unchanged`, else `created`. A namespace being deleted (phase `Terminating`, e.g. after an
interrupted teardown) is waited for — up to 5 minutes, the error naming what holds it — then
created again.

```rhai
cp.ensure_namespace("istio-system");
```
"#,
    options: &[],
    register,
};

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    engine.register_fn(
        "ensure_namespace",
        move |c: &mut ClusterHandle, name: &str| -> std::result::Result<String, Box<EvalAltResult>> {
            let (c, name, s2) = (c.clone(), name.to_string(), s.clone());
            s.bridge.run(async move {
                let started = Instant::now();
                let outcome = ensure(&c, &name, s2.dry_run).await?;
                let shown = if s2.dry_run {
                    format!("{} (dry run)", outcome.as_str())
                } else {
                    outcome.as_str().to_string()
                };
                s2.step(&c.0.name, "namespace", &format!("Namespace {name}"), &shown, started, None);
                Ok(outcome.as_str().to_string())
            })
        },
    );
}

/// How long a Terminating namespace may take to go (its finalizers: every
/// object in it deleted, then the namespace controller's own).
const TERMINATING_WAIT: Duration = Duration::from_secs(300);

pub async fn ensure(cluster: &ClusterHandle, name: &str, dry_run: bool) -> Result<Outcome> {
    let client = &cluster.0;
    let existing = client
        .get_json(&format!("/api/v1/namespaces/{name}"), &format!("Namespace {name}"))
        .await?;
    match existing {
        Some(ns) if ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") && !dry_run => {
            // Nothing can be created in it until it is gone (HTTP 403).
            let req = WaitRequest {
                resource: &format!("namespace/{name}"),
                namespace: None,
                checks: vec![Check::Delete],
                fail_if: vec![],
                timeout: TERMINATING_WAIT,
            };
            watch::wait(client, &req, &|_| {}).await.map_err(|e| match e {
                Error::Timeout { explanation, .. } => Error::Timeout {
                    cluster: client.name.clone(),
                    object: format!("Namespace {name}"),
                    after: humantime::format_duration(TERMINATING_WAIT).to_string(),
                    waiting_for: "it to finish terminating, to create it again".into(),
                    explanation: format!(
                        "{explanation}\n  look at its status.conditions (kubectl get namespace {name} -o yaml) for what it still holds"
                    ),
                },
                e => e,
            })?;
        }
        Some(_) => return Ok(Outcome::Unchanged),
        None => {}
    }
    let openshift = client
        .discovery(false)
        .await?
        .find("projectrequests.project.openshift.io")
        .is_some();
    let (path, body) = if openshift {
        (
            "/apis/project.openshift.io/v1/projectrequests",
            serde_json::json!({"apiVersion": "project.openshift.io/v1", "kind": "ProjectRequest", "metadata": {"name": name}}),
        )
    } else {
        (
            "/api/v1/namespaces",
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
    };
    let path = if dry_run { format!("{path}?dryRun=All") } else { path.to_string() };
    let res = client
        .call(
            Method::POST,
            &path,
            Some("application/json"),
            serde_json::to_vec(&body).unwrap_or_default(),
        )
        .await?;
    match res.status {
        s if s.is_success() => {
            if dry_run && let Ok(mut planned) = client.planned_namespaces.lock() {
                planned.insert(name.to_string());
            }
            Ok(Outcome::Created)
        }
        // Created by someone else between our GET and POST: still fine.
        StatusCode::CONFLICT => Ok(Outcome::Unchanged),
        _ => Err(client.api_error(&res, &format!("Namespace {name}"), "create")),
    }
}
