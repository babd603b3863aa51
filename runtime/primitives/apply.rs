//! `cp.apply(manifests, #{namespace, selector, force})`: server-side apply.

use std::sync::Arc;
use std::time::Instant;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};
use serde::Deserialize;
use serde_json::Value;

use super::Primitive;
use crate::engine;
use crate::error::{Error, Result};
use crate::kube::apply::{self, Applied, ApplyOptions, Outcome};
use crate::kube::{ClusterClient, ResourceInfo};
use crate::selector::Selector;
use crate::sensitive::Sensitive;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "apply",
    signatures: &[
        "cp.apply(manifests) -> array",
        "cp.apply(manifests, #{namespace, selector, force}) -> array",
    ],
    doc: r#"
Server-side apply (field manager `mesh-run`) of multi-document YAML, an object map, an array of
them, or the result of `create_remote_secret`. Backtick strings interpolate `${...}`, so manifests
are templates without another engine. Namespaces and CRDs go first; a CRD is waited for until
Established, so its custom resources can follow in the same call. Options:
`namespace` fills namespaced objects that have none (like `kubectl apply -n`);
`selector` applies only objects whose labels match (like `kubectl apply -l`);
`force: true` takes over fields another field manager owns (a conflict error names them).
Before the first change every object is checked: apiVersion, kind and name present, kind served
(or defined by a CRD of the same call), namespace existing (or created by a Namespace of the same
call); any failure applies nothing. One call applies at most 25,000 objects (its result must fit a
playbook value). Fields the server silently dropped (unknown to its schema) are reported as warnings.
Service and container ports without `protocol` get `TCP` (the API default): Kubernetes < 1.21
refuses server-side apply of such ports. Returns `[#{kind, namespace, name, outcome}]` with outcome
`created`, `configured` or `unchanged`. With `--dry-run` nothing changes and a diff is shown.

```rhai
cp.apply(`
apiVersion: sailoperator.io/v1
kind: Istio
metadata:
  name: default
spec:
  version: v${version}
  namespace: istio-system
`);
dp.apply(helloworld, #{ namespace: "sample", selector: "service=helloworld" });
```
"#,
    options: OPTION_KEYS,
    register,
};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ApplyOpts {
    pub namespace: Option<String>,
    pub selector: Option<String>,
    pub force: Option<bool>,
}

pub const OPTION_KEYS: &[&str] = &["namespace", "selector", "force"];

impl ApplyOpts {
    pub fn into_options(self, dry_run: bool) -> Result<ApplyOptions> {
        Ok(ApplyOptions {
            namespace: self.namespace,
            selector: self.selector.as_deref().map(Selector::parse).transpose()?,
            force: self.force.unwrap_or(false),
            dry_run,
            applyset: None,
        })
    }
}

fn register(engine: &mut Engine, session: &Arc<Session>) {
    for with_opts in [false, true] {
        let s = session.clone();
        let f = move |c: &mut ClusterHandle, manifests: Dynamic, opts: Option<Map>| -> Result<Array, Box<EvalAltResult>> {
            let s2 = s.clone();
            let c = c.clone();
            s.bridge.run(async move {
                let objects = to_objects(manifests)?;
                let opts = PRIMITIVE.parse_options::<ApplyOpts>(opts)?.into_options(s2.dry_run)?;
                apply_and_report(&s2, &c, objects, &opts).await
            })
        };
        if with_opts {
            engine.register_fn("apply", move |c: &mut ClusterHandle, m: Dynamic, o: Map| f(c, m, Some(o)));
        } else {
            engine.register_fn("apply", move |c: &mut ClusterHandle, m: Dynamic| f(c, m, None));
        }
    }
}

/// The kinds and namespaces of `objects`, for the ApplySet's parent. A kind
/// that does not resolve is left to `apply`, which says why.
async fn kinds_of(client: &ClusterClient, objects: &[Value], namespace: Option<&str>) -> Vec<(ResourceInfo, Option<String>)> {
    let mut kinds = Vec::new();
    for o in objects {
        let field = |p: &str| o.pointer(p).and_then(Value::as_str);
        let (Some(api_version), Some(kind)) = (field("/apiVersion"), field("/kind")) else {
            continue;
        };
        let Ok(info) = client.resolve_kind(api_version, kind).await else {
            continue;
        };
        let ns = info
            .namespaced
            .then(|| field("/metadata/namespace").or(namespace).unwrap_or("default").to_string());
        kinds.push((info, ns));
    }
    kinds
}

/// The objects in what a playbook passed: YAML text, a map, an array, a sensitive manifest.
fn to_objects(manifests: Dynamic) -> Result<Vec<Value>> {
    crate::rhai_json::check_depth(&manifests, "apply's manifests")?;
    if manifests.is::<Sensitive>() {
        return Ok(vec![manifests.cast::<Sensitive>().0]);
    }
    if let Some(text) = manifests.clone().try_cast::<rhai::ImmutableString>() {
        return crate::manifest::parse(&text, "manifest");
    }
    if manifests.is_array() {
        let mut out = Vec::new();
        for item in manifests.cast::<Array>() {
            out.extend(to_objects(item)?);
        }
        return Ok(out);
    }
    if manifests.is_map() {
        return crate::rhai_json::to_json(&manifests, "apply's manifests").map(|v| vec![v]);
    }
    Err(Error::usage(format!(
        "apply takes YAML text, an object map or an array of them, not {}",
        manifests.type_name()
    )))
}

