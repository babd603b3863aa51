//! `cp.apply(manifests, #{namespace, selector, force})`: server-side apply.

use std::sync::Arc;
use std::time::Instant;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};
use serde::Deserialize;
use serde_json::Value;

use super::Primitive;
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
Fields the server silently dropped (unknown to its schema) are reported as warnings.
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
                let opts = crate::options::parse::<ApplyOpts>("apply", opts, OPTION_KEYS)?.into_options(s2.dry_run)?;
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
        return rhai::serde::from_dynamic::<Value>(&manifests)
            .map(|v| vec![v])
            .map_err(|e| Error::usage(e.to_string()));
    }
    Err(Error::usage(format!(
        "apply takes YAML text, an object map or an array of them, not {}",
        manifests.type_name()
    )))
}

/// Applies and reports each object; shared by `apply` and `apply_file`. New
/// objects join the run's ApplySet (the parent lists their kinds first).
pub async fn apply_and_report(session: &Session, cluster: &ClusterHandle, objects: Vec<Value>, opts: &ApplyOptions) -> Result<Array> {
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
