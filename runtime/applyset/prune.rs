//! The end of a successful run: on every cluster the set spans (this run's,
//! and those an earlier run recorded, so a data plane dropped from the
//! inputs is emptied too), delete the members this run did not apply and
//! remove the label and annotation keys it stopped setting. Istio resources
//! and everything else go first, namespaces (and CRDs) after them, each
//! waited for until gone. A dry run only lists what would go.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::join_all;
use http::{Method, StatusCode};
use serde_json::Value;

use super::parent::{self, MetadataKeys, Record};
use super::{ApplySets, ClusterSet, id, member_key, stale};
use crate::error::{Error, Result};
use crate::kube::condition::Check;
use crate::kube::object_ref::ObjectRef;
use crate::kube::watch::{self, WaitRequest};
use crate::kube::{ClusterClient, metadata};
use crate::report::Event;
use crate::session::Session;

/// How long one member may take to go (an Istio resource waits for its operator's finalizer).
const PRUNE_TIMEOUT: Duration = Duration::from_secs(180);
/// Deletions in flight per cluster.
const CONCURRENCY: usize = 16;

/// Settles the set on every cluster it spans; call only after a successful run.
pub async fn finish(session: &Session) -> Result<()> {
    let sets = &session.applysets;
    let touched = session.clusters.used();
    for client in &touched {
        sets.on(client);
    }
    let loaded = join_all(touched.iter().map(|c| async move {
        let set = sets.on(c);
        let mut state = set.state.lock().await;
        set.load(&mut state, sets).await?;
        Ok::<_, Error>(state.recorded.contexts.clone())
    }))
    .await;
    let contexts: BTreeSet<String> = touched.iter().map(|c| c.name.clone()).collect();
    let mut spanned = contexts.clone();
    for recorded in loaded {
        spanned.extend(recorded?);
    }
    let mut clusters = Vec::new();
    for context in &spanned {
        match session.clusters.get(context).await {
            Ok(client) => clusters.push(sets.on(&client)),
            Err(e) => session.warn(
                context,
                &format!("ApplySet {}", sets.name),
                format!("an earlier run left members on this context; not pruned: {e}"),
            ),
        }
    }
    let results = join_all(clusters.iter().map(|set| settle(session, set, &contexts))).await;
    results.into_iter().collect::<Result<Vec<()>>>().map(|_| ())
}

/// A member found on the server.
struct Member {
    target: ObjectRef,
}

