//! Checks a whole apply before its first change (issue 15): every object has
//! apiVersion, kind and name, its kind is served (or defined by a CRD of the
//! same call), and its namespace exists (or a Namespace of the same call
//! creates it). A bad last document must not follow 300 created objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::ClusterClient;
use super::apply::ApplyOptions;
use super::discovery::split_api_version;
use crate::error::{Error, Result};

/// Every object has a non-empty `apiVersion`, `kind` and `metadata.name`;
/// the error counts objects from 1, in manifest order.
pub fn required_fields(objects: &[Value]) -> Result<()> {
    for (index, object) in objects.iter().enumerate() {
        for pointer in ["/apiVersion", "/kind", "/metadata/name"] {
            if text(object, pointer).is_none() {
                let name = text(object, "/metadata/name").map(|n| format!(" \"{n}\"")).unwrap_or_default();
                let kind = text(object, "/kind").map(|k| format!(" ({k}{name})")).unwrap_or(name);
                return Err(Error::usage(format!(
                    "manifest object {} of {}{kind} has no {}; nothing was applied",
                    index + 1,
                    objects.len(),
                    pointer.trim_start_matches('/').replace('/', ".")
                )));
            }
        }
        if let Some(ns) = object.pointer("/metadata/namespace")
            && !ns.is_string()
        {
            return Err(Error::usage(format!(
                "manifest object {} of {} has metadata.namespace {ns}, not a string; nothing was applied",
                index + 1,
                objects.len()
            )));
        }
    }
    Ok(())
}

/// The namespace a namespaced object goes to: its own, else the `namespace`
/// option, else `default` (like kubectl). Both given and different: an error.
pub fn namespace_of(object: &Value, opts: &ApplyOptions) -> Result<String> {
    let own = text(object, "/metadata/namespace");
    if let (Some(own), Some(flag)) = (own, &opts.namespace)
        && own != flag
    {
        let kind = text(object, "/kind").unwrap_or("object");
        let name = text(object, "/metadata/name").unwrap_or("?");
        return Err(Error::usage(format!(
            "{kind} {name} declares namespace \"{own}\" but the apply option says namespace \"{flag}\"; remove one of them"
        )));
    }
    Ok(own
        .map(str::to_string)
        .or_else(|| opts.namespace.clone())
        .unwrap_or_else(|| "default".to_string()))
}

/// Kinds the CRDs among `objects` define: (group, kind) → namespaced.
pub fn crd_kinds(objects: &[Value]) -> HashMap<(String, String), bool> {
    objects
        .iter()
        .filter(|o| text(o, "/kind") == Some("CustomResourceDefinition"))
        .filter_map(|crd| {
            let group = text(crd, "/spec/group")?.to_string();
            let kind = text(crd, "/spec/names/kind")?.to_string();
            Some(((group, kind), text(crd, "/spec/scope") != Some("Cluster")))
        })
        .collect()
}

