//! `cp.exec(pod_or_deploy, command, #{container, namespace})`: `kubectl exec`, returning stdout.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use rhai::{Array, Engine, EvalAltResult, Map};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::Primitive;
use crate::error::{Error, Result};
use crate::kube::object_ref::ObjectRef;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "exec",
    signatures: &[
        "cp.exec(target, command) -> string",
        "cp.exec(target, command, #{container, namespace}) -> string",
    ],
    doc: r#"
Runs a command in a container, like `kubectl exec TARGET -c CONTAINER -- COMMAND...`, and returns
its stdout. `target` is a pod name, `pod/NAME`, or `deploy/NAME` (a running pod of the deployment).
A non-zero exit is an error of kind `remote` carrying stderr; a pod that does not exist, `not_found`. With no running pod (e.g. on a cluster
without nodes) the error says how many pods exist and in which phase.

```rhai
let hello = dp.exec("deploy/sleep", ["curl", "-sS", "helloworld.sample:5000/hello"],
    #{ container: "sleep", namespace: "sample" });
```
"#,
    options: KEYS,
    register,
};

const KEYS: &[&str] = &["container", "namespace"];

#[derive(Deserialize, Default)]
struct Opts {
    container: Option<String>,
    namespace: Option<String>,
}

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    let f =
        move |c: &mut ClusterHandle, target: &str, command: Array, opts: Option<Map>| -> std::result::Result<String, Box<EvalAltResult>> {
            let (c, target, s2) = (c.clone(), target.to_string(), s.clone());
            s.bridge.run(async move {
                let started = Instant::now();
                let opts: Opts = PRIMITIVE.parse_options(opts)?;
                let command: Vec<String> = command.into_iter().map(|d| d.to_string()).collect();
                let namespace = opts.namespace.unwrap_or_else(|| "default".into());
                let pod = pod_for(&c, &target, &namespace).await?;
                let out = exec(&c, &pod, &namespace, opts.container.as_deref(), &command).await?;
                s2.step(&c.0.name, "exec", &format!("{target} {}", command.join(" ")), "ok", started, None);
                Ok(out)
            })
        };
    let f2 = f.clone();
    engine.register_fn("exec", move |c: &mut ClusterHandle, t: &str, cmd: Array| f(c, t, cmd, None));
    engine.register_fn("exec", move |c: &mut ClusterHandle, t: &str, cmd: Array, o: Map| {
        f2(c, t, cmd, Some(o))
    });
}

/// The pod to run in: the named one, or a running pod selected by a deployment.
async fn pod_for(cluster: &ClusterHandle, target: &str, namespace: &str) -> Result<String> {
    let client = &cluster.0;
    let (kind, name) = target.split_once('/').unwrap_or(("pod", target));
    let info = client.resolve(kind).await?;
    if info.kind == "Pod" {
        // Asked first: exec on a missing pod would fail inside the upgrade, with no kind to catch.
        let pod = ObjectRef::new(info, name, Some(namespace));
        if client.get_json(&pod.url(), &pod).await?.is_none() {
            return Err(Error::NotFound {
                cluster: client.name.clone(),
                object: pod.to_string(),
            });
        }
        return Ok(name.to_string());
    }
    let owner = ObjectRef::new(info, name, Some(namespace));
    let object = client.get_json(&owner.url(), &owner).await?.ok_or_else(|| Error::NotFound {
        cluster: client.name.clone(),
        object: owner.to_string(),
    })?;
    let labels = object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let selector: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    let selector = selector.join(",");
    let list_url = format!(
        "/api/v1/namespaces/{namespace}/pods?labelSelector={}",
        selector.replace('=', "%3D").replace(',', "%2C")
    );
    let pods = client.get_json(&list_url, &"pods").await?.unwrap_or(Value::Null);
    let pods = pods.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    let running = pods
        .iter()
        .find(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running"));
    match running.and_then(|p| p.pointer("/metadata/name")).and_then(Value::as_str) {
        Some(n) => Ok(n.to_string()),
        None => {
            let phases: Vec<String> = pods
                .iter()
                .map(|p| {
                    let n = p.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?");
                    let ph = p
                        .pointer("/status/phase")
                        .and_then(Value::as_str)
                        .unwrap_or("no phase (not scheduled)");
                    format!("{n}: {ph}")
                })
                .collect();
            Err(Error::Remote {
                what: format!("exec in {owner} on {}", client.name),
                message: format!(
                    "no running pod ({} pod(s) match {selector}{}); pods run only where nodes (kubelets) schedule them",
                    pods.len(),
                    if phases.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", phases.join(", "))
                    }
                ),
            })
        }
    }
}

async fn exec(cluster: &ClusterHandle, pod: &str, namespace: &str, container: Option<&str>, command: &[String]) -> Result<String> {
    let client = &cluster.0;
    let what = format!("exec in pod {namespace}/{pod} on {}", client.name);
    let api: Api<Pod> = Api::namespaced(client.client.clone(), namespace);
    let mut params = AttachParams::default().stdout(true).stderr(true).stdin(false);
    if let Some(c) = container {
        params = params.container(c);
    }
    let connecting = api.exec(pod, command, &params);
    let connected = match client.request_timeout {
        Some(t) => tokio::time::timeout(t, connecting).await.map_err(|_| {
            client.unreachable(format!(
                "{what}: no answer within {} (--request-timeout)",
                humantime::format_duration(t)
            ))
        })?,
        None => connecting.await,
    };
    let mut proc = connected.map_err(|e| Error::Remote {
        what: what.clone(),
        message: e.to_string(),
    })?;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut o) = proc.stdout() {
        o.read_to_string(&mut stdout).await.map_err(|e| Error::Remote {
            what: what.clone(),
            message: e.to_string(),
        })?;
    }
    if let Some(mut e) = proc.stderr() {
        let _ = e.read_to_string(&mut stderr).await;
    }
    if let Some(status) = proc.take_status()
        && let Some(s) = status.await
        && s.status.as_deref() == Some("Failure")
    {
        return Err(Error::Remote {
            what,
            message: format!("{}; stderr: {}", s.message.unwrap_or_default(), stderr.trim()),
        });
    }
    Ok(stdout)
}