async fn settle(session: &Session, set: &Arc<ClusterSet>, contexts: &BTreeSet<String>) -> Result<()> {
    let sets = &session.applysets;
    let client = &set.client;
    let mut state = set.state.lock().await;
    set.load(&mut state, sets).await?;
    let recorded = state.recorded.clone();
    let members = list_members(client, &recorded, &sets.id).await?;
    let doomed: Vec<Member> = members
        .into_iter()
        .filter(|m| {
            !state
                .applied
                .contains(&member_key(&m.target.info, m.target.namespace.as_deref(), &m.target.name))
        })
        .collect();
    let stale_keys: Vec<(String, MetadataKeys)> = recorded
        .metadata
        .iter()
        .map(|(object, keys)| (object.clone(), stale(keys, state.current.metadata.get(object))))
        .filter(|(_, keys)| !keys.is_empty())
        .collect();

    if sets.dry_run {
        for m in &doomed {
            session.step(&client.name, "prune", &m.target.to_string(), "pruned", Instant::now(), None);
        }
        for (object, keys) in &stale_keys {
            let what = describe_keys(object, keys);
            session.step(&client.name, "prune", &what, "removed", Instant::now(), None);
        }
        emit_plan(session, &client.name);
        return Ok(());
    }
    let found = state.found.clone().flatten();
    let other_file = found.as_ref().and_then(|f| f.playbook.clone()).filter(|p| *p != sets.playbook);
    let operation = sets.operation.load(std::sync::atomic::Ordering::Relaxed);
    let keep = match (sets.prune, &other_file) {
        (Some(false), _) => Some("kept (--no-prune)".to_string()),
        (None, _) if operation => Some(String::new()),
        (None, Some(other)) => Some(format!(
            "kept: the set was last recorded by another file of that name, {other} (--prune to prune anyway, --instance to keep both)"
        )),
        _ => None,
    };
    if let Some(why) = keep {
        if !why.is_empty() && (!doomed.is_empty() || !stale_keys.is_empty()) {
            let mut names: Vec<String> = doomed.iter().map(|m| m.target.to_string()).collect();
            names.extend(stale_keys.iter().map(|(object, keys)| describe_keys(object, keys)));
            session.warn(
                &client.name,
                &format!("ApplySet {}", sets.name),
                format!("{why}, no longer applied: {}", names.join(", ")),
            );
        }
        let mut record = recorded;
        record.contexts.extend(contexts.iter().cloned());
        record.playbook = Some(sets.playbook.clone());
        if changes(found.as_ref(), &record) {
            sets.confirm(client).await?;
        }
        return save(client, sets, found, record).await;
    }

    let mut record = state.current.clone();
    record.namespaces.insert(parent::NAMESPACE.into());
    record.contexts = contexts.clone();
    record.playbook = Some(sets.playbook.clone());
    // Never prune after losing the set to another run: its Lease must still be ours.
    if !doomed.is_empty() || !stale_keys.is_empty() || changes(found.as_ref(), &record) {
        sets.confirm(client).await?;
    }
    for (object, keys) in &stale_keys {
        remove_keys(session, client, object, keys).await?;
    }
    let (late, early): (Vec<Member>, Vec<Member>) = doomed
        .into_iter()
        .partition(|m| matches!(m.target.info.kind.as_str(), "Namespace" | "CustomResourceDefinition"));
    for phase in [early, late] {
        let mut deletions = futures::stream::iter(phase.iter().map(|m| delete(session, client, m))).buffer_unordered(CONCURRENCY);
        while let Some(result) = deletions.next().await {
            result?;
        }
    }
    save(client, sets, found, record).await
}

/// Whether saving `record` writes to the server.
fn changes(found: Option<&Record>, record: &Record) -> bool {
    if record.is_empty() {
        found.is_some()
    } else {
        found != Some(record)
    }
}

/// Writes the parent when it changed; removes it when the set is empty here.
async fn save(client: &ClusterClient, sets: &ApplySets, found: Option<Record>, record: Record) -> Result<()> {
    if !changes(found.as_ref(), &record) {
        return Ok(());
    }
    if record.is_empty() {
        return parent::delete(client, &sets.name).await;
    }
    parent::write(client, &sets.name, &sets.id, &record).await
}

/// Every object carrying the set's label, in the kinds and namespaces the
/// parent lists (kubectl's way). A namespaced kind is listed once across all
/// namespaces (one request instead of one per namespace: a rerun's cost), and
/// per namespace only where that is forbidden.
async fn list_members(client: &ClusterClient, record: &Record, set_id: &str) -> Result<Vec<Member>> {
    let discovery = client.discovery(false).await?;
    let selector = format!("?labelSelector={}%3D{set_id}", id::PART_OF.replace('/', "%2F"));
    let infos: Vec<_> = record
        .group_kinds
        .iter()
        .map(|gk| id::split_group_kind(gk))
        // A kind no longer served has no objects left to prune.
        .filter_map(|(group, kind)| discovery.find_group_kind(group, kind).cloned())
        .collect();
    let selector = &selector;
    let listed = join_all(infos.iter().map(|info| async move {
        let everywhere = client.get_json(&format!("{}{selector}", info.url(None)), &info.plural).await;
        match everywhere {
            Ok(list) => Ok(vec![list]),
            Err(_) if info.namespaced => {
                let per_namespace = record
                    .namespaces
                    .iter()
                    .map(|ns| async move { client.get_json(&format!("{}{selector}", info.url(Some(ns))), &info.plural).await });
                join_all(per_namespace).await.into_iter().collect::<Result<Vec<_>>>()
            }
            Err(e) => Err(e),
        }
    }))
    .await;
    let mut members = Vec::new();
    for (info, lists) in infos.iter().zip(listed) {
        for list in lists?.into_iter().flatten() {
            for item in list.get("items").and_then(Value::as_array).into_iter().flatten() {
                let name = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
                let namespace = item.pointer("/metadata/namespace").and_then(Value::as_str);
                if namespace.is_some_and(|ns| !record.namespaces.contains(ns)) {
                    continue;
                }
                members.push(Member {
                    target: ObjectRef::new(info.clone(), name, namespace),
                });
            }
        }
    }
    Ok(members)
}

