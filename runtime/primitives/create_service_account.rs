//! `cp.create_service_account(namespace, name)`: `kubectl create serviceaccount`, rerunnable.

use std::sync::Arc;
use std::time::Instant;

use http::{Method, StatusCode};
use rhai::{Engine, EvalAltResult};

use super::Primitive;
use crate::kube::apply::Outcome;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "create_service_account",
    signatures: &["cp.create_service_account(namespace, name) -> string"],
    doc: r#"
Creates a ServiceAccount, like `kubectl create serviceaccount NAME -n NAMESPACE`, except that an
existing one is not an error: returns `created` or `unchanged`, so reruns succeed.

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
                let object = format!("ServiceAccount {namespace}/{name}");
                let body =
                    serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}});
                let mut path = format!("/api/v1/namespaces/{namespace}/serviceaccounts");
                if s2.dry_run {
                    path.push_str("?dryRun=All");
                }
                let res =
                    c.0.call(
                        Method::POST,
                        &path,
                        Some("application/json"),
                        serde_json::to_vec(&body).unwrap_or_default(),
                    )
                    .await?;
                let outcome = match res.status {
                    st if st.is_success() => Outcome::Created,
                    StatusCode::CONFLICT => Outcome::Unchanged,
                    // Its namespace, created just before by the playbook, was only dry-run created.
                    StatusCode::NOT_FOUND if s2.dry_run => Outcome::Created,
                    _ => return Err(c.0.api_error(&res, &object, "create")),
                };
                s2.step(&c.0.name, "create", &object, outcome.as_str(), started, None);
                Ok(outcome.as_str().to_string())
            })
        },
    );
}