/// Checks `objects` (already filtered by the selector) against `cluster`:
/// only reads (discovery, namespace GETs), no change.
pub async fn check(cluster: &ClusterClient, objects: &[Value], opts: &ApplyOptions) -> Result<()> {
    let defined = crd_kinds(objects);
    let created: BTreeSet<&str> = objects
        .iter()
        .filter(|o| text(o, "/kind") == Some("Namespace"))
        .filter_map(|o| text(o, "/metadata/name"))
        .collect();
    let mut namespaced_kinds: HashMap<(&str, &str), bool> = HashMap::new();
    // Namespace → the first object that needs it, for the message.
    let mut needed: BTreeMap<String, String> = BTreeMap::new();
    for object in objects {
        let (Some(api_version), Some(kind)) = (text(object, "/apiVersion"), text(object, "/kind")) else {
            continue;
        };
        let namespaced = match namespaced_kinds.get(&(api_version, kind)) {
            Some(n) => *n,
            None => {
                let (group, _) = split_api_version(api_version);
                let n = match defined.get(&(group.to_string(), kind.to_string())) {
                    Some(n) => *n,
                    None => cluster.resolve_kind(api_version, kind).await?.namespaced,
                };
                namespaced_kinds.insert((api_version, kind), n);
                n
            }
        };
        if namespaced {
            let ns = namespace_of(object, opts)?;
            if !created.contains(ns.as_str()) {
                let name = text(object, "/metadata/name").unwrap_or("?");
                needed.entry(ns.clone()).or_insert_with(|| format!("{kind} {ns}/{name}"));
            }
        }
    }
    for (ns, first) in needed {
        if opts.dry_run && cluster.planned_namespaces.lock().map(|p| p.contains(&ns)).unwrap_or(false) {
            continue;
        }
        let what = format!("Namespace {ns}");
        if cluster.get_json(&format!("/api/v1/namespaces/{ns}"), &what).await?.is_none() {
            return Err(missing_namespace(cluster, &ns, &first));
        }
    }
    Ok(())
}

fn missing_namespace(cluster: &ClusterClient, ns: &str, first: &str) -> Error {
    Error::Noted {
        source: Arc::new(Error::NotFound {
            cluster: cluster.name.clone(),
            object: format!("namespace \"{ns}\" (wanted by {first})"),
        }),
        note: format!(
            "nothing was applied: create the namespace first (ensure_namespace(\"{ns}\")) or add a Namespace document to the same apply"
        ),
    }
}

fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bad_last_object_is_found_before_anything_is_sent() {
        let mut objects: Vec<Value> = (0..300)
            .map(|i| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}}))
            .collect();
        assert!(required_fields(&objects).is_ok());
        objects.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "x"}}));
        let err = required_fields(&objects).unwrap_err().to_string();
        assert_eq!(
            err,
            "manifest object 301 of 301 (ConfigMap) has no metadata.name; nothing was applied"
        );
        let err = required_fields(&[json!({"kind": "Service", "metadata": {"name": "s"}})]).unwrap_err();
        assert!(err.to_string().contains("object 1 of 1 (Service \"s\") has no apiVersion"), "{err}");
        let err = required_fields(&[json!({"apiVersion": "v1", "kind": "A", "metadata": {"name": "a", "namespace": 3}})]);
        assert!(err.unwrap_err().to_string().contains("not a string"));
    }

    #[test]
    fn namespace_comes_from_the_object_then_the_option_then_default() {
        let opts = |ns: Option<&str>| ApplyOptions {
            namespace: ns.map(str::to_string),
            ..Default::default()
        };
        let own = json!({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "mine"}});
        let none = json!({"kind": "ConfigMap", "metadata": {"name": "a"}});
        assert_eq!(namespace_of(&own, &opts(None)).unwrap(), "mine");
        assert_eq!(namespace_of(&own, &opts(Some("mine"))).unwrap(), "mine");
        assert_eq!(namespace_of(&none, &opts(Some("flag"))).unwrap(), "flag");
        assert_eq!(namespace_of(&none, &opts(None)).unwrap(), "default");
        let err = namespace_of(&own, &opts(Some("other"))).unwrap_err().to_string();
        assert!(
            err.contains("declares namespace \"mine\" but the apply option says namespace \"other\""),
            "{err}"
        );
    }

    #[test]
    fn kinds_of_crds_in_the_same_call_are_known_with_their_scope() {
        let objects = [
            json!({"kind": "CustomResourceDefinition", "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Widget"}}}),
            json!({"kind": "CustomResourceDefinition", "spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Gadget"}}}),
            json!({"kind": "CustomResourceDefinition", "spec": {}}),
        ];
        let kinds = crd_kinds(&objects);
        assert_eq!(kinds.len(), 2);
        assert!(kinds[&("example.com".into(), "Widget".into())]);
        assert!(!kinds[&("example.com".into(), "Gadget".into())]);
    }
}