async fn delete(session: &Session, client: &ClusterClient, member: &Member) -> Result<()> {
    let started = Instant::now();
    let target = &member.target;
    let res = client
        .call(
            Method::DELETE,
            &format!("{}?propagationPolicy=Background", target.url()),
            None,
            Vec::new(),
        )
        .await?;
    if !res.status.is_success() && res.status != StatusCode::NOT_FOUND {
        return Err(client.api_error(&res, &target.to_string(), "prune"));
    }
    let resource = format!("{}/{}", target.info.qualified_plural(), target.name);
    let req = WaitRequest {
        resource: &resource,
        namespace: target.namespace.as_deref(),
        checks: vec![Check::Delete],
        fail_if: vec![],
        timeout: PRUNE_TIMEOUT,
    };
    watch::wait(client, &req, &|_| {}).await?;
    session.step(&client.name, "prune", &target.to_string(), "pruned", started, None);
    Ok(())
}

/// Removes label/annotation keys of `object` (`apiVersion|kind|namespace|name`); a gone object is fine.
async fn remove_keys(session: &Session, client: &ClusterClient, object: &str, keys: &MetadataKeys) -> Result<()> {
    let mut parts = object.splitn(4, '|');
    let (Some(api_version), Some(kind), Some(namespace), Some(name)) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Ok(());
    };
    let Ok(info) = client.resolve_kind(api_version, kind).await else {
        return Ok(());
    };
    let target = ObjectRef::new(info, name, Some(namespace).filter(|n| !n.is_empty()));
    for (field, set) in [("labels", &keys.labels), ("annotations", &keys.annotations)] {
        if set.is_empty() {
            continue;
        }
        let started = Instant::now();
        let entries = set.iter().map(|k| (k.clone(), Value::Null)).collect();
        match metadata::patch(client, &target, field, entries, false).await {
            Ok(_) => {}
            Err(Error::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        }
        let what = format!("{target} {field} {}", set.iter().cloned().collect::<Vec<_>>().join(","));
        session.step(&client.name, "prune", &what, "removed", started, None);
    }
    Ok(())
}

fn describe_keys(object: &str, keys: &MetadataKeys) -> String {
    let parts: Vec<&str> = object.split('|').collect();
    let target = match parts.as_slice() {
        [_, kind, "", name] => format!("{kind} {name}"),
        [_, kind, ns, name] => format!("{kind} {ns}/{name}"),
        _ => object.to_string(),
    };
    let mut what = target;
    for (field, set) in [("labels", &keys.labels), ("annotations", &keys.annotations)] {
        if !set.is_empty() {
            what.push_str(&format!(" {field} {}", set.iter().cloned().collect::<Vec<_>>().join(",")));
        }
    }
    what
}

/// The dry run's summary of one cluster.
fn emit_plan(session: &Session, cluster: &str) {
    let lists = session.applysets.tally.lists(cluster);
    session.reporter.emit(Event::Plan {
        cluster: cluster.to_string(),
        create: lists.create,
        change: lists.change,
        delete: lists.delete,
        prune: lists.prune,
        unchanged: lists.unchanged.len(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_read_like_objects() {
        let mut keys = MetadataKeys::default();
        keys.labels.insert("istio.io/rev".into());
        assert_eq!(describe_keys("v1|Namespace||sample", &keys), "Namespace sample labels istio.io/rev");
        keys.annotations.insert("a".into());
        assert_eq!(
            describe_keys("v1|ConfigMap|ns|cm", &keys),
            "ConfigMap ns/cm labels istio.io/rev annotations a"
        );
    }
}
