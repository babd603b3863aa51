//! `cp.get(resource, #{namespace, selector})`: an object (or a list) as a map.

use std::sync::Arc;
use std::time::Instant;

use rhai::{Dynamic, Engine, EvalAltResult, Map};
use serde::Deserialize;
use serde_json::Value;

use super::Primitive;
use crate::error::{Error, Result};
use crate::kube::object_ref::ObjectRef;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "get",
    signatures: &["cp.get(resource) -> map", "cp.get(resource, #{namespace, selector}) -> map"],
    doc: r#"
Reads an object, like `kubectl get TYPE/NAME -o json`, and returns it as a map; a missing object is
an error of kind `not_found` (catch it to test for existence). `TYPE` alone lists objects
(`#{ selector: "app=x" }` filters) and returns a `List` with `items`.

```rhai
let svc = cp.get("svc/istio-ingressgateway", #{ namespace: "istio-system" });
print(svc.spec.type);
let pods = dp.get("pods", #{ namespace: "sample", selector: "app=sleep" });
```
"#,
    options: KEYS,
    register,
};

#[derive(Deserialize, Default)]
pub struct GetOpts {
    pub namespace: Option<String>,
    pub selector: Option<String>,
}

pub const KEYS: &[&str] = &["namespace", "selector"];

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    let f = move |c: &mut ClusterHandle, resource: &str, opts: Option<Map>| -> std::result::Result<Dynamic, Box<EvalAltResult>> {
        let (c, resource) = (c.clone(), resource.to_string());
        let s2 = s.clone();
        s.bridge.run(async move {
            let started = Instant::now();
            let opts: GetOpts = PRIMITIVE.parse_options(opts)?;
            let object = fetch_planned(&s2, &c, &resource, &opts).await?;
            s2.step(&c.0.name, "get", &resource, "ok", started, None);
            rhai::serde::to_dynamic(object).map_err(|e| Error::usage(e.to_string()))
        })
    };
    let f2 = f.clone();
    engine.register_fn("get", move |c: &mut ClusterHandle, r: &str| f(c, r, None));
    engine.register_fn("get", move |c: &mut ClusterHandle, r: &str, o: Map| f2(c, r, Some(o)));
}

/// `fetch`, except that a dry run reads an object it would have created (a
/// namespace, a Deployment) back as it planned it, so later steps can go on.
pub async fn fetch_planned(session: &Session, cluster: &ClusterHandle, resource: &str, opts: &GetOpts) -> Result<Value> {
    match fetch(cluster, resource, opts).await {
        Err(Error::NotFound { cluster: name, object }) if session.dry_run => {
            let target = ObjectRef::resolve(&cluster.0, resource, opts.namespace.as_deref()).await?;
            session
                .applysets
                .planned(&cluster.0, &target)
                .ok_or(Error::NotFound { cluster: name, object })
        }
        other => other,
    }
}

/// `TYPE/NAME` → the object; `TYPE` → a List of the objects (kubectl's shape).
pub async fn fetch(cluster: &ClusterHandle, resource: &str, opts: &GetOpts) -> Result<Value> {
    let client = &cluster.0;
    if resource.contains('/') {
        let target = ObjectRef::resolve(client, resource, opts.namespace.as_deref()).await?;
        return client.get_json(&target.url(), &target).await?.ok_or_else(|| Error::NotFound {
            cluster: client.name.clone(),
            object: target.to_string(),
        });
    }
    let info = client.resolve(resource).await?;
    let mut url = info.url(Some(opts.namespace.as_deref().unwrap_or("default")));
    if let Some(sel) = &opts.selector {
        url.push_str(&format!("?labelSelector={}", encode(sel)));
    }
    let list = client.get_json(&url, &info.plural).await?.unwrap_or(Value::Null);
    let items = list.get("items").cloned().unwrap_or(Value::Array(vec![]));
    let items = match items {
        // List items lack apiVersion/kind; kubectl fills them in.
        Value::Array(v) => Value::Array(
            v.into_iter()
                .map(|mut o| {
                    o["apiVersion"] = info.api_version().into();
                    o["kind"] = info.kind.clone().into();
                    o
                })
                .collect(),
        ),
        other => other,
    };
    Ok(serde_json::json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
