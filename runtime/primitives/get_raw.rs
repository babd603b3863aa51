//! `cp.get_raw(path, #{wait_for, timeout})`: `kubectl get --raw PATH`, optionally polled until a JSONPath holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use rhai::{Dynamic, Engine, EvalAltResult, Map};
use serde::Deserialize;
use serde_json::Value;

use super::Primitive;
use crate::error::{Error, Result};
use crate::kube::ClusterClient;
use crate::kube::condition::Check;
use crate::report::Event;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    options: KEYS,
    name: "get_raw",
    signatures: &[
        "cp.get_raw(path) -> map|array|string",
        "cp.get_raw(path, #{wait_for, timeout}) -> map|array|string",
    ],
    doc: r#"
Reads an API server path, like `kubectl get --raw PATH`: JSON comes back as a map or array, anything
else as a string; a status other than 2xx is an error (`not_found` for 404). Through the API
server's proxy this reaches what only a pod serves, e.g. istiod's view of its remote clusters
(`istioctl remote-clusters` reads the same `/debug/clusterz`).

`wait_for` (one or a list of `jsonpath={...}` or `jsonpath={...}=value`, as in `wait`, or one of these
negated with a leading `!`: the path finds nothing, or another value) reads the path
again every 500 ms until every condition holds (a top-level JSON array is matched as the `items`
of a list, as kubectl prints lists: `{.items[?(@.id=="cluster2")].syncStatus}`) — such endpoints cannot be watched — and returns the
last answer; failed reads meanwhile (a pod restarting) are retried. `timeout` (default `30s`) bounds
that; the error (kind `timeout`) shows the last answer or failure. An answer holding Secrets (from
a `secrets` path, or of kind `Secret`/`SecretList`, or a list with a Secret among its items) is only
named there, never shown. With `wait_for`, `--dry-run` skips the call and returns `()`.

```rhai
let path = `/api/v1/namespaces/external-istiod/pods/${pod}:15014/proxy/debug/clusterz`;
let clusters = cp.get_raw(path);
cp.get_raw(path, #{ wait_for: `jsonpath={.items[?(@.id=="cluster2")].syncStatus}=synced`, timeout: "1m" });
cp.get_raw(path, #{ wait_for: `!jsonpath={.items[?(@.id=="cluster3")].id}` });   // cluster3 is gone
```
"#,
    register,
};

#[derive(Deserialize, Default)]
struct Opts {
    wait_for: Option<Value>,
    timeout: Option<Value>,
}

const KEYS: &[&str] = &["wait_for", "timeout"];
const POLL: Duration = Duration::from_millis(500);

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    let f = move |c: &mut ClusterHandle, path: &str, opts: Option<Map>| -> std::result::Result<Dynamic, Box<EvalAltResult>> {
        let (s2, c, path) = (s.clone(), c.clone(), path.to_string());
        s.bridge.run(async move {
            let body = get_raw(&s2, &c.0, &path, opts).await?;
            rhai::serde::to_dynamic(body).map_err(|e| Error::usage(e.to_string()))
        })
    };
    let f2 = f.clone();
    engine.register_fn("get_raw", move |c: &mut ClusterHandle, p: &str| f(c, p, None));
    engine.register_fn("get_raw", move |c: &mut ClusterHandle, p: &str, o: Map| f2(c, p, Some(o)));
}

