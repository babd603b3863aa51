//! `cp.ensure_namespace(name)`: `oc get project X || oc new-project X`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use rhai::{Engine, EvalAltResult};
use serde_json::Value;

use super::Primitive;
use crate::applyset::id;
use crate::error::{Error, Result};
use crate::kube::apply::Outcome;
use crate::kube::condition::Check;
use crate::kube::object_ref::ObjectRef;
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
created again. A namespace it creates joins the run's ApplySet (pruned when a later run no longer
ensures it); one that existed before is never pruned.

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
                let outcome = ensure(&s2, &c, &name).await?;
                let detail = (s2.dry_run && outcome == Outcome::Created).then(|| format!("+ Namespace {name}"));
                s2.step(
                    &c.0.name,
                    "namespace",
                    &format!("Namespace {name}"),
                    outcome.as_str(),
                    started,
                    detail,
                );
                Ok(outcome.as_str().to_string())
            })
        },
    );
}

/// How long a Terminating namespace may take to go (its finalizers: every
/// object in it deleted, then the namespace controller's own).
const TERMINATING_WAIT: Duration = Duration::from_secs(300);

/// Creates the namespace (as a member of the run's ApplySet) unless it
/// exists; an existing one stays a member only if the set created it. A
/// Terminating one is waited out first: nothing can be created in it (403).
pub async fn ensure(session: &Session, cluster: &ClusterHandle, name: &str) -> Result<Outcome> {
    let client = &cluster.0;
    let sets = &session.applysets;
    let info = client.resolve_kind("v1", "Namespace").await?;
    let target = ObjectRef::new(info.clone(), name, None);
    if let Some(live) = client.get_json(&target.url(), &target).await? {
        let terminating = live.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
        if !terminating || session.dry_run {
            if sets.is_member(&live) {
                sets.applied(client, &target).await;
            }
            return Ok(Outcome::Unchanged);
        }
        wait_until_gone(client, name).await?;
    }
    if session.dry_run && sets.planned(client, &target).is_some() {
        return Ok(Outcome::Unchanged);
    }
    let openshift = client
        .discovery(false)
        .await?
        .find("projectrequests.project.openshift.io")
        .is_some();
    let labels = serde_json::json!({ id::PART_OF: sets.id });
    let (path, body) = if openshift {
        // A ProjectRequest takes no labels: the Namespace is labelled once it exists.
        (
            "/apis/project.openshift.io/v1/projectrequests",
            serde_json::json!({"apiVersion": "project.openshift.io/v1", "kind": "ProjectRequest", "metadata": {"name": name}}),
        )
    } else {
        (
            "/api/v1/namespaces",
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}),
        )
    };
    sets.track(client, &[(info, None)]).await?;
    let res = client.create(path, &body, session.dry_run).await?;
    match res.status {
        s if s.is_success() => {
            if openshift && !session.dry_run {
                let entries = serde_json::Map::from_iter([(id::PART_OF.to_string(), serde_json::Value::String(sets.id.clone()))]);
                crate::kube::metadata::patch(client, &target, "labels", entries, false).await?;
            }
            sets.applied(client, &target).await;
            if session.dry_run {
                let planned = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
                sets.plan(client, &target, planned);
                // apply's up-front check takes it as existing (kube/apply_check.rs).
                if let Ok(mut planned) = client.planned_namespaces.lock() {
                    planned.insert(name.to_string());
                }
            }
            Ok(Outcome::Created)
        }
        // Created by someone else between our GET and POST: still fine, and not ours.
        StatusCode::CONFLICT => Ok(Outcome::Unchanged),
        _ => Err(client.api_error(&res, &format!("Namespace {name}"), "create")),
    }
}

/// Waits until the Terminating namespace `name` is gone.
async fn wait_until_gone(client: &crate::kube::client::ClusterClient, name: &str) -> Result<()> {
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
    Ok(())
}
