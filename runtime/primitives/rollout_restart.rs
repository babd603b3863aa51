//! `cp.rollout_restart(resource, #{namespace, selector, timeout, wait})`: `kubectl rollout restart`, then `rollout status`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};
use serde::Deserialize;
use serde_json::Value;

use super::Primitive;
use crate::error::{Error, Result};
use crate::kube::ObjectRef;
use crate::kube::rollout::{self, Rollout};
use crate::kube::watch;
use crate::report::Event;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    options: KEYS,
    name: "rollout_restart",
    signatures: &[
        "cp.rollout_restart(resource) -> array",
        "cp.rollout_restart(resource, #{namespace, selector, timeout, wait}) -> array",
    ],
    doc: r#"
Restarts the pods of Deployments, DaemonSets or StatefulSets like `kubectl rollout restart` (it sets
the pod template's `kubectl.kubernetes.io/restartedAt` annotation to now), then waits like
`kubectl rollout status`: the new generation observed, every replica updated, old ones gone, the new
ones available (a Deployment past its progress deadline fails at once, kind `fail_state`). `resource`
is one object (`deploy/helloworld-v1`) or a kind (`deployments`, `ds`, `sts`): every object of it in
`namespace` (default `default`), or those matching `selector`. Returns the restarted objects' names
(`[]` when none matched). `timeout` (default `5m`) bounds the wait of each; `wait: false` only patches.
A live line shows each rollout's state. `--dry-run` sends the patch as a server dry run and does not
wait. Every call restarts again, like kubectl: guard it in the playbook when a rerun must not.

```rhai
dp.rollout_restart("deployments", #{ namespace: "sample", timeout: "3m" });
dp.rollout_restart("deploy/sleep", #{ namespace: "sample" });
```
"#,
    register,
};

#[derive(Deserialize, Default)]
struct Opts {
    namespace: Option<String>,
    selector: Option<String>,
    timeout: Option<Value>,
    wait: Option<bool>,
}

const KEYS: &[&str] = &["namespace", "selector", "timeout", "wait"];

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    let f = move |c: &mut ClusterHandle, resource: &str, opts: Option<Map>| -> std::result::Result<Array, Box<EvalAltResult>> {
        let (s2, c, resource) = (s.clone(), c.clone(), resource.to_string());
        s.bridge.run(async move {
            let names = restart(&s2, &c, &resource, opts).await?;
            Ok(names.into_iter().map(Dynamic::from).collect())
        })
    };
    let f2 = f.clone();
    engine.register_fn("rollout_restart", move |c: &mut ClusterHandle, r: &str| f(c, r, None));
    engine.register_fn("rollout_restart", move |c: &mut ClusterHandle, r: &str, o: Map| f2(c, r, Some(o)));
}

async fn restart(session: &Session, cluster: &ClusterHandle, resource: &str, opts: Option<Map>) -> Result<Vec<String>> {
    let opts: Opts = PRIMITIVE.parse_options(opts)?;
    let timeout = crate::options::duration(&opts.timeout, Duration::from_secs(300), "rollout_restart timeout")?;
    let targets = targets(cluster, resource, &opts).await?;
    let client = &cluster.0;
    // kubectl writes whole seconds; two restarts within one second would then
    // patch nothing and restart nothing, so the time carries its fraction.
    let now = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    let body = serde_json::to_vec(&rollout::restart_patch(&now)).unwrap_or_default();
    for target in &targets {
        let started = Instant::now();
        let mut url = target.url();
        if session.dry_run {
            url.push_str("?dryRun=All");
        }
        let res = client
            .call(Method::PATCH, &url, Some("application/merge-patch+json"), body.clone())
            .await?;
        if !res.status.is_success() {
            return Err(client.api_error(&res, &target.to_string(), "rollout restart"));
        }
        let outcome = if session.dry_run { "restarted (dry run)" } else { "restarted" };
        session.step(&client.name, "rollout_restart", &target.to_string(), outcome, started, None);
    }
    if !session.dry_run && opts.wait != Some(false) {
        let waits = targets.iter().map(|t| wait_rolled_out(session, client, t, timeout));
        futures::future::try_join_all(waits).await?;
    }
    Ok(targets.iter().map(ToString::to_string).collect())
}

