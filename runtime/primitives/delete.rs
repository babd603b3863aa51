//! `cp.delete(resource, #{namespace, wait, timeout, ignore_not_found})`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use rhai::{Engine, EvalAltResult, Map};
use serde::Deserialize;

use super::Primitive;
use crate::error::Result;
use crate::kube::condition::Check;
use crate::kube::object_ref::ObjectRef;
use crate::kube::watch::{self, WaitRequest};
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "delete",
    signatures: &[
        "cp.delete(resource) -> string",
        "cp.delete(resource, #{namespace, wait, timeout, ignore_not_found}) -> string",
    ],
    doc: r#"
Deletes an object (`TYPE/NAME`), like `kubectl delete`, and by default waits until it is gone
(`wait: false` to not wait; `timeout` defaults to `60s`), so teardowns can go in reverse order.
A missing object is fine (`absent`) unless `ignore_not_found: false`. Returns `deleted` or `absent`.

```rhai
cp.delete("istio/external-istiod", #{ timeout: "2m" });
dp.delete("namespace/sample");
```
"#,
    options: KEYS,
    register,
};

const KEYS: &[&str] = &["namespace", "wait", "timeout", "ignore_not_found"];

#[derive(Deserialize, Default)]
struct Opts {
    namespace: Option<String>,
    wait: Option<bool>,
    timeout: Option<serde_json::Value>,
    ignore_not_found: Option<bool>,
}

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    let f = move |c: &mut ClusterHandle, resource: &str, opts: Option<Map>| -> std::result::Result<String, Box<EvalAltResult>> {
        let (c, resource, s2) = (c.clone(), resource.to_string(), s.clone());
        s.bridge.run(async move { delete(&s2, &c, &resource, opts).await })
    };
    let f2 = f.clone();
    engine.register_fn("delete", move |c: &mut ClusterHandle, r: &str| f(c, r, None));
    engine.register_fn("delete", move |c: &mut ClusterHandle, r: &str, o: Map| f2(c, r, Some(o)));
}

async fn delete(session: &Session, cluster: &ClusterHandle, resource: &str, opts: Option<Map>) -> Result<String> {
    let started = Instant::now();
    let opts: Opts = PRIMITIVE.parse_options(opts)?;
    let timeout = crate::options::duration(&opts.timeout, Duration::from_secs(60), "delete timeout")?;
    let client = &cluster.0;
    let target = ObjectRef::resolve(client, resource, opts.namespace.as_deref()).await?;
    let mut path = format!("{}?propagationPolicy=Background", target.url());
    if session.dry_run {
        path.push_str("&dryRun=All");
    }
    let res = client.call(Method::DELETE, &path, None, Vec::new()).await?;
    let outcome = match res.status {
        s if s.is_success() => "deleted",
        StatusCode::NOT_FOUND if opts.ignore_not_found.unwrap_or(true) => "absent",
        _ => return Err(client.api_error(&res, &target.to_string(), "delete")),
    };
    if outcome == "deleted" && opts.wait.unwrap_or(true) && !session.dry_run {
        let req = WaitRequest {
            resource,
            namespace: opts.namespace.as_deref(),
            checks: vec![Check::Delete],
            fail_if: vec![],
            timeout,
        };
        watch::wait(client, &req, &|_| {}).await?;
    }
    let detail = (session.dry_run && outcome == "deleted").then(|| format!("- {target}"));
    session.step(&client.name, "delete", &target.to_string(), outcome, started, detail);
    Ok(outcome.to_string())
}
