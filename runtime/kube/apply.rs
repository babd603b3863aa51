//! Server-side apply of manifests, the way `kubectl apply --server-side`
//! does it and a little better: Namespaces and CRDs first (CRDs waited for
//! until Established, so their custom resources can follow in the same call),
//! the rest concurrently, each reported created/configured/unchanged, fields
//! the server silently dropped named.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::object_ref::ObjectRef;
use super::{ClusterClient, ResourceInfo, apply_check, watch};
use crate::error::{Error, Result};
use crate::selector::Selector;

pub const FIELD_MANAGER: &str = "mesh-run";
/// Enough to keep the API server busy without tripping its flow control.
const CONCURRENCY: usize = 16;
/// From this many objects of one kind in one namespace, one LIST reads their
/// live state instead of a GET each: a GET costs the API server about as much
/// as the apply itself (issue 6: 1,000 ConfigMaps), a LIST of a collection
/// about as much as reading its objects. Below it, GETs stay cheaper, since
/// the collection may hold many objects the manifest does not name.
const LIST_FROM: usize = 16;

#[derive(Default, Clone)]
pub struct ApplyOptions {
    pub namespace: Option<String>,
    pub selector: Option<Selector>,
    pub force: bool,
    pub dry_run: bool,
    /// The ApplySet ID to label new objects with (see `applyset::label_for`).
    pub applyset: Option<String>,
}

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Applied {
    pub object: ObjectRef,
    pub outcome: Outcome,
    /// Paths the server did not keep (unknown fields pruned by the schema).
    pub dropped: Vec<String>,
    /// Dry run only: unified diff of the live object against the result.
    pub diff: Option<String>,
    pub duration: Duration,
    /// The object as the server returned it.
    pub result: Value,
}