/// Entries of one object's result map: kind, namespace, name, outcome.
const RESULT_ENTRIES: usize = 4;

/// The result of applying `objects` must fit the engine's per-value limits:
/// checked before anything is applied, not found after the work is done
/// (issue 15: 26,000 objects applied, then "Size of object map too large").
fn check_result_fits(objects: &[Value], opts: &ApplyOptions) -> Result<()> {
    let selected: Vec<&Value> = objects
        .iter()
        .filter(|o| opts.selector.as_ref().is_none_or(|s| s.matches(o)))
        .collect();
    let fallback = opts.namespace.as_deref().unwrap_or("default").len();
    let text = |o: &Value, p: &str| o.pointer(p).and_then(Value::as_str).map(str::len);
    let strings: usize = selected
        .iter()
        .map(|o| {
            let namespace = text(o, "/metadata/namespace").unwrap_or(fallback);
            text(o, "/kind").unwrap_or(0) + namespace + text(o, "/metadata/name").unwrap_or(0) + "configured".len()
        })
        .sum();
    let max_objects = (engine::MAX_MAP_SIZE / RESULT_ENTRIES).min(engine::MAX_ARRAY_SIZE);
    if selected.len() > max_objects || strings > engine::MAX_STRING_SIZE {
        return Err(Error::usage(format!(
            "this apply holds {} objects: its result would exceed a playbook value's limits ({} map entries, {} MiB of text); \
             nothing was applied: split the manifest into calls of at most {max_objects} objects",
            selected.len(),
            engine::MAX_MAP_SIZE,
            engine::MAX_STRING_SIZE >> 20
        )));
    }
    Ok(())
}

/// Applies and reports each object; shared by `apply` and `apply_file`. New
/// objects join the run's ApplySet (the parent lists their kinds first).
pub async fn apply_and_report(session: &Session, cluster: &ClusterHandle, objects: Vec<Value>, opts: &ApplyOptions) -> Result<Array> {
    check_result_fits(&objects, opts)?;
    let client = &cluster.0;
    let sets = &session.applysets;
    sets.track(client, &kinds_of(client, &objects, opts.namespace.as_deref()).await)
        .await?;
    let opts = &ApplyOptions {
        applyset: Some(sets.id.clone()),
        ..opts.clone()
    };
    let report = |a: &Applied| {
        let started = Instant::now() - a.duration;
        session.step(
            &client.name,
            "apply",
            &a.object.to_string(),
            a.outcome.as_str(),
            started,
            a.diff.clone(),
        );
        if !a.dropped.is_empty() {
            session.warn(
                &client.name,
                &a.object.to_string(),
                format!(
                    "the server dropped fields it does not know (check their spelling): {}",
                    a.dropped.join(", ")
                ),
            );
        }
    };
    let applied = apply::apply(client, objects, opts, &report).await?;
    for a in &applied {
        sets.applied(client, &a.object).await;
        if opts.dry_run && a.outcome == Outcome::Created {
            sets.plan(client, &a.object, a.result.clone());
        }
    }
    Ok(applied
        .iter()
        .map(|a| {
            let mut m = Map::new();
            m.insert("kind".into(), a.object.info.kind.clone().into());
            m.insert(
                "namespace".into(),
                a.object.namespace.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT),
            );
            m.insert("name".into(), a.object.name.clone().into());
            m.insert("outcome".into(), a.outcome.as_str().into());
            Dynamic::from_map(m)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config_maps(count: usize) -> Vec<Value> {
        (0..count)
            .map(|i| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}}))
            .collect()
    }

    /// The limit is Rhai's own: an array of `n` result maps counts `4 n` map entries.
    #[test]
    fn a_result_the_engine_would_refuse_is_refused_before_applying() {
        let opts = ApplyOptions::default();
        assert!(check_result_fits(&config_maps(25_000), &opts).is_ok());
        let err = check_result_fits(&config_maps(25_001), &opts).unwrap_err().to_string();
        assert!(
            err.contains("holds 25001 objects") && err.contains("at most 25000 objects"),
            "{err}"
        );
        // Only what the selector keeps is applied and returned.
        let selective = ApplyOptions {
            selector: Some(crate::selector::Selector::parse("app=none").unwrap()),
            ..Default::default()
        };
        assert!(check_result_fits(&config_maps(25_001), &selective).is_ok());
    }

    /// Cross-check with the engine itself: the largest result that passes the
    /// check is a value the engine accepts, one more object is not.
    #[test]
    fn the_check_agrees_with_the_engine() {
        let engine = engine::bare();
        let result = |n: usize| -> Dynamic {
            let one: Map = [
                ("kind", "ConfigMap"),
                ("namespace", "default"),
                ("name", "c"),
                ("outcome", "created"),
            ]
            .into_iter()
            .map(|(k, v)| (k.into(), Dynamic::from(v)))
            .collect();
            Dynamic::from_array(vec![Dynamic::from_map(one); n])
        };
        let mut scope = rhai::Scope::new();
        scope.push("r", result(25_000));
        assert!(engine.eval_with_scope::<Dynamic>(&mut scope, "r + []").is_ok());
        scope.push("r", result(25_001));
        let err = engine.eval_with_scope::<Dynamic>(&mut scope, "r + []").unwrap_err().to_string();
        assert!(err.contains("Size of object map"), "{err}");
    }
}
