//! `cp.exec(pod_or_deploy, command, #{container, namespace, timeout})`: `kubectl exec`, returning stdout.

use std::sync::Arc;
use std::time::{Duration, Instant};

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
        "cp.exec(target, command, #{container, namespace, timeout}) -> string",
    ],
    doc: r#"
Runs a command in a container, like `kubectl exec TARGET -c CONTAINER -- COMMAND...`, and returns
its stdout. `target` is a pod name, `pod/NAME`, or `deploy/NAME` (a running pod of the deployment).
A non-zero exit is an error of kind `remote` carrying stderr; a pod that does not exist, `not_found`. With no running pod (e.g. on a cluster
without nodes) the error says how many pods exist and in which phase.

`timeout` (default `5m`; `"90s"`, `"3m"` or seconds) bounds the command from connecting to its exit;
then the error (kind `timeout`) names the pod, container and command. Not `--request-timeout`: that
bounds one API request, and a command is a program, not a request: a curl through a mesh that is
still converging (sidecars retrying, a gateway not yet programmed) may take longer than any one
request should. The connection is closed on expiry,
but the command may go on running in the container: give it a bound of its own (`curl --max-time`).

```rhai
let hello = dp.exec("deploy/sleep", ["curl", "-sS", "helloworld.sample:5000/hello"],
    #{ container: "sleep", namespace: "sample", timeout: "1m" });
```
"#,
    options: KEYS,
    register,
};

const KEYS: &[&str] = &["container", "namespace", "timeout"];
/// Longer than any API request: see the doc.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Deserialize, Default)]
struct Opts {
    container: Option<String>,
    namespace: Option<String>,
    timeout: Option<Value>,
}

/// The options, checked and with their defaults.
#[derive(Debug, PartialEq)]
struct Settings {
    container: Option<String>,
    namespace: String,
    timeout: Duration,
}

fn settings(opts: Option<Map>) -> Result<Settings> {
    let opts: Opts = PRIMITIVE.parse_options(opts)?;
    Ok(Settings {
        timeout: crate::options::duration(&opts.timeout, DEFAULT_TIMEOUT, "exec timeout")?,
        container: opts.container,
        namespace: opts.namespace.unwrap_or_else(|| "default".into()),
    })
}

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    let f =
        move |c: &mut ClusterHandle, target: &str, command: Array, opts: Option<Map>| -> std::result::Result<String, Box<EvalAltResult>> {
            let (c, target, s2) = (c.clone(), target.to_string(), s.clone());
            s.bridge.run(async move {
                let started = Instant::now();
                let settings = settings(opts)?;
                let command: Vec<String> = command.into_iter().map(|d| d.to_string()).collect();
                let pod = pod_for(&c, &target, &settings.namespace).await?;
                let out = exec(&c, &pod, &settings, &command).await?;
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

/// Runs `command` within the timeout; on expiry the connection is dropped
/// (kube aborts its task), which is all a client can do: exec has no kill.
async fn exec(cluster: &ClusterHandle, pod: &str, settings: &Settings, command: &[String]) -> Result<String> {
    let (namespace, container) = (settings.namespace.as_str(), settings.container.as_deref());
    let run = run(cluster, pod, namespace, container, command);
    tokio::time::timeout(settings.timeout, run)
        .await
        .unwrap_or_else(|_| Err(timed_out(&cluster.0.name, pod, settings, command)))
}

fn timed_out(cluster: &str, pod: &str, settings: &Settings, command: &[String]) -> Error {
    let container = match &settings.container {
        Some(c) => format!("container {c}"),
        None => "its default container".to_string(),
    };
    Error::Timeout {
        cluster: cluster.to_string(),
        object: format!("pod {}/{pod}", settings.namespace),
        after: humantime::format_duration(settings.timeout).to_string(),
        waiting_for: format!("`{}` in {container} to exit", command.join(" ")),
        explanation: "  the connection is closed, but the command may still run in the container; if it is only slow, \
             give exec a longer `timeout`; else bound the command itself (e.g. `curl --max-time 10`) to see its own error"
            .to_string(),
    }
}

async fn run(cluster: &ClusterHandle, pod: &str, namespace: &str, container: Option<&str>, command: &[String]) -> Result<String> {
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
    // Both at once: kube buffers 1 KiB of each, so reading stdout to its end
    // first would wait forever on a command writing more to stderr (`curl -v`).
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let (out, err) = (proc.stdout(), proc.stderr());
    let read_out = async {
        match out {
            Some(mut o) => o.read_to_string(&mut stdout).await.map(drop),
            None => Ok(()),
        }
    };
    let read_err = async {
        if let Some(mut e) = err {
            let _ = e.read_to_string(&mut stderr).await;
        }
    };
    let (read, ()) = tokio::join!(read_out, read_err);
    read.map_err(|e| Error::Remote {
        what: what.clone(),
        message: e.to_string(),
    })?;
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

#[cfg(test)]
mod tests {
    use rhai::Dynamic;

    use super::*;

    fn options(pairs: &[(&str, Dynamic)]) -> Option<Map> {
        Some(pairs.iter().map(|(k, v)| ((*k).into(), v.clone())).collect())
    }

    #[test]
    fn the_timeout_defaults_to_five_minutes_and_takes_durations() {
        let defaults = settings(None).unwrap();
        assert_eq!((defaults.timeout, defaults.namespace.as_str()), (DEFAULT_TIMEOUT, "default"));
        assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(300));
        let given = settings(options(&[("timeout", "90s".into()), ("container", "sleep".into())])).unwrap();
        assert_eq!(given.timeout, Duration::from_secs(90));
        assert_eq!(given.container.as_deref(), Some("sleep"));
        let seconds = settings(options(&[("timeout", Dynamic::from_int(2))])).unwrap();
        assert_eq!(seconds.timeout, Duration::from_secs(2));
    }

    #[test]
    fn a_bad_timeout_is_one_usage_error() {
        let err = settings(options(&[("timeout", "soon".into())])).unwrap_err();
        assert_eq!(err.kind(), "usage");
        assert!(err.to_string().starts_with("exec timeout: \"soon\" is not a duration"), "{err}");
        let typo = settings(options(&[("timout", "1m".into())])).unwrap_err().to_string();
        assert!(typo.contains("did you mean \"timeout\"?"), "{typo}");
        assert!(PRIMITIVE.options.contains(&"timeout"), "mesh-run check knows the key");
    }

    #[test]
    fn a_timeout_names_pod_container_command_and_what_to_do() {
        let command = ["curl".to_string(), "-sS".to_string(), "helloworld.sample:5000/hello".to_string()];
        let mut settings = settings(options(&[("namespace", "sample".into()), ("container", "sleep".into())])).unwrap();
        settings.timeout = Duration::from_secs(90);
        let err = timed_out("data-plane", "sleep-7d9f", &settings, &command);
        assert_eq!(err.kind(), "timeout");
        let text = err.to_string();
        assert!(
            text.starts_with(
                "timed out after 1m 30s waiting for pod sample/sleep-7d9f on data-plane (`curl -sS helloworld.sample:5000/hello` in container sleep to exit)"
            ),
            "{text}"
        );
        assert!(text.contains("longer `timeout`") && text.contains("curl --max-time"), "{text}");
        settings.container = None;
        let text = timed_out("data-plane", "sleep-7d9f", &settings, &command).to_string();
        assert!(text.contains("in its default container to exit"), "{text}");
    }
}
