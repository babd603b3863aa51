//! istiod's own view of its remote clusters, `/debug/clusterz`, asked the
//! way istioctl asks it: through the API server's pod proxy (no port
//! forward, no network path to the pod needed), with the context's credentials.

use http::Method;
use serde_json::Value;

use super::graph::secret_subject;
use super::model::{Check, Istiod};
use crate::kube::ClusterClient;

pub const CHECK: &str = "istiod.clusterz";

/// istiod's monitoring port serves the debug endpoints; 8080 is the older HTTP one.
const PORTS: &[u16] = &[15014, 8080];

/// Asks one of `istiod`'s pods; `Err` says why it could not.
pub async fn fetch(client: &ClusterClient, istiod: &Istiod) -> Result<Value, String> {
    let pod = istiod.pods.first().ok_or("no istiod pod")?;
    let mut last = String::new();
    for port in PORTS {
        let path = format!("/api/v1/namespaces/{}/pods/{pod}:{port}/proxy/debug/clusterz", istiod.namespace);
        let call = client.call(Method::GET, &path, None, Vec::new());
        match tokio::time::timeout(std::time::Duration::from_secs(5), call).await {
            Ok(Ok(res)) if res.status.is_success() && res.body.is_array() => return Ok(res.body),
            Ok(Ok(res)) => last = format!("pod {pod} port {port}: HTTP {}", res.status.as_u16()),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("pod {pod} port {port}: no answer within 5s"),
        }
    }
    Err(last)
}

/// One check per remote secret of `istiod`, from its `/debug/clusterz` answer.
pub fn checks(context: &str, istiod: &Istiod, answer: Result<&Value, &str>) -> Vec<Check> {
    let mut out = Vec::new();
    for secret in &istiod.remote_secrets {
        let subject = secret_subject(context, &istiod.namespace, &secret.name);
        let check = match answer {
            Err(e) => Check::warn(
                CHECK,
                context,
                &subject,
                format!("could not ask istiod {} for its clusters: {e}", istiod.id),
                "check that istiod's pods run and that the API server can proxy to them",
            ),
            Ok(list) => {
                let entry = list.as_array().and_then(|l| {
                    l.iter()
                        .find(|c| c.get("id").and_then(Value::as_str) == Some(secret.cluster_name.as_str()))
                });
                let status = entry.and_then(|e| e.get("syncStatus")).and_then(Value::as_str).unwrap_or("");
                match (entry, status) {
                    (Some(_), "synced") => Check::pass(
                        CHECK,
                        context,
                        &subject,
                        format!("istiod {} has synced cluster {}", istiod.id, secret.cluster_name),
                    ),
                    (Some(_), status) => Check::fail(
                        CHECK,
                        context,
                        &subject,
                        format!("istiod {} reports cluster {} {status}", istiod.id, secret.cluster_name),
                        if status == "syncing" {
                            "istiod is still reading the cluster: look again in a moment; if it stays, see secret.credentials"
                        } else {
                            "istiod cannot read the cluster with this secret: see secret.credentials and istiod's log"
                        },
                    ),
                    (None, _) => Check::fail(
                        CHECK,
                        context,
                        &subject,
                        format!(
                            "istiod {} does not know cluster {} of secret {}",
                            istiod.id, secret.cluster_name, secret.name
                        ),
                        "istiod reads only secrets labelled istio/multiCluster=true in its own namespace (LOCAL_CLUSTER_SECRET_WATCHER): check the label, and istiod's log for the secret",
                    ),
                }
            }
        };
        out.push(check);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::model::{RemoteSecret, Verdict};

    #[test]
    fn each_secret_is_judged_by_istiods_sync_status() {
        let secret = |n: &str, c: &str| RemoteSecret {
            name: n.into(),
            cluster_name: c.into(),
            ..Default::default()
        };
        let istiod = Istiod {
            id: "cp/ext/ext".into(),
            namespace: "ext".into(),
            remote_secrets: vec![secret("a", "c1"), secret("b", "c2"), secret("c", "c3")],
            ..Default::default()
        };
        let answer = serde_json::json!([{"id": "c1", "syncStatus": "synced"}, {"id": "c2", "syncStatus": "timeout"}]);
        let checks = checks("cp", &istiod, Ok(&answer));
        let verdicts: Vec<Verdict> = checks.iter().map(|c| c.verdict).collect();
        assert_eq!(verdicts, vec![Verdict::Pass, Verdict::Fail, Verdict::Fail]);
        assert_eq!(checks[1].subject, "cp/ext/secret/b");
        assert!(checks[1].message.contains("c2 timeout"));
        assert!(checks[2].message.contains("does not know cluster c3"));
        let unreachable = super::checks("cp", &istiod, Err("no istiod pod"));
        assert!(unreachable.iter().all(|c| c.verdict == Verdict::Warn));
    }
}
