//! Waiting on one object: list, then watch from that resourceVersion, judge
//! every event; relist when the watch ends or expires. Never polls. Starts
//! even when the object, or its kind, does not exist yet.

use std::sync::Mutex;
use std::time::Duration;

use futures::TryStreamExt;
use kube::core::WatchEvent;
use serde_json::Value;
use tokio::time::Instant;

use super::ClusterClient;
use super::condition::{self, Check, Seen};
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
///
/// The object is always judged once, even with a zero timeout (as `kubectl
/// wait --timeout=0`): the timeout counts from the start, but it is declared
/// only once the server answered — until then the request deadline rules,
/// and a server that never answered is said to be unreachable.
pub async fn wait(cluster: &ClusterClient, req: &WaitRequest<'_>, progress: &(dyn Fn(&str) + Sync)) -> Result<Option<Value>> {
    let (_, name) = object_ref::split(req.resource)?;
    let seen = Mutex::new(Seen::NoAnswer);
    let target_name = Mutex::new(req.resource.to_string());
    let deadline = Instant::now() + req.timeout;
    let watching = watch_until(cluster, req, name, &seen, &target_name, deadline, progress);
    tokio::pin!(watching);
    let timer = tokio::time::sleep_until(deadline);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            biased;
            result = &mut watching => return match result? {
                Verdict::Holds => Ok(seen.lock().expect("seen lock").object().cloned()),
                Verdict::TimedOut => Err(timeout(cluster, req, &target_name, &seen)),
            },
            _ = &mut timer => {
                if *seen.lock().expect("seen lock") != Seen::NoAnswer {
                    break;
                }
                if cluster.request_timeout.is_none() {
                    return Err(cluster.unreachable(format!(
                        "no answer about {} during the wait's {}",
                        req.resource,
                        humantime::format_duration(req.timeout)
                    )));
                }
                // The first answer is still due: its request deadline decides; look again soon.
                timer.as_mut().reset(Instant::now() + Duration::from_millis(50));
            }
        }
    }
    Err(timeout(cluster, req, &target_name, &seen))
}

/// How a wait ends when no error ended it.
enum Verdict {
    Holds,
    /// Judged false after the deadline (a zero timeout, a slow first answer).
    TimedOut,
}

fn timeout(cluster: &ClusterClient, req: &WaitRequest<'_>, target: &Mutex<String>, seen: &Mutex<Seen>) -> Error {
    let mut all = req.checks.clone();
    all.extend(req.fail_if.iter().cloned());
    Error::Timeout {
        cluster: cluster.name.clone(),
        object: target.lock().expect("target lock").clone(),
        after: humantime::format_duration(req.timeout).to_string(),
        waiting_for: req.checks.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and "),
        explanation: seen.lock().expect("seen lock").explain(&all),
    }
}

async fn watch_until(
    cluster: &ClusterClient,
    req: &WaitRequest<'_>,
    name: &str,
    seen: &Mutex<Seen>,
    target_name: &Mutex<String>,
    deadline: Instant,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Verdict> {
    // Waiting for deletion of a kind the server does not serve: nothing of it can exist.
    if req.checks.iter().all(|c| *c == Check::Delete)
        && let Err(Error::UnknownKind { .. }) = ObjectRef::resolve(cluster, req.resource, req.namespace).await
    {
        *seen.lock().expect("seen lock") = Seen::Object(None);
        return Ok(Verdict::Holds);
    }
    let target = resolve_when_served(cluster, req.resource, req.namespace, seen, progress).await?;
    *target_name.lock().expect("target lock") = target.to_string();
    let mut shown = String::new();
    let mut judge = |object: Option<&Value>| -> Option<Result<Verdict>> {
        *seen.lock().expect("seen lock") = Seen::Object(object.cloned());
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
        if req.checks.iter().all(|c| c.holds(object)) {
            return Some(Ok(Verdict::Holds));
        }
        (Instant::now() >= deadline).then_some(Ok(Verdict::TimedOut))
    };
    observe(cluster, &target.collection_url(), name, &target, &mut judge).await?
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
/// A name that looks like a typo of a served one fails at once instead.
async fn resolve_when_served(
    cluster: &ClusterClient,
    resource: &str,
    namespace: Option<&str>,
    seen: &Mutex<Seen>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ObjectRef> {
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let (kind, _) = object_ref::split(resource)?;
    loop {
        match ObjectRef::resolve(cluster, resource, namespace).await {
            Ok(t) => return Ok(t),
            Err(e @ Error::UnknownKind { .. }) => {
                if !cluster.discovery(false).await?.similar(kind).is_empty() {
                    return Err(e);
                }
                *seen.lock().expect("seen lock") = Seen::KindNotServed(kind.to_string());
                progress(&format!("kind \"{kind}\" is not served yet: waiting for a CRD to provide it"));
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
