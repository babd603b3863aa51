//! A kubelet's part in an istiod Pod's status: the readiness probe (`GET
//! /ready` on istiod's HTTP port) and what it writes: the `Ready` and
//! `ContainersReady` conditions and the container's status (ready, running
//! or terminated, restarts).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The probe's timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// `true` when `GET <path>` on `127.0.0.1:<port>` answers 200 within the timeout.
pub async fn probe(port: u16, path: &str) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: kube-probe/mesh-run\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1.") && &head[8..12] == b" 200")
    };
    matches!(tokio::time::timeout(PROBE_TIMEOUT, attempt).await, Ok(Some(true)))
}

/// What a kubelet knows of the istiod container.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerView {
    pub name: String,
    pub ready: bool,
    pub restart_count: i32,
    /// A `ContainerState`: `{"running": {...}}` or `{"terminated": {...}}`.
    pub state: Value,
    pub last_state: Value,
}

impl ContainerView {
    pub fn running(&mut self, now: &str) {
        self.state = json!({"running": {"startedAt": now}});
        self.ready = false;
    }

    /// The process ended: `code` its exit code (128 + signal when killed).
    pub fn terminated(&mut self, code: i32, now: &str) {
        let started = self.state.pointer("/running/startedAt").cloned().unwrap_or(json!(now));
        let reason = if code == 0 { "Completed" } else { "Error" };
        self.state = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now}});
        self.ready = false;
    }

    /// A new process replaces the terminated one.
    pub fn restarted(&mut self, now: &str) {
        self.last_state = std::mem::take(&mut self.state);
        self.restart_count += 1;
        self.running(now);
    }
}

/// A merge patch of `status` with the conditions and the container's status
/// as `view` says, the rest as `current` has them; `None` when nothing changes.
/// Conditions keep their transition time unless their status changes.
pub fn status_patch(current: &PodStatus, view: &ContainerView, now: &str) -> Option<Value> {
    let status = serde_json::to_value(current).ok()?;
    let wanted = if view.ready { "True" } else { "False" };
    let mut conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    for kind in ["Ready", "ContainersReady"] {
        match conditions.iter_mut().find(|c| c["type"] == kind) {
            Some(condition) if condition["status"] == wanted => {}
            Some(condition) => {
                condition["status"] = json!(wanted);
                condition["lastTransitionTime"] = json!(now);
            }
            None => conditions.push(json!({"type": kind, "status": wanted, "lastTransitionTime": now})),
        }
    }
    let mut containers = status["containerStatuses"].as_array().cloned().unwrap_or_default();
    let entry = match containers.iter().position(|c| c["name"] == view.name.as_str()) {
        Some(i) => &mut containers[i],
        None => {
            containers.push(json!({"name": view.name, "image": "", "imageID": ""}));
            containers.last_mut()?
        }
    };
    entry["ready"] = json!(view.ready);
    entry["started"] = json!(view.state.get("running").is_some());
    entry["restartCount"] = json!(view.restart_count);
    entry["state"] = view.state.clone();
    entry["lastState"] = if view.last_state.is_null() {
        json!({})
    } else {
        view.last_state.clone()
    };
    let changed = status["conditions"] != json!(conditions) || status["containerStatuses"] != json!(containers);
    changed.then(|| json!({"status": {"conditions": conditions, "containerStatuses": containers}}))
}

/// Reads the Pod and patches its status to `view`; `Ok(false)` when the Pod is gone.
pub async fn write_status(pods: &Api<Pod>, name: &str, view: &ContainerView) -> Result<bool, kube::Error> {
    let Some(pod) = pods.get_opt(name).await? else {
        return Ok(false);
    };
    let Some(patch) = status_patch(&pod.status.unwrap_or_default(), view, &now()) else {
        return Ok(true);
    };
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(true)
}

/// RFC 3339, whole seconds, as Kubernetes writes times.
pub fn now() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kwok's `pod-ready-istiod` stage leaves.
    fn kwok_status() -> PodStatus {
        serde_json::from_value(json!({
            "phase": "Running", "podIP": "198.18.1.1",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "ContainersReady", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "containerStatuses": [{"name": "discovery", "image": "pilot", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]
        }))
        .unwrap()
    }

    fn view() -> ContainerView {
        let mut view = ContainerView {
            name: "discovery".into(),
            ready: false,
            restart_count: 0,
            state: Value::Null,
            last_state: Value::Null,
        };
        view.running("2026-01-01T00:00:01Z");
        view
    }

    #[test]
    fn ready_turns_both_conditions_and_the_container_true_and_keeps_the_rest() {
        let mut view = view();
        view.ready = true;
        let patch = status_patch(&kwok_status(), &view, "2026-01-01T00:00:02Z").unwrap();
        let conditions = &patch["status"]["conditions"];
        assert_eq!(conditions.as_array().unwrap().len(), 4);
        assert_eq!(conditions[0]["lastTransitionTime"], "2026-01-01T00:00:00Z", "Initialized unchanged");
        for i in [1, 2] {
            assert_eq!(conditions[i]["status"], "True");
            assert_eq!(conditions[i]["lastTransitionTime"], "2026-01-01T00:00:02Z");
        }
        let container = &patch["status"]["containerStatuses"][0];
        assert_eq!(container["ready"], true);
        assert_eq!(container["image"], "pilot");
        assert_eq!(container["state"], json!({"running": {"startedAt": "2026-01-01T00:00:01Z"}}));
    }

    #[test]
    fn nothing_to_write_when_the_status_already_says_so() {
        let mut status = kwok_status();
        status.container_statuses.as_mut().unwrap()[0].state = serde_json::from_value(view().state).unwrap();
        status.container_statuses.as_mut().unwrap()[0].started = Some(true);
        status.container_statuses.as_mut().unwrap()[0].last_state = Some(Default::default());
        assert_eq!(status_patch(&status, &view(), "2026-01-01T00:00:02Z"), None);
    }

    #[test]
    fn a_killed_process_is_terminated_then_restarted_with_its_count() {
        let mut view = view();
        view.ready = true;
        view.terminated(137, "2026-01-01T00:01:00Z");
        assert!(!view.ready);
        assert_eq!(view.state["terminated"]["exitCode"], 137);
        assert_eq!(view.state["terminated"]["reason"], "Error");
        assert_eq!(view.state["terminated"]["startedAt"], "2026-01-01T00:00:01Z");
        view.restarted("2026-01-01T00:01:02Z");
        assert_eq!(view.restart_count, 1);
        assert_eq!(view.last_state["terminated"]["exitCode"], 137);
        let patch = status_patch(&kwok_status(), &view, "2026-01-01T00:01:02Z").unwrap();
        let container = &patch["status"]["containerStatuses"][0];
        assert_eq!(
            (container["restartCount"].clone(), container["started"].clone()),
            (json!(1), json!(true))
        );
    }

    #[tokio::test]
    async fn the_probe_wants_a_200_from_a_listening_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            for answer in ["HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 503 Service Unavailable\r\n\r\n"] {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buffer = [0u8; 256];
                let _ = stream.read(&mut buffer).await;
                stream.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        assert!(probe(port, "/ready").await);
        assert!(!probe(port, "/ready").await);
        server.await.unwrap();
        assert!(!probe(port, "/ready").await, "nothing listens any more");
    }
}