/// Applies `objects` to `cluster`; `report` sees each object as it is done.
pub async fn apply(
    cluster: &ClusterClient,
    objects: Vec<Value>,
    opts: &ApplyOptions,
    report: &(dyn Fn(&Applied) + Sync),
) -> Result<Vec<Applied>> {
    apply_check::required_fields(&objects)?;
    let objects: Vec<Value> = objects
        .into_iter()
        .filter(|o| opts.selector.as_ref().is_none_or(|s| s.matches(o)))
        .collect();
    apply_check::check(cluster, &objects, opts).await?;
    let (first, rest): (Vec<Value>, Vec<Value>) = objects.into_iter().partition(|o| {
        matches!(
            o.get("kind").and_then(Value::as_str),
            Some("Namespace" | "CustomResourceDefinition")
        )
    });
    let mut applied = Vec::new();
    let mut new_crds = false;
    for object in first {
        let a = apply_one(cluster, object, opts).await?;
        report(&a);
        if a.object.info.kind == "CustomResourceDefinition" {
            new_crds = true;
            if !opts.dry_run {
                watch::wait_crd_established(cluster, &a.object.name, Duration::from_secs(60)).await?;
            }
        }
        applied.push(a);
    }
    if new_crds && !opts.dry_run {
        cluster.discovery(true).await?;
    }
    let mut prepared = Vec::with_capacity(rest.len());
    for object in rest {
        prepared.push(prepare(cluster, object, opts).await);
    }
    let listed = list_live(cluster, &prepared).await;
    let mut results = futures::stream::iter(prepared.into_iter().map(|p| async {
        let (object, target) = p?;
        let live = listed.get(&target.collection_url()).map(|items| items.get(&target.name).cloned());
        send(cluster, object, target, live, opts).await
    }))
    .buffered(CONCURRENCY);
    let mut first_error = None;
    while let Some(r) = results.next().await {
        match r {
            Ok(a) => {
                report(&a);
                applied.push(a);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(applied),
    }
}

async fn apply_one(cluster: &ClusterClient, object: Value, opts: &ApplyOptions) -> Result<Applied> {
    let (object, target) = prepare(cluster, object, opts).await?;
    send(cluster, object, target, None, opts).await
}

/// The live objects of every collection (kind + namespace) that holds at
/// least [`LIST_FROM`] of `prepared`, by collection URL and name. A LIST
/// that fails leaves its objects to their own GETs.
async fn list_live(cluster: &ClusterClient, prepared: &[Result<(Value, ObjectRef)>]) -> HashMap<String, HashMap<String, Value>> {
    let mut counts: HashMap<String, (usize, &ObjectRef)> = HashMap::new();
    for (_, target) in prepared.iter().flatten() {
        counts.entry(target.collection_url()).or_insert((0, target)).0 += 1;
    }
    let mut listed = HashMap::new();
    for (url, (count, target)) in counts {
        if count < LIST_FROM {
            continue;
        }
        let Ok(Some(list)) = cluster.get_json(&url, target).await else {
            continue;
        };
        listed.insert(url, items_by_name(list, &target.info));
    }
    listed
}

/// The items of a LIST by name, each as a GET returns it: items of built-in
/// kinds come without apiVersion and kind.
fn items_by_name(mut list: Value, info: &ResourceInfo) -> HashMap<String, Value> {
    let Some(Value::Array(items)) = list.get_mut("items").map(Value::take) else {
        return HashMap::new();
    };
    items
        .into_iter()
        .filter_map(|mut item| {
            item["apiVersion"] = Value::String(info.api_version());
            item["kind"] = Value::String(info.kind.clone());
            Some((item.pointer("/metadata/name")?.as_str()?.to_string(), item))
        })
        .collect()
}

/// Resolves an object's kind and namespace (filling it in) and names its target.
async fn prepare(cluster: &ClusterClient, mut object: Value, opts: &ApplyOptions) -> Result<(Value, ObjectRef)> {
    let api_version = field(&object, "/apiVersion")?;
    let kind = field(&object, "/kind")?;
    let name = field(&object, "/metadata/name")?;
    let info = cluster.resolve_kind(&api_version, &kind).await?;
    let namespace = if info.namespaced {
        let ns = apply_check::namespace_of(&object, opts)?;
        object["metadata"]["namespace"] = Value::String(ns.clone());
        Some(ns)
    } else {
        None
    };
    compat::fill_port_protocols(&mut object);
    Ok((object, ObjectRef::new(info, &name, namespace.as_deref())))
}

/// Applies one prepared object. `live`: its live state when already known
/// (`Some(None)`: absent), else it is read first.
async fn send(
    cluster: &ClusterClient,
    object: Value,
    target: ObjectRef,
    live: Option<Option<Value>>,
    opts: &ApplyOptions,
) -> Result<Applied> {
    let started = Instant::now();
    let kind = target.info.kind.clone();
    let namespace = target.namespace.clone();
    let live = match live {
        Some(live) => live,
        None => cluster.get_json(&target.url(), &target).await?,
    };

    let mut object = object;
    if let Some(label) = opts
        .applyset
        .as_deref()
        .and_then(|id| crate::applyset::label_for(id, live.as_ref()))
    {
        object["metadata"]["labels"][crate::applyset::id::PART_OF] = Value::String(label);
    }
    let mut path = format!("{}?fieldManager={FIELD_MANAGER}&force={}", target.url(), opts.force);
    if opts.dry_run {
        path.push_str("&dryRun=All");
    }
    let body = serde_json::to_vec(&object).map_err(|e| Error::usage(e.to_string()))?;
    let res = cluster
        .call(Method::PATCH, &path, Some("application/apply-patch+yaml"), body)
        .await?;
    if opts.dry_run
        && res.status == StatusCode::NOT_FOUND
        && res.body.pointer("/details/kind").and_then(Value::as_str) == Some("namespaces")
    {
        // A dry run cannot create the namespace first, so the server cannot
        // try this object; say so instead of failing the whole dry run.
        let note = format!(
            "namespace {} would be created first; the server could not dry-run this object",
            namespace.as_deref().unwrap_or("?")
        );
        return Ok(Applied {
            object: target,
            outcome: Outcome::Created,
            dropped: vec![],
            diff: Some(note),
            duration: started.elapsed(),
            result: object,
        });
    }
    if !res.status.is_success() {
        return Err(cluster.api_error(&res, &target.to_string(), "apply"));
    }
    let outcome = match (&live, res.status) {
        (None, _) | (_, StatusCode::CREATED) => Outcome::Created,
        (Some(live), _) if opts.dry_run => {
            if strip_volatile(live) == strip_volatile(&res.body) {
                Outcome::Unchanged
            } else {
                Outcome::Configured
            }
        }
        (Some(live), _) if live.pointer("/metadata/resourceVersion") == res.body.pointer("/metadata/resourceVersion") => Outcome::Unchanged,
        _ => Outcome::Configured,
    };
    let diff = opts.dry_run.then(|| diff::render(live.as_ref(), &res.body, &kind)).flatten();
    let dropped = dropped_fields(&object, &res.body, &kind);
    Ok(Applied {
        object: target,
        outcome,
        dropped,
        diff,
        duration: started.elapsed(),
        result: res.body,
    })
}

fn field(object: &Value, pointer: &str) -> Result<String> {
    match object.pointer(pointer).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => {
            let what = object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(|n| format!(" (object \"{n}\")"))
                .unwrap_or_default();
            Err(Error::usage(format!(
                "manifest object{what} has no {}",
                pointer.trim_start_matches('/').replace('/', ".")
            )))
        }
    }
}

/// Fields the server never stores for comparison purposes.
pub fn strip_volatile(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["managedFields", "resourceVersion", "generation", "creationTimestamp", "uid"] {
            m.remove(k);
        }
    }
    v
}

