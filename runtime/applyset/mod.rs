//! What a run owns, per cluster, as a KEP-3659 ApplySet (issue 14): every
//! object a playbook creates or applies carries `applyset.kubernetes.io/part-of`,
//! a parent ConfigMap in namespace `mesh-run` lists the kinds and namespaces
//! to look in, so `kubectl get -l applyset.kubernetes.io/part-of=<id>` and
//! mesh-run see the same set. After a successful run, members that were not
//! applied again are pruned (`prune.rs`); a failed or interrupted run only
//! ever adds to the record.
//!
//! Ownership is never taken: an object that existed without our label
//! (someone else's, or another set's) is applied but not labelled, so no
//! prune of this set touches it.

pub mod id;
pub mod lease;
pub mod lock;
pub mod parent;
mod prune;
mod tally;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::error::Result;
use crate::kube::object_ref::ObjectRef;
use crate::kube::{ClusterClient, ResourceInfo};
use lock::Lock;
use parent::{MetadataKeys, Record};
pub use prune::finish;
pub use tally::Tally;

/// The ApplySets of one run: one name and ID, a parent on every cluster it touches.
pub struct ApplySets {
    /// The parent ConfigMap's name: the playbook's file stem, `.<instance>` when given.
    pub name: String,
    /// kubectl's ID of that parent: the value of every member's `part-of` label.
    pub id: String,
    /// `--prune` (`Some(true)`), `--no-prune` (`Some(false)`) or neither.
    pub prune: Option<bool>,
    /// The playbook called `no_prune()`: a day-2 operation keeps what it made.
    pub operation: std::sync::atomic::AtomicBool,
    pub dry_run: bool,
    /// The playbook's absolute path, recorded on the parent.
    pub playbook: String,
    /// Dry run: the plan of every cluster, from the steps reported.
    pub tally: Tally,
    /// One run at a time per set and cluster (`None`: an engine that runs nothing).
    lock: Option<Lock>,
    clusters: Mutex<BTreeMap<String, Arc<ClusterSet>>>,
}

/// The set on one cluster during a run.
pub struct ClusterSet {
    pub client: Arc<ClusterClient>,
    state: tokio::sync::Mutex<State>,
    /// Dry run: objects as the run would have made them (`get` reads them back).
    planned: Mutex<HashMap<String, Value>>,
}

#[derive(Default)]
struct State {
    /// The parent as the run found it (`None`: not read yet; `Some(None)`: none).
    found: Option<Option<Record>>,
    /// What the parent says now: found ∪ what this run added before applying.
    recorded: Record,
    /// Members (by [`member_key`]) applied or confirmed by this run.
    applied: BTreeSet<String>,
    /// Group-kinds and namespaces of those members.
    current: Record,
}

/// `Kind.group|namespace|name`: a member, independent of API version.
pub fn member_key(info: &ResourceInfo, namespace: Option<&str>, name: &str) -> String {
    format!(
        "{}|{}|{name}",
        id::group_kind(&info.group, &info.kind),
        namespace.unwrap_or_default()
    )
}

impl ApplySets {
    pub fn new(name: String, playbook: String, prune: Option<bool>, dry_run: bool) -> Self {
        let id = id::applyset_id(&name, parent::NAMESPACE, "ConfigMap", "");
        ApplySets {
            name,
            id,
            prune,
            operation: Default::default(),
            dry_run,
            playbook,
            tally: Tally::default(),
            lock: None,
            clusters: Mutex::new(BTreeMap::new()),
        }
    }

    /// A run's sets: their Leases are taken with `bridge`'s runtime, dry-run warnings go to `reporter`.
    pub fn locked(mut self, bridge: crate::bridge::Bridge, reporter: Arc<crate::report::Reporter>) -> Self {
        self.lock = Some(Lock::new(self.name.clone(), self.playbook.clone(), bridge, reporter));
        self
    }