async fn get_raw(session: &Session, client: &ClusterClient, path: &str, opts: Option<Map>) -> Result<Value> {
    let opts: Opts = PRIMITIVE.parse_options(opts)?;
    if !path.starts_with('/') {
        return Err(Error::usage(format!(
            "get_raw: \"{path}\" is not an API path; give one starting with / (e.g. \"/version\")"
        )));
    }
    let checks = crate::options::one_or_many(&opts.wait_for)
        .iter()
        .map(|f| parse_check(f))
        .collect::<Result<Vec<_>>>()?;
    let timeout = crate::options::duration(&opts.timeout, Duration::from_secs(30), "get_raw timeout")?;
    let started = Instant::now();
    if checks.is_empty() {
        let body = read(client, path).await?;
        session.step(&client.name, "get_raw", path, "ok", started, None);
        return Ok(body);
    }
    let what = checks.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ");
    if session.dry_run {
        let detail = Some(format!("would read until {what}"));
        session.step(&client.name, "get_raw", path, "skipped (dry run)", started, detail);
        return Ok(Value::Null);
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::from("no answer yet");
    loop {
        let state = match read(client, path).await {
            Ok(body) if checks.iter().all(|c| c.holds(&as_list(&body))) => {
                session.step(&client.name, "get_raw", path, "ok", started, None);
                return Ok(body);
            }
            Ok(body) => format!("answered {}", shown_answer(path, &body)),
            Err(e) => format!("failed: {e}"),
        };
        if state != last {
            session.reporter.emit(Event::Progress {
                cluster: client.name.clone(),
                object: path.to_string(),
                elapsed_ms: started.elapsed().as_millis(),
                state: state.clone(),
            });
            last = state;
        }
        if tokio::time::Instant::now() + POLL > deadline {
            return Err(Error::Timeout {
                cluster: client.name.clone(),
                object: path.to_string(),
                after: humantime::format_duration(timeout).to_string(),
                waiting_for: what,
                explanation: format!("  last: {last}"),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A JSONPath condition on an API answer, or its negation (`!jsonpath=...`).
struct Condition {
    check: Check,
    negated: bool,
    text: String,
}

impl Condition {
    fn holds(&self, body: &Value) -> bool {
        self.check.holds(Some(body)) != self.negated
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Only JSONPath conditions make sense on an API answer.
fn parse_check(text: &str) -> Result<Condition> {
    let (negated, rest) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    match Check::parse(rest)? {
        check @ Check::JsonPath { .. } => Ok(Condition {
            check,
            negated,
            text: text.to_string(),
        }),
        _ => Err(Error::usage(format!(
            "get_raw: wait_for \"{text}\" must be jsonpath={{...}} or jsonpath={{...}}=value, optionally negated with !"
        ))),
    }
}

async fn read(client: &ClusterClient, path: &str) -> Result<Value> {
    let res = client.call(Method::GET, path, None, Vec::new()).await?;
    if !res.status.is_success() {
        return Err(client.api_error(&res, path, "get --raw"));
    }
    Ok(res.body)
}

/// What `wait_for` sees: an array as the `items` of a List, since this
/// JSONPath dialect (as kubectl's lists) starts at a map.
fn as_list(body: &Value) -> Value {
    match body {
        Value::Array(_) => serde_json::json!({"items": body}),
        other => other.clone(),
    }
}

/// An answer as the progress line and the timeout show it: cut short, and
/// only named when it holds a Secret's values (tokens, kubeconfigs).
fn shown_answer(path: &str, body: &Value) -> String {
    if crate::sensitive::reads_secrets(path) || crate::sensitive::holds_credentials(body) {
        return crate::sensitive::summary(body);
    }
    abbreviate(&body.to_string())
}

fn abbreviate(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_filter_on_istiods_cluster_list_finds_one_clusters_status() {
        let clusterz = json!([
            {"id": "cluster1", "secretName": "", "syncStatus": "synced"},
            {"id": "cluster2", "secretName": "external-istiod/istio-remote-secret-cluster2", "syncStatus": "syncing"}
        ]);
        let synced = |id: &str| parse_check(&format!("jsonpath={{.items[?(@.id==\"{id}\")].syncStatus}}=synced")).unwrap();
        let list = as_list(&clusterz);
        assert!(synced("cluster1").holds(&list));
        assert!(!synced("cluster2").holds(&list));
        assert!(!synced("cluster3").holds(&list));
        let gone = |id: &str| parse_check(&format!("!jsonpath={{.items[?(@.id==\"{id}\")].id}}")).unwrap();
        assert!(gone("cluster3").holds(&list));
        assert!(!gone("cluster2").holds(&list));
    }

    #[test]
    fn only_jsonpath_conditions() {
        let err = parse_check("!condition=Ready").err().unwrap().to_string();
        assert!(err.contains("must be jsonpath="), "{err}");
    }

    #[test]
    fn a_secrets_values_are_never_shown() {
        let token = "c2VjcmV0LXRva2Vu";
        let secret = json!({"kind": "Secret", "metadata": {"name": "t", "namespace": "x"}, "data": {"token": token}});
        let shown = shown_answer("/api/v1/namespaces/x/secrets/t", &secret);
        assert_eq!(shown, "Secret x/t (contents hidden: they hold credentials)");
        // Through another path (a proxy, an aggregated API), the answer's kind is enough.
        assert!(!shown_answer("/some/proxy", &secret).contains(token));
        let list = json!({"kind": "SecretList", "items": [{"metadata": {"name": "t"}, "data": {"token": token}}]});
        assert_eq!(
            shown_answer("/api/v1/secrets", &list),
            "SecretList of 1 item (contents hidden: they hold credentials)"
        );
        let items = json!([{"id": "a"}, secret]);
        assert!(!shown_answer("/debug/things", &items).contains(token));
        // Whatever a path of Secrets answers (a Table, a partial object) is not shown either.
        let table = json!({"kind": "Table", "rows": [{"cells": ["t", token]}]});
        assert!(!shown_answer("/api/v1/namespaces/x/secrets", &table).contains(token));
        let map = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "visible"}});
        assert!(shown_answer("/api/v1/namespaces/x/configmaps/c", &map).contains("visible"));
    }

    #[test]
    fn long_answers_are_cut() {
        assert_eq!(abbreviate("short"), "short");
        assert_eq!(abbreviate(&"x".repeat(300)).chars().count(), 201);
    }
}