/// Leaf paths present in `sent` but absent from what the server kept.
pub fn dropped_fields(sent: &Value, kept: &Value, kind: &str) -> Vec<String> {
    let mut out = Vec::new();
    walk(sent, kept, String::new(), &mut out);
    // The API server turns a Secret's stringData into data: not a loss.
    out.retain(|p| !(kind == "Secret" && p.starts_with(".stringData")));
    out
}

fn walk(sent: &Value, kept: &Value, path: String, out: &mut Vec<String>) {
    match (sent, kept) {
        (Value::Object(s), Value::Object(k)) => {
            for (key, sv) in s {
                if sv.is_null() {
                    continue;
                }
                let p = format!("{path}.{key}");
                match k.get(key) {
                    Some(kv) => walk(sv, kv, p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Array(s), Value::Array(k)) if s.len() == k.len() => {
            for (i, (sv, kv)) in s.iter().zip(k).enumerate() {
                walk(sv, kv, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

pub mod compat {
    use serde_json::Value;

    /// Kubernetes < 1.21 refuses server-side apply of Service ports and
    /// container ports without `protocol` ("associative list with keys has an
    /// element that omits key field \"protocol\""; kubernetes#95894). `TCP` is
    /// the API's own default, so filling it changes nothing on any server and
    /// makes Istio's samples (which omit it) apply on old servers too.
    pub fn fill_port_protocols(object: &mut Value) {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
        let pointers: &[&str] = match kind.as_str() {
            "Service" => &["/spec/ports"],
            "Pod" => &["/spec/containers", "/spec/initContainers"],
            "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
                &["/spec/template/spec/containers", "/spec/template/spec/initContainers"]
            }
            _ => &[],
        };
        for pointer in pointers {
            let Some(Value::Array(items)) = object.pointer_mut(pointer) else {
                continue;
            };
            if kind == "Service" {
                items.iter_mut().for_each(fill);
            } else {
                for c in items {
                    if let Some(Value::Array(ports)) = c.get_mut("ports") {
                        ports.iter_mut().for_each(fill);
                    }
                }
            }
        }
    }

    fn fill(port: &mut Value) {
        if let Some(m) = port.as_object_mut() {
            m.entry("protocol").or_insert_with(|| Value::String("TCP".into()));
        }
    }
}

pub mod diff {
    use serde_json::Value;

    /// A unified diff of the live object against what the apply would make
    /// it, without bookkeeping fields and without Secret values.
    pub fn render(live: Option<&Value>, result: &Value, kind: &str) -> Option<String> {
        let before = live.map(|l| to_yaml(&redact(&super::strip_volatile(l), kind))).unwrap_or_default();
        let after = to_yaml(&redact(&super::strip_volatile(result), kind));
        if before == after {
            return None;
        }
        let diff = similar::TextDiff::from_lines(&before, &after);
        Some(diff.unified_diff().context_radius(2).header("live", "after apply").to_string())
    }

    fn redact(v: &Value, kind: &str) -> Value {
        let mut v = v.clone();
        if kind == "Secret" {
            for key in ["data", "stringData"] {
                if let Some(Value::Object(m)) = v.get_mut(key) {
                    for (_, val) in m.iter_mut() {
                        let n = val.as_str().map(str::len).unwrap_or(0);
                        *val = Value::String(format!("(sensitive, {n} bytes)"));
                    }
                }
            }
        }
        v
    }

    fn to_yaml(v: &Value) -> String {
        serde_saphyr::to_string(v).unwrap_or_else(|_| serde_json::to_string_pretty(v).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_fields_the_server_pruned() {
        let sent = json!({"spec": {"version": "v1.24.3", "namespace": "istio-system", "value": {"global": {"network": "n1"}}}});
        let kept = json!({"spec": {"version": "v1.24.3", "namespace": "istio-system"}});
        assert_eq!(dropped_fields(&sent, &kept, "Istio"), vec![".spec.value"]);
        assert!(dropped_fields(&sent, &sent, "Istio").is_empty());
    }

    #[test]
    fn listed_items_read_like_gets() {
        let info = ResourceInfo {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            singular: "configmap".into(),
            short_names: vec!["cm".into()],
            namespaced: true,
        };
        let list = json!({"kind": "ConfigMapList", "items": [
            {"metadata": {"name": "a", "resourceVersion": "7"}, "data": {"k": "v"}},
            {"metadata": {}}
        ]});
        let items = items_by_name(list, &info);
        assert_eq!(items.len(), 1);
        assert_eq!(
            items["a"],
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "7"}, "data": {"k": "v"}})
        );
        assert!(items_by_name(json!({}), &info).is_empty());
    }

    #[test]
    fn secret_string_data_is_not_a_drop() {
        let sent = json!({"stringData": {"config": "x"}});
        assert!(dropped_fields(&sent, &json!({"data": {"config": "eA=="}}), "Secret").is_empty());
    }

    #[test]
    fn fills_missing_port_protocols_only() {
        let mut svc = json!({"kind": "Service", "spec": {"ports": [{"port": 5000}, {"port": 53, "protocol": "UDP"}]}});
        compat::fill_port_protocols(&mut svc);
        assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(svc["spec"]["ports"][1]["protocol"], "UDP");
        let mut deploy =
            json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"ports": [{"containerPort": 5000}]}]}}}});
        compat::fill_port_protocols(&mut deploy);
        assert_eq!(deploy.pointer("/spec/template/spec/containers/0/ports/0/protocol").unwrap(), "TCP");
    }

    #[test]
    fn diff_never_shows_secret_values() {
        let live = json!({"kind": "Secret", "data": {"token": "c2VjcmV0"}});
        let after = json!({"kind": "Secret", "data": {"token": "b3RoZXJzZWNyZXQ="}});
        let d = diff::render(Some(&live), &after, "Secret").unwrap();
        assert!(!d.contains("c2VjcmV0") && !d.contains("b3RoZXJ"), "{d}");
        assert!(d.contains("sensitive"), "{d}");
    }
}
