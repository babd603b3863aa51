//! `cp.wait(resource, #{for, timeout, namespace, fail_if})`: `kubectl wait`, watched.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, Map};
use serde::Deserialize;

use super::Primitive;
use crate::error::{Error, Result};
use crate::kube::condition::Check;
use crate::kube::watch::{self, WaitRequest};
use crate::report::Event;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "wait",
    signatures: &[
        "cp.wait(resource) -> map",
        "cp.wait(resource, #{\"for\", wait_for, timeout, namespace, fail_if}) -> map",
    ],
    doc: r#"
Waits until an object satisfies every condition in `"for"` (a string or an array; default
`condition=Ready`; `for` is a Rhai keyword, so quote the key, or use its alias `wait_for`), like `kubectl wait`, by watching it
(no polling). `resource` is in kubectl form
(`istio/external-istiod`, `svc/istio-ingressgateway`, `istios.sailoperator.io/default`), resolved
through discovery. Conditions: `condition=Ready` (or `=False`, `=Unknown`; honours
`observedGeneration`), `jsonpath={.status.x}` (present and non-empty), `jsonpath={.status.x}=value`,
`create`, `delete`. `fail_if` lists conditions that end the wait at once with a `fail_state` error.
Waiting starts even if the object, or its kind, does not exist yet (a CRD still to come); a kind
that looks like a typo of a served one fails at once (`unknown_kind`, "did you mean …?"). `timeout`
defaults to `30s` (`"3m"`, `"90s"` or seconds); the object is always judged once, so `timeout: "0"`
succeeds when the condition already holds (as `kubectl wait --timeout=0`). On timeout the error (kind
`timeout`) says whether the object exists — only if the server said so; else that its kind is not
served, or that no answer came — its last conditions, observedGeneration against generation and the
last JSONPath value. A live line
shows the state while waiting. Returns the object (`()` after `delete`). Skipped in `--dry-run`.

```rhai
cp.wait("istio/external-istiod", #{ "for": "condition=Ready", timeout: "3m" });
cp.wait("svc/istio-ingressgateway", #{ namespace: "istio-system",
    wait_for: "jsonpath={.status.loadBalancer.ingress[0].ip}", timeout: "30s" });
dp.wait("istio/external-istiod", #{ fail_if: "condition=Reconciled=False" });
```
"#,
    options: KEYS,
    register,
};

#[derive(Deserialize, Default)]
struct WaitOpts {
    #[serde(rename = "for")]
    for_: Option<serde_json::Value>,
    /// Alias of `for`, which is a Rhai keyword and must be quoted as a key.
    wait_for: Option<serde_json::Value>,
    timeout: Option<serde_json::Value>,
    namespace: Option<String>,
    fail_if: Option<serde_json::Value>,
}

const KEYS: &[&str] = &["for", "wait_for", "timeout", "namespace", "fail_if"];

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    let f = move |c: &mut ClusterHandle, resource: &str, opts: Option<Map>| -> std::result::Result<Dynamic, Box<EvalAltResult>> {
        let (s2, c, resource) = (s.clone(), c.clone(), resource.to_string());
        s.bridge.run(async move { wait(&s2, &c, &resource, opts).await })
    };
    let f2 = f.clone();
    engine.register_fn("wait", move |c: &mut ClusterHandle, r: &str| f(c, r, None));
    engine.register_fn("wait", move |c: &mut ClusterHandle, r: &str, o: Map| f2(c, r, Some(o)));
}

async fn wait(session: &Session, cluster: &ClusterHandle, resource: &str, opts: Option<Map>) -> Result<Dynamic> {
    let opts: WaitOpts = PRIMITIVE.parse_options(opts)?;
    if opts.for_.is_some() && opts.wait_for.is_some() {
        return Err(Error::usage("wait: give \"for\" or its alias \"wait_for\", not both"));
    }
    let mut fors = crate::options::one_or_many(if opts.for_.is_some() { &opts.for_ } else { &opts.wait_for });
    if fors.is_empty() {
        fors.push("condition=Ready".into());
    }
    let checks = fors.iter().map(|f| Check::parse(f)).collect::<Result<Vec<_>>>()?;
    let fail_if = crate::options::one_or_many(&opts.fail_if)
        .iter()
        .map(|f| Check::parse(f))
        .collect::<Result<Vec<_>>>()?;
    let timeout = crate::options::duration(&opts.timeout, Duration::from_secs(30), "wait timeout")?;
    crate::kube::object_ref::split(resource)?;
    let client = &cluster.0;
    let started = Instant::now();
    let what = fors.join(" and ");
    if session.dry_run {
        session.step(
            &client.name,
            "wait",
            resource,
            "skipped",
            started,
            Some(format!("would wait for {what}")),
        );
        return Ok(Dynamic::UNIT);
    }
    let req = WaitRequest {
        resource,
        namespace: opts.namespace.as_deref(),
        checks,
        fail_if,
        timeout,
    };
    let state = Arc::new(Mutex::new(String::new()));
    let show = |state_text: &str| {
        session.reporter.emit(Event::Progress {
            cluster: client.name.clone(),
            object: resource.to_string(),
            elapsed_ms: started.elapsed().as_millis(),
            state: state_text.to_string(),
        })
    };
    let on_change = |s: &str| {
        *state.lock().expect("state lock") = s.to_string();
        show(s);
    };
    let waiting = watch::wait(client, &req, &on_change);
    tokio::pin!(waiting);
    // On a terminal the live line also ticks between changes.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let object = loop {
        tokio::select! {
            r = &mut waiting => break r?,
            _ = tick.tick(), if session.reporter.is_tty() => show(&state.lock().expect("state lock").clone()),
        }
    };
    session.step(&client.name, "wait", resource, "ok", started, None);
    match object {
        Some(o) => rhai::serde::to_dynamic(o).map_err(|e| Error::usage(e.to_string())),
        None => Ok(Dynamic::UNIT),
    }
}
