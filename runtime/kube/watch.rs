//! Waiting on one object: list, then watch from that resourceVersion, judge
//! every event; relist when the watch ends or expires. Never polls. Starts
//! even when the object, or its kind, does not exist yet.

use std::time::Duration;

use futures::TryStreamExt;
use kube::core::WatchEvent;
use serde_json::Value;
use tokio::time::Instant;

use super::ClusterClient;
use super::condition::{self, Check};
use super::object_ref::{self, ObjectRef};
use crate::error::{Error, Result};

pub struct WaitRequest<'a> {
    /// kubectl form: `istio/external-istiod`.
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    /// All must hold.
    pub checks: Vec<Check>,
    /// Any of these ends the wait with an error.
    pub fail_if: Vec<Check>,
    pub timeout: Duration,
}

/// Waits until every check holds; returns the object as last seen (None when deleted).
/// `progress` gets a one-line state description whenever it changes.
pub async fn wait(cluster: &ClusterClient, req: &WaitRequest<'_>, progress: &(dyn Fn(&str) + Sync)) -> Result<Option<Value>> {
    let (_, name) = object_ref::split(req.resource)?;
    let mut last: Option<Value> = None;
    let mut target_name = req.resource.to_string();
    let deadline = Instant::now() + req.timeout;
    let outcome = tokio::time::timeout_at(deadline, watch_until(cluster, req, name, &mut last, &mut target_name, progress)).await;
    match outcome {
        Ok(result) => result,
        Err(_) => {
            let mut all = req.checks.clone();
            all.extend(req.fail_if.iter().cloned());
            Err(Error::Timeout {
                cluster: cluster.name.clone(),
                object: target_name,
                after: humantime::format_duration(req.timeout).to_string(),
                waiting_for: req.checks.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and "),
                explanation: condition::explain(last.as_ref(), &all),
            })
        }
    }
}

async fn watch_until(
    cluster: &ClusterClient,
    req: &WaitRequest<'_>,
    name: &str,
    last: &mut Option<Value>,
    target_name: &mut String,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Option<Value>> {
    // Waiting for deletion of a kind the server does not serve: nothing of it can exist.
    if req.checks.iter().all(|c| *c == Check::Delete)
        && let Err(Error::UnknownKind { .. }) = ObjectRef::resolve(cluster, req.resource, req.namespace).await
    {
        return Ok(None);
    }
    let target = resolve_when_served(cluster, req.resource, req.namespace, progress).await?;
    *target_name = target.to_string();
    let mut shown = String::new();
    let mut judge = |object: Option<&Value>| -> Option<Result<()>> {
        let state = condition::describe_state(object, &req.checks);
        if state != shown {
            progress(&state);
            shown = state;
        }
        if let Some(f) = req.fail_if.iter().find(|f| f.holds(object)) {
            return Some(Err(Error::FailState {
                cluster: cluster.name.clone(),
                object: target.to_string(),
                state: format!("{f} ({})", condition::describe_state(object, std::slice::from_ref(f))),
            }));
        }
        req.checks.iter().all(|c| c.holds(object)).then_some(Ok(()))
    };
    let done = observe(cluster, &target.collection_url(), name, &target, |object| {
        *last = object.cloned();
        judge(object)
    })
    .await?;
    done.map(|_| last.clone())
}

/// The one list-then-watch loop on a named object of `collection` (a
/// collection URL without query; `what` names it in errors): `judge` sees
/// the object (None: absent or deleted) after the list and after every
/// event, until it returns a verdict. Relists when the watch ends or its
/// resourceVersion expired. Unbounded: callers put their own timeout around it.
pub async fn observe<R>(
    cluster: &ClusterClient,
    collection: &str,
    name: &str,
    what: &dyn std::fmt::Display,
    mut judge: impl FnMut(Option<&Value>) -> Option<R>,
) -> Result<R> {
    let selector = format!("fieldSelector=metadata.name%3D{name}");
    loop {
        let list = cluster
            .get_json(&format!("{collection}?{selector}"), what)
            .await?
            .unwrap_or(Value::Null);
        let mut current = list.get("items").and_then(Value::as_array).and_then(|i| i.first()).cloned();
        if let Some(verdict) = judge(current.as_ref()) {
            return Ok(verdict);
        }
        let rv = list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("0");
        let watch_url = format!("{collection}?watch=true&{selector}&resourceVersion={rv}&allowWatchBookmarks=true");
        let events = cluster.watch_events(&watch_url).await?;
        futures::pin_mut!(events);
        while let Some(event) = events.try_next().await? {
            match event {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => current = Some(o),
                WatchEvent::Deleted(_) => current = None,
                // Bookmarks only keep the watch alive: a relist starts fresh anyway.
                WatchEvent::Bookmark(_) => continue,
                // 410 Gone and friends: the resourceVersion is too old, relist.
                WatchEvent::Error(_) => break,
            }
            if let Some(verdict) = judge(current.as_ref()) {
                return Ok(verdict);
            }
        }
        // The watch ended (server timeout, 410 Gone): list again and go on.
    }
}

/// Resolves the kind; while it is not served, watches CRDs and retries on
/// each change, so a wait can start before the operator installed its CRD.
async fn resolve_when_served(
    cluster: &ClusterClient,
    resource: &str,
    namespace: Option<&str>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ObjectRef> {
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    loop {
        match ObjectRef::resolve(cluster, resource, namespace).await {
            Ok(t) => return Ok(t),
            Err(Error::UnknownKind { .. }) => {
                progress("its kind is not served yet: waiting for the CRD to be installed");
                let list = cluster.get_json(crds, &"CustomResourceDefinitions").await?.unwrap_or(Value::Null);
                let rv = list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("0");
                // The kind may have appeared between the failed lookup and the list.
                if ObjectRef::resolve(cluster, resource, namespace).await.is_ok() {
                    continue;
                }
                let events = cluster.watch_events(&format!("{crds}?watch=true&resourceVersion={rv}")).await?;
                futures::pin_mut!(events);
                while let Some(event) = events.try_next().await? {
                    if matches!(event, WatchEvent::Added(_) | WatchEvent::Modified(_)) {
                        cluster.discovery(true).await?;
                        if let Ok(t) = ObjectRef::resolve(cluster, resource, namespace).await {
                            return Ok(t);
                        }
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// After applying a CRD: wait until the API server serves it.
pub async fn wait_crd_established(cluster: &ClusterClient, name: &str, timeout: Duration) -> Result<()> {
    let resource = format!("customresourcedefinitions.apiextensions.k8s.io/{name}");
    let req = WaitRequest {
        resource: &resource,
        namespace: None,
        checks: vec![Check::Condition {
            kind: "Established".into(),
            status: "True".into(),
        }],
        fail_if: vec![],
        timeout,
    };
    wait(cluster, &req, &|_| {}).await.map(|_| ())
}
