//! The parent of a set on one cluster: a ConfigMap in namespace `mesh-run`
//! (kubectl's `--applyset=configmaps/NAME -n mesh-run`) whose label and
//! annotations say which kinds and namespaces hold members, plus what the
//! KEP has no field for: the contexts the set spans and the label and
//! annotation keys the playbook set with `label`/`annotate`.

use std::collections::{BTreeMap, BTreeSet};

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::id;
use crate::error::{Error, Result};
use crate::kube::ClusterClient;
use crate::kube::apply::FIELD_MANAGER;
use crate::kube::client::Response;

/// Where mesh-run keeps its sets' parents; created on first use, never a member.
pub const NAMESPACE: &str = "mesh-run";
/// Contexts (of the run's kubeconfig) the set has members on, comma-separated.
const CONTEXTS: &str = "mesh-run.io/contexts";
/// JSON: the label and annotation keys `label`/`annotate` set, per object.
const METADATA: &str = "mesh-run.io/metadata";
/// The playbook file that last recorded the set (two files of one name must not prune each other).
const PLAYBOOK: &str = "mesh-run.io/playbook";

/// Label and annotation keys a playbook set on one object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataKeys {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub labels: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub annotations: BTreeSet<String>,
}

impl MetadataKeys {
    pub fn field_mut(&mut self, field: &str) -> &mut BTreeSet<String> {
        if field == "labels" {
            &mut self.labels
        } else {
            &mut self.annotations
        }
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

/// What a parent records. Objects are keyed `apiVersion|kind|namespace|name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub group_kinds: BTreeSet<String>,
    /// Every namespace holding members (the parent's own included only if it does).
    pub namespaces: BTreeSet<String>,
    pub contexts: BTreeSet<String>,
    pub metadata: BTreeMap<String, MetadataKeys>,
    /// The playbook's path when it last ran.
    pub playbook: Option<String>,
}

impl Record {
    pub fn is_empty(&self) -> bool {
        self.group_kinds.is_empty() && self.metadata.is_empty()
    }

    pub fn union(&mut self, other: &Record) {
        self.group_kinds.extend(other.group_kinds.iter().cloned());
        self.namespaces.extend(other.namespaces.iter().cloned());
        self.contexts.extend(other.contexts.iter().cloned());
        for (object, keys) in &other.metadata {
            let mine = self.metadata.entry(object.clone()).or_default();
            mine.labels.extend(keys.labels.iter().cloned());
            mine.annotations.extend(keys.annotations.iter().cloned());
        }
    }

    /// The ConfigMap that records this set.
    pub fn to_parent(&self, name: &str, set_id: &str) -> Value {
        let join = |items: &BTreeSet<String>| items.iter().cloned().collect::<Vec<_>>().join(",");
        let additional: BTreeSet<String> = self.namespaces.iter().filter(|n| *n != NAMESPACE).cloned().collect();
        let mut annotations = serde_json::Map::new();
        annotations.insert(id::TOOLING.into(), tooling().into());
        annotations.insert(id::GROUP_KINDS.into(), join(&self.group_kinds).into());
        if !additional.is_empty() {
            annotations.insert(id::NAMESPACES.into(), join(&additional).into());
        }
        annotations.insert(CONTEXTS.into(), join(&self.contexts).into());
        if !self.metadata.is_empty() {
            annotations.insert(METADATA.into(), serde_json::to_string(&self.metadata).unwrap_or_default().into());
        }
        if let Some(playbook) = &self.playbook {
            annotations.insert(PLAYBOOK.into(), playbook.clone().into());
        }
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {id::ID: set_id}, "annotations": annotations},
        })
    }

    /// Reads a parent; an object another tool manages is refused, as kubectl does.
    pub fn from_parent(parent: &Value, what: &str) -> Result<Record> {
        let annotation = |key: &str| {
            parent
                .pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")))
                .and_then(Value::as_str)
        };
        match annotation(id::TOOLING) {
            Some(t) if t.starts_with("mesh-run/") => {}
            other => {
                return Err(Error::usage(format!(
                    "{what} is not an ApplySet of mesh-run (tooling: {}); mesh-run will not prune or take over another tool's set: pick another --instance",
                    other.unwrap_or("none")
                )));
            }
        }
        let list = |key: &str| -> BTreeSet<String> {
            annotation(key)
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let mut namespaces = list(id::NAMESPACES);
        namespaces.insert(NAMESPACE.into());
        let metadata = match annotation(METADATA) {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| Error::usage(format!("{what}: annotation {METADATA} is not mesh-run's JSON: {e}")))?,
            None => BTreeMap::new(),
        };
        Ok(Record {
            group_kinds: list(id::GROUP_KINDS),
            namespaces,
            contexts: list(CONTEXTS),
            metadata,
            playbook: annotation(PLAYBOOK).map(str::to_string),
        })
    }
}