/// The objects `resource` names: one `TYPE/NAME`, or every object of a kind
/// in the namespace (matching the selector, if given).
async fn targets(cluster: &ClusterHandle, resource: &str, opts: &Opts) -> Result<Vec<ObjectRef>> {
    let client = &cluster.0;
    let namespace = opts.namespace.as_deref();
    let check_kind = |kind: &str| {
        if rollout::KINDS.contains(&kind) {
            Ok(())
        } else {
            Err(Error::usage(format!(
                "rollout_restart: \"{resource}\" is a {kind}; only {} have rollouts",
                rollout::KINDS.join(", ")
            )))
        }
    };
    if resource.contains('/') {
        if opts.selector.is_some() {
            return Err(Error::usage(format!(
                "rollout_restart: \"{resource}\" names one object; give a kind (e.g. \"deployments\") with a selector"
            )));
        }
        let target = ObjectRef::resolve(client, resource, namespace).await?;
        check_kind(&target.info.kind)?;
        client.get_json(&target.url(), &target).await?.ok_or_else(|| Error::NotFound {
            cluster: client.name.clone(),
            object: target.to_string(),
        })?;
        return Ok(vec![target]);
    }
    let info = client.resolve(resource).await?;
    check_kind(&info.kind)?;
    let get_opts = super::get::GetOpts {
        namespace: opts.namespace.clone(),
        selector: opts.selector.clone(),
    };
    let list = super::get::fetch(cluster, resource, &get_opts).await?;
    let names = list["items"].as_array().into_iter().flatten();
    let names = names.filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str));
    Ok(names.map(|n| ObjectRef::new(info.clone(), n, namespace)).collect())
}

/// Watches `target` until its rollout is done (`kubectl rollout status`).
async fn wait_rolled_out(session: &Session, client: &crate::kube::ClusterClient, target: &ObjectRef, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let mut last = String::from("not seen yet");
    let mut shown = String::new();
    let judge = |object: Option<&Value>| -> Option<Result<()>> {
        let state = match object {
            None => {
                return Some(Err(Error::NotFound {
                    cluster: client.name.clone(),
                    object: format!("{target} (deleted during its rollout)"),
                }));
            }
            Some(o) => rollout::status(&target.info.kind, o),
        };
        let text = match &state {
            Rollout::Done(m) | Rollout::Waiting(m) | Rollout::Failed(m) => m.clone(),
        };
        if text != shown {
            session.reporter.emit(Event::Progress {
                cluster: client.name.clone(),
                object: target.to_string(),
                elapsed_ms: started.elapsed().as_millis(),
                state: text.clone(),
            });
            shown = text.clone();
        }
        last = text.clone();
        match state {
            Rollout::Done(_) => Some(Ok(())),
            Rollout::Waiting(_) => None,
            Rollout::Failed(m) => Some(Err(Error::FailState {
                cluster: client.name.clone(),
                object: target.to_string(),
                state: m,
            })),
        }
    };
    let collection = target.collection_url();
    let observed = watch::observe(client, &collection, &target.name, target, judge);
    let result = tokio::time::timeout(timeout, observed).await;
    match result {
        Ok(verdict) => verdict??,
        Err(_) => {
            return Err(Error::Timeout {
                cluster: client.name.clone(),
                object: target.to_string(),
                after: humantime::format_duration(timeout).to_string(),
                waiting_for: "its rollout to finish".into(),
                explanation: format!("  last state: {last}"),
            });
        }
    }
    session.step(&client.name, "rollout status", &target.to_string(), "rolled out", started, None);
    Ok(())
}
