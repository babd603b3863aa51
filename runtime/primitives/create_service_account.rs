//! `cp.create_service_account(namespace, name)`: `kubectl create serviceaccount`, rerunnable.

use std::sync::Arc;
use std::time::Instant;

use http::StatusCode;
use rhai::{Engine, EvalAltResult};

use super::Primitive;
use serde_json::Value;

use crate::applyset::id;
use crate::kube::apply::Outcome;
use crate::kube::object_ref::ObjectRef;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "create_service_account",
    signatures: &["cp.create_service_account(namespace, name) -> string"],
    doc: r#"
Creates a ServiceAccount, like `kubectl create serviceaccount NAME -n NAMESPACE`, except that an
existing one is not an error: returns `created` or `unchanged`, so reruns succeed. An account it
creates joins the run's ApplySet.

```rhai
cp.create_service_account("external-istiod", "istiod-service-account");
```
"#,
    options: &[],
    register,
};

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    engine.register_fn(
        "create_service_account",
        move |c: &mut ClusterHandle, namespace: &str, name: &str| -> Result<String, Box<EvalAltResult>> {
            let (c, namespace, name, s2) = (c.clone(), namespace.to_string(), name.to_string(), s.clone());
            s.bridge.run(async move {
                let started = Instant::now();
                let (outcome, detail) = create(&s2, &c, &namespace, &name).await?;
                let object = format!("ServiceAccount {namespace}/{name}");
                s2.step(&c.0.name, "create", &object, outcome.as_str(), started, detail);
                Ok(outcome.as_str().to_string())
            })
        },
    );
}

/// Creates the account as a member of the run's ApplySet; an existing one
/// stays a member only if the set created it.
async fn create(
    session: &Session,
    cluster: &ClusterHandle,
    namespace: &str,
    name: &str,
) -> crate::error::Result<(Outcome, Option<String>)> {
    let client = &cluster.0;
    let sets = &session.applysets;
    let object = format!("ServiceAccount {namespace}/{name}");
    let info = client.resolve_kind("v1", "ServiceAccount").await?;
    let target = ObjectRef::new(info.clone(), name, Some(namespace));
    sets.track(client, &[(info, Some(namespace.to_string()))]).await?;
    let body = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": {id::PART_OF: sets.id}}});
    let path = format!("/api/v1/namespaces/{namespace}/serviceaccounts");
    let res = client.create(&path, &body, session.dry_run).await?;
    let missing_namespace =
        res.status == StatusCode::NOT_FOUND && res.body.pointer("/details/kind").and_then(Value::as_str) == Some("namespaces");
    match res.status {
        st if st.is_success() => {}
        // A dry run cannot create the namespace first: the server cannot try the account.
        _ if session.dry_run && missing_namespace => {}
        StatusCode::CONFLICT => {
            if client
                .get_json(&target.url(), &target)
                .await?
                .is_some_and(|live| sets.is_member(&live))
            {
                sets.applied(client, &target).await;
            }
            return Ok((Outcome::Unchanged, None));
        }
        _ => return Err(client.api_error(&res, &object, "create")),
    }
    sets.applied(client, &target).await;
    if session.dry_run {
        sets.plan(client, &target, body);
    }
    Ok((Outcome::Created, session.dry_run.then(|| format!("+ {object}"))))
}