    /// Before changing the set on `client`'s cluster: holds its Lease (a
    /// dry run only looks at it). `track` and `set_metadata` call it; a
    /// primitive that writes before recording (`label`) calls it first.
    pub async fn guard(&self, client: &Arc<ClusterClient>) -> Result<()> {
        match &self.lock {
            Some(lock) if self.dry_run => {
                lock.peek(client).await;
                Ok(())
            }
            Some(lock) => lock.hold(client).await,
            None => Ok(()),
        }
    }

    /// Right before pruning on `client`'s cluster: the Lease is still this run's.
    async fn confirm(&self, client: &Arc<ClusterClient>) -> Result<()> {
        match &self.lock {
            Some(lock) if !self.dry_run => lock.confirm(client).await,
            _ => Ok(()),
        }
    }

    /// The end of the run, however it ended: releases its Leases.
    pub async fn release(&self) {
        if let Some(lock) = &self.lock {
            lock.release().await;
        }
    }

    /// The set on `client`'s cluster, created on first use.
    pub fn on(&self, client: &Arc<ClusterClient>) -> Arc<ClusterSet> {
        let mut clusters = self.clusters.lock().expect("applyset lock");
        clusters
            .entry(client.name.clone())
            .or_insert_with(|| {
                Arc::new(ClusterSet {
                    client: client.clone(),
                    state: Default::default(),
                    planned: Default::default(),
                })
            })
            .clone()
    }

    fn contexts(&self) -> BTreeSet<String> {
        self.clusters.lock().expect("applyset lock").keys().cloned().collect()
    }

    /// Before creating members of these kinds in these namespaces: the
    /// parent must list them first, so an interrupted run leaves no member
    /// the next run cannot find (the KEP's order).
    pub async fn track(&self, client: &Arc<ClusterClient>, members: &[(ResourceInfo, Option<String>)]) -> Result<()> {
        self.guard(client).await?;
        let set = self.on(client);
        let mut state = set.state.lock().await;
        set.load(&mut state, self).await?;
        let mut wanted = state.recorded.clone();
        for (info, namespace) in members {
            wanted.group_kinds.insert(id::group_kind(&info.group, &info.kind));
            wanted.namespaces.extend(namespace.clone());
        }
        wanted.contexts.extend(self.contexts());
        wanted.playbook = Some(self.playbook.clone());
        if wanted != state.recorded && !self.dry_run {
            parent::write(client, &self.name, &self.id, &wanted).await?;
        }
        state.recorded = wanted;
        Ok(())
    }

    /// `object` (as the server returned it) was applied or confirmed by this run.
    pub async fn applied(&self, client: &Arc<ClusterClient>, target: &ObjectRef) {
        let set = self.on(client);
        let mut state = set.state.lock().await;
        state
            .applied
            .insert(member_key(&target.info, target.namespace.as_deref(), &target.name));
        state
            .current
            .group_kinds
            .insert(id::group_kind(&target.info.group, &target.info.kind));
        state.current.namespaces.extend(target.namespace.clone());
    }

    /// Whether `object` carries this set's label (created by it, or adopted earlier).
    pub fn is_member(&self, object: &Value) -> bool {
        object
            .pointer(&format!("/metadata/labels/{}", id::PART_OF.replace('/', "~1")))
            .and_then(Value::as_str)
            == Some(self.id.as_str())
    }

    /// `label`/`annotate` set `keys` of `field` on `target`. A key is recorded
    /// (and removed once a run stops setting it) when the call changed it,
    /// or when an earlier run recorded it: a key that was already there with
    /// that value was someone else's.
    pub async fn set_metadata(
        &self,
        client: &Arc<ClusterClient>,
        target: &ObjectRef,
        field: &str,
        keys: Vec<String>,
        changed: &[String],
    ) -> Result<()> {
        self.guard(client).await?;
        let set = self.on(client);
        let mut state = set.state.lock().await;
        set.load(&mut state, self).await?;
        let object = metadata_key(target);
        let mut before = state.recorded.metadata.get(&object).cloned().unwrap_or_default();
        let known = before.field_mut(field);
        let keys: Vec<String> = keys.into_iter().filter(|k| changed.contains(k) || known.contains(k)).collect();
        if keys.is_empty() {
            return Ok(());
        }
        let mut wanted = state.recorded.clone();
        wanted
            .metadata
            .entry(object.clone())
            .or_default()
            .field_mut(field)
            .extend(keys.iter().cloned());
        wanted.contexts.extend(self.contexts());
        if wanted != state.recorded && !self.dry_run {
            parent::write(client, &self.name, &self.id, &wanted).await?;
        }
        state.recorded = wanted;
        state.current.metadata.entry(object).or_default().field_mut(field).extend(keys);
        Ok(())
    }

