//! `cp.label(resource, map, #{namespace})`: set labels, like `kubectl label --overwrite`.

use std::sync::Arc;
use std::time::Instant;

use rhai::{Dynamic, Engine, EvalAltResult, Map};
use serde::Deserialize;

use super::Primitive;
use serde_json::Value;

use crate::kube::apply::Outcome;
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
A key it sets is recorded in the run's ApplySet: once a run no longer sets it, it is removed.

```rhai
dp.label("namespace/sample", #{ "istio.io/rev": "external-istiod" });
```
"#,
    options: OPTION_KEYS,
    register,
};

pub(super) const OPTION_KEYS: &[&str] = &["namespace"];

#[derive(Deserialize, Default)]
struct Opts {
    namespace: Option<String>,
}

fn register(engine: &mut Engine, session: &Arc<Session>) {
    register_for(engine, session, &PRIMITIVE, "labels");
}

/// Shared by `label` and `annotate`: the same merge patch on another field.
pub(super) fn register_for(engine: &mut Engine, session: &Arc<Session>, primitive: &'static Primitive, field: &'static str) {
    let name = primitive.name;
    let s = session.clone();
    let f = move |c: &mut ClusterHandle, resource: &str, entries: Map, opts: Option<Map>| -> Result<String, Box<EvalAltResult>> {
        let (c, resource, s2) = (c.clone(), resource.to_string(), s.clone());
        s.bridge.run(async move {
            let started = Instant::now();
            let opts: Opts = primitive.parse_options(opts)?;
            let entries = crate::rhai_json::to_json(&Dynamic::from_map(entries), name)?;
            let entries = metadata::entries(entries, field)?;
            let target = ObjectRef::resolve(&c.0, &resource, opts.namespace.as_deref()).await?;
            let (outcome, diff) = set(&s2, &c, &target, field, entries).await?;
            s2.step(&c.0.name, name, &target.to_string(), outcome.as_str(), started, diff);
            Ok(outcome.as_str().to_string())
        })
    };
    let f2 = f.clone();
    engine.register_fn(name, move |c: &mut ClusterHandle, r: &str, m: Map| f(c, r, m, None));
    engine.register_fn(name, move |c: &mut ClusterHandle, r: &str, m: Map, o: Map| f2(c, r, m, Some(o)));
}

/// Sets the entries and records the keys in the run's ApplySet, so a later
/// run that stops setting them removes them. A dry run on an object the run
/// would create first (a namespace it ensures) plans the change on that
/// object; every dry run shows the change as a diff.
async fn set(
    session: &Session,
    cluster: &ClusterHandle,
    target: &ObjectRef,
    field: &str,
    entries: serde_json::Map<String, Value>,
) -> crate::error::Result<(Outcome, Option<String>)> {
    let client = &cluster.0;
    let sets = &session.applysets;
    let keys: Vec<String> = entries.iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k.clone()).collect();
    // The patch below already changes what the set records: hold its Lease first.
    sets.guard(client).await?;
    // Only a dry run needs the object before: for its diff, or its plan when absent.
    let live = if session.dry_run {
        client.get_json(&target.url(), target).await?
    } else {
        None
    };
    let planned = if session.dry_run && live.is_none() {
        sets.planned(client, target)
    } else {
        None
    };
    let outcome = match &planned {
        Some(object) => {
            let mut after = object.clone();
            merge(&mut after, field, &entries);
            sets.plan(client, target, after.clone());
            let diff = crate::kube::apply::diff::render(Some(object), &after, &target.info.kind);
            return Ok((if diff.is_some() { Outcome::Configured } else { Outcome::Unchanged }, diff));
        }
        None => metadata::patch_keys(client, target, field, entries.clone(), session.dry_run).await?,
    };
    let (outcome, changed) = outcome;
    sets.set_metadata(client, target, field, keys, &changed).await?;
    let diff = match (&live, session.dry_run) {
        (Some(live), true) => {
            let mut after = live.clone();
            merge(&mut after, field, &entries);
            crate::kube::apply::diff::render(Some(live), &after, &target.info.kind)
        }
        _ => None,
    };
    Ok((outcome, diff))
}

/// `entries` merged into `object`'s labels or annotations, as the merge patch does (null removes).
fn merge(object: &mut Value, field: &str, entries: &serde_json::Map<String, Value>) {
    let metadata = &mut object["metadata"];
    if !metadata[field].is_object() {
        metadata[field] = Value::Object(Default::default());
    }
    if let Some(map) = metadata[field].as_object_mut() {
        for (k, v) in entries {
            match v {
                Value::Null => map.remove(k),
                v => map.insert(k.clone(), v.clone()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_like_a_merge_patch() {
        let mut ns = json!({"metadata": {"name": "sample", "labels": {"a": "1", "b": "2"}}});
        let entries = json!({"a": null, "c": "3"}).as_object().unwrap().clone();
        merge(&mut ns, "labels", &entries);
        assert_eq!(ns["metadata"]["labels"], json!({"b": "2", "c": "3"}));
        let mut bare = json!({"metadata": {"name": "x"}});
        merge(&mut bare, "annotations", &entries);
        assert_eq!(bare["metadata"]["annotations"], json!({"c": "3"}));
    }
}