/// `mesh-run/<version>`, the KEP's `name/semver` tooling form.
pub fn tooling() -> String {
    format!("mesh-run/v{}", env!("CARGO_PKG_VERSION"))
}

fn url(name: &str) -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/configmaps/{name}")
}

/// The parent `name` on `cluster`, if it exists.
pub async fn read(cluster: &ClusterClient, name: &str) -> Result<Option<Record>> {
    let what = format!("ConfigMap {NAMESPACE}/{name} (the ApplySet parent)");
    match cluster.get_json(&url(name), &what).await? {
        Some(parent) => Record::from_parent(&parent, &what).map(Some),
        None => Ok(None),
    }
}

/// Writes the parent (server-side apply), creating namespace `mesh-run` if needed.
pub async fn write(cluster: &ClusterClient, name: &str, set_id: &str, record: &Record) -> Result<()> {
    let what = format!("ConfigMap {NAMESPACE}/{name}");
    let body = serde_json::to_vec(&record.to_parent(name, set_id)).unwrap_or_default();
    let path = format!("{}?fieldManager={FIELD_MANAGER}&force=true", url(name));
    for attempt in 0..2 {
        let res = cluster
            .call(Method::PATCH, &path, Some("application/apply-patch+yaml"), body.clone())
            .await?;
        if res.status.is_success() {
            return Ok(());
        }
        if !namespace_missing(&res) || attempt == 1 {
            return Err(cluster.api_error(&res, &what, "record ApplySet"));
        }
        create_namespace(cluster).await?;
    }
    Ok(())
}

/// A write into namespace `mesh-run` failed because it does not exist yet.
pub fn namespace_missing(res: &Response) -> bool {
    res.status == StatusCode::NOT_FOUND && res.body.pointer("/details/kind").and_then(Value::as_str) == Some("namespaces")
}

/// Creates namespace `mesh-run` (someone else creating it first is fine).
pub async fn create_namespace(cluster: &ClusterClient) -> Result<()> {
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
    let res = cluster.create("/api/v1/namespaces", &namespace, false).await?;
    if !res.status.is_success() && res.status != StatusCode::CONFLICT {
        return Err(cluster.api_error(&res, &format!("Namespace {NAMESPACE}"), "create"));
    }
    Ok(())
}

/// Removes the parent of a set that has no members left on `cluster`.
pub async fn delete(cluster: &ClusterClient, name: &str) -> Result<()> {
    let res = cluster.call(Method::DELETE, &url(name), None, Vec::new()).await?;
    if res.status.is_success() || res.status == StatusCode::NOT_FOUND {
        return Ok(());
    }
    Err(cluster.api_error(&res, &format!("ConfigMap {NAMESPACE}/{name}"), "delete"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        let mut r = Record::default();
        r.group_kinds.extend(["Istio.sailoperator.io".to_string(), "Namespace".into()]);
        r.namespaces.extend(["external-istiod".to_string(), NAMESPACE.into()]);
        r.contexts.extend(["cp".to_string(), "dp".into()]);
        r.playbook = Some("/work/playbooks/external.rhai".into());
        r.metadata
            .entry("v1|Namespace||sample".into())
            .or_default()
            .labels
            .insert("istio.io/rev".into());
        r
    }

    #[test]
    fn parent_round_trips_in_kubectls_form() {
        let parent = record().to_parent("external", "applyset-x-v1");
        let annotations = &parent["metadata"]["annotations"];
        assert_eq!(annotations[id::GROUP_KINDS], "Istio.sailoperator.io,Namespace");
        assert_eq!(
            annotations[id::NAMESPACES],
            "external-istiod",
            "the parent's own namespace is implied"
        );
        assert_eq!(annotations[id::TOOLING], tooling());
        assert_eq!(parent["metadata"]["labels"][id::ID], "applyset-x-v1");
        assert_eq!(Record::from_parent(&parent, "parent").unwrap(), record());
    }

    #[test]
    fn another_tools_set_is_refused() {
        let mut parent = record().to_parent("external", "applyset-x-v1");
        parent["metadata"]["annotations"][id::TOOLING] = "kubectl/v1.37.2".into();
        let err = Record::from_parent(&parent, "ConfigMap mesh-run/external").unwrap_err().to_string();
        assert!(err.contains("not an ApplySet of mesh-run (tooling: kubectl/v1.37.2)"), "{err}");
    }

    #[test]
    fn union_keeps_both_sides() {
        let mut a = Record::default();
        a.group_kinds.insert("Secret".into());
        a.union(&record());
        assert_eq!(a.group_kinds.len(), 3);
        assert_eq!(a.metadata.len(), 1);
        assert!(!a.is_empty() && Record::default().is_empty());
    }
}
