//! Labels and annotations: merge-patched, idempotent (`unchanged` when the
//! object already carries them), `()` removes a key.

use http::Method;
use serde_json::{Map, Value};

use super::ClusterClient;
use super::apply::Outcome;
use super::object_ref::ObjectRef;
use crate::error::{Error, Result};

/// Sets `field` (`labels` or `annotations`) entries on `target`.
pub async fn patch(
    cluster: &ClusterClient,
    target: &ObjectRef,
    field: &str,
    entries: Map<String, Value>,
    dry_run: bool,
) -> Result<Outcome> {
    patch_keys(cluster, target, field, entries, dry_run)
        .await
        .map(|(outcome, _)| outcome)
}

/// `patch`, also naming the keys whose value it changed.
pub async fn patch_keys(
    cluster: &ClusterClient,
    target: &ObjectRef,
    field: &str,
    entries: Map<String, Value>,
    dry_run: bool,
) -> Result<(Outcome, Vec<String>)> {
    let Some(live) = cluster.get_json(&target.url(), target).await? else {
        // A dry run did not create what the playbook creates just before (a namespace).
        if dry_run {
            return Ok((Outcome::Configured, entries.keys().cloned().collect()));
        }
        return Err(Error::NotFound {
            cluster: cluster.name.clone(),
            object: target.to_string(),
        });
    };
    let current = live.pointer(&format!("/metadata/{field}")).and_then(Value::as_object);
    let changed: Vec<String> = entries
        .iter()
        .filter(|(k, v)| match (current.and_then(|c| c.get(k.as_str())), v) {
            (None, Value::Null) => false,
            (Some(have), want) => have != *want,
            _ => true,
        })
        .map(|(k, _)| k.clone())
        .collect();
    if changed.is_empty() {
        return Ok((Outcome::Unchanged, changed));
    }
    let body = serde_json::json!({"metadata": {field: entries}});
    let mut path = target.url();
    if dry_run {
        path.push_str("?dryRun=All");
    }
    let res = cluster
        .call(
            Method::PATCH,
            &path,
            Some("application/merge-patch+json"),
            serde_json::to_vec(&body).unwrap_or_default(),
        )
        .await?;
    if !res.status.is_success() {
        return Err(cluster.api_error(&res, &target.to_string(), field));
    }
    Ok((Outcome::Configured, changed))
}

/// Turns a Rhai-side map of strings into label/annotation values (`()` → null: remove).
pub fn entries(map: Value, what: &str) -> Result<Map<String, Value>> {
    let Value::Object(m) = map else {
        return Err(Error::usage(format!("{what} must be a map like #{{ key: \"value\" }}")));
    };
    m.into_iter()
        .map(|(k, v)| match v {
            Value::String(_) | Value::Null => Ok((k, v)),
            Value::Bool(_) | Value::Number(_) => Ok((k, Value::String(v.to_string()))),
            other => Err(Error::usage(format!("{what} value for \"{k}\" must be a string, not {other}"))),
        })
        .collect()
}