    /// Dry run: `object` would exist after this step.
    pub fn plan(&self, client: &Arc<ClusterClient>, target: &ObjectRef, object: Value) {
        let set = self.on(client);
        set.planned.lock().expect("plan lock").insert(target.url(), object);
    }

    /// Dry run: the object at `target` as the run would have made it.
    pub fn planned(&self, client: &Arc<ClusterClient>, target: &ObjectRef) -> Option<Value> {
        let set = self.on(client);
        set.planned.lock().expect("plan lock").get(&target.url()).cloned()
    }
}

/// The `part-of` label to give an object about to be applied: this set's
/// when it does not exist yet, the set it already belongs to when it has one
/// (two sets applying the same object must not take it from each other: they
/// share a field manager, so leaving the label out would remove it), none
/// when it exists without one (it is not ours to prune).
pub fn label_for(set_id: &str, live: Option<&Value>) -> Option<String> {
    match live {
        None => Some(set_id.to_string()),
        Some(live) => live
            .pointer(&format!("/metadata/labels/{}", id::PART_OF.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// `apiVersion|kind|namespace|name`: how the parent names an object whose
/// labels or annotations the playbook set (resolved again when removing).
pub fn metadata_key(target: &ObjectRef) -> String {
    format!(
        "{}|{}|{}|{}",
        target.info.api_version(),
        target.info.kind,
        target.namespace.as_deref().unwrap_or_default(),
        target.name
    )
}

impl ClusterSet {
    async fn load(&self, state: &mut State, sets: &ApplySets) -> Result<()> {
        if state.found.is_none() {
            let found = parent::read(&self.client, &sets.name).await?;
            state.recorded = found.clone().unwrap_or_default();
            state.found = Some(found);
        }
        Ok(())
    }
}

/// Unused keys of an object's metadata record: what a run stopped setting.
fn stale(before: &MetadataKeys, now: Option<&MetadataKeys>) -> MetadataKeys {
    let empty = MetadataKeys::default();
    let now = now.unwrap_or(&empty);
    MetadataKeys {
        labels: before.labels.difference(&now.labels).cloned().collect(),
        annotations: before.annotations.difference(&now.annotations).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_only_what_is_new_or_already_in_a_set() {
        let sets = ApplySets::new("external".into(), "/p/external.rhai".into(), None, false);
        assert_eq!(label_for(&sets.id, None).as_deref(), Some(sets.id.as_str()));
        let theirs = json!({"metadata": {"labels": {"applyset.kubernetes.io/part-of": "applyset-other-v1"}}});
        assert_eq!(label_for(&sets.id, Some(&theirs)).as_deref(), Some("applyset-other-v1"));
        assert!(!sets.is_member(&theirs));
        assert_eq!(label_for(&sets.id, Some(&json!({"metadata": {"name": "x"}}))), None);
        let ours = json!({"metadata": {"labels": {"applyset.kubernetes.io/part-of": sets.id.clone()}}});
        assert!(sets.is_member(&ours));
    }

    #[test]
    fn stale_keys_are_what_a_run_stopped_setting() {
        let mut before = MetadataKeys::default();
        before.labels.extend(["a".to_string(), "b".into()]);
        before.annotations.insert("c".into());
        let mut now = MetadataKeys::default();
        now.labels.insert("a".into());
        let gone = stale(&before, Some(&now));
        assert_eq!(gone.labels.into_iter().collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(gone.annotations.into_iter().collect::<Vec<_>>(), vec!["c"]);
        assert!(stale(&before, Some(&before)).is_empty());
    }
}
