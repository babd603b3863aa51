//! `cp.label(resource, map, #{namespace})`: set labels, like `kubectl label --overwrite`.

use std::sync::Arc;
use std::time::Instant;

use rhai::{Dynamic, Engine, EvalAltResult, Map};
use serde::Deserialize;

use super::Primitive;
use crate::kube::metadata;
use crate::kube::object_ref::ObjectRef;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "label",
    signatures: &[
        "cp.label(resource, map) -> string",
        "cp.label(resource, map, #{namespace}) -> string",
    ],
    doc: r#"
Sets labels on an object (`TYPE/NAME`), like `kubectl label --overwrite`; a value of `()` removes the key.
Returns `configured`, or `unchanged` when the object already has them (reruns change nothing).

```rhai
dp.label("namespace/sample", #{ "istio.io/rev": "external-istiod" });
```
"#,
    register,
};

#[derive(Deserialize, Default)]
struct Opts {
    namespace: Option<String>,
}

fn register(engine: &mut Engine, session: &Arc<Session>) {
    register_for(engine, session, "label", "labels");
}

/// Shared by `label` and `annotate`: the same merge patch on another field.
pub(super) fn register_for(engine: &mut Engine, session: &Arc<Session>, name: &'static str, field: &'static str) {
    let s = session.clone();
    let f = move |c: &mut ClusterHandle, resource: &str, entries: Map, opts: Option<Map>| -> Result<String, Box<EvalAltResult>> {
        let (c, resource, s2) = (c.clone(), resource.to_string(), s.clone());
        s.bridge.run(async move {
            let started = Instant::now();
            let opts: Opts = crate::options::parse(name, opts, &["namespace"])?;
            let entries = crate::rhai_json::to_json(&Dynamic::from_map(entries), name)?;
            let entries = metadata::entries(entries, field)?;
            let target = ObjectRef::resolve(&c.0, &resource, opts.namespace.as_deref()).await?;
            let outcome = metadata::patch(&c.0, &target, field, entries, s2.dry_run).await?;
            s2.step(&c.0.name, name, &target.to_string(), outcome.as_str(), started, None);
            Ok(outcome.as_str().to_string())
        })
    };
    let f2 = f.clone();
    engine.register_fn(name, move |c: &mut ClusterHandle, r: &str, m: Map| f(c, r, m, None));
    engine.register_fn(name, move |c: &mut ClusterHandle, r: &str, m: Map, o: Map| f2(c, r, m, Some(o)));
}
