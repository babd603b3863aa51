//! The cross-cluster check of the simulated Sail Operator: does a remote
//! secret's kubeconfig really reach and authenticate to a given API server?
//! The real external istiod connects with that kubeconfig; so does this.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::SimulatedCluster;

/// A failed connection is retried after this long, as the real istiod retries.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

type Key = (String, String, String, String);

/// Results per (target cluster, secret uid, resourceVersion, data key): a
/// working secret is tried once per version; a failing one again after
/// [`RETRY_AFTER`] (the target may have gained the token or RBAC meanwhile).
#[derive(Default)]
pub struct RemoteAccess {
    verdicts: HashMap<Key, Verdict>,
    /// Keys consulted during the current round; others are forgotten at its end.
    seen: HashSet<Key>,
}

struct Verdict {
    result: Result<(), String>,
    at: Instant,
}

/// Where a kubeconfig came from, for log lines.
pub struct SecretSource<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub resource_version: &'a str,
    pub key: &'a str,
}

impl RemoteAccess {
    /// True when `kubeconfig` (a Secret data value) targets `target` and
    /// authenticates to it: its CA (or server URL) identifies `target`, and a
    /// `GET /api` with its credentials succeeds with TLS verified.
    pub async fn authenticates(&mut self, target: &SimulatedCluster, source: &SecretSource<'_>, kubeconfig: &[u8]) -> bool {
        let key = (
            target.name.clone(),
            source.uid.to_string(),
            source.resource_version.to_string(),
            source.key.to_string(),
        );
        self.seen.insert(key.clone());
        let previous = self.verdicts.get(&key);
        if let Some(verdict) = previous
            && (verdict.result.is_ok() || verdict.at.elapsed() < RETRY_AFTER)
        {
            return verdict.result.is_ok();
        }
        let result = check(target, kubeconfig).await;
        // Log changes only: a retry that fails the same way says nothing new.
        if previous.map(|v| &v.result) != Some(&result) {
            let what = format!(
                "simulated sail-operator: remote secret {}/{} (key {}) on {}",
                source.namespace, source.name, source.key, source.cluster
            );
            match &result {
                Ok(()) => eprintln!("{what} authenticates to cluster {}", target.name),
                Err(reason) => eprintln!("{what} does not reach cluster {}: {reason}", target.name),
            }
        }
        let ok = result.is_ok();
        self.verdicts.insert(
            key,
            Verdict {
                result,
                at: Instant::now(),
            },
        );
        ok
    }

    /// Ends a reconcile round: forgets secrets no longer consulted and says
    /// whether a failing one is waiting for its retry.
    pub fn end_round(&mut self) -> bool {
        let seen = std::mem::take(&mut self.seen);
        self.verdicts.retain(|key, _| seen.contains(key));
        self.verdicts.values().any(|v| v.result.is_err())
    }
}

async fn check(target: &SimulatedCluster, kubeconfig: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(kubeconfig).map_err(|_| "the value is not text".to_string())?;
    let parsed = Kubeconfig::from_yaml(text).map_err(|e| format!("not a kubeconfig: {e}"))?;
    let context = parsed
        .current_context
        .clone()
        .or_else(|| parsed.contexts.first().map(|c| c.name.clone()))
        .ok_or("the kubeconfig has no context")?;
    let cluster_name = parsed
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| format!("context {context} not found"))?;
    let cluster = parsed
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| format!("cluster {cluster_name} not found"))?;
    let same_ca = cluster
        .certificate_authority_data
        .as_deref()
        .and_then(|data| STANDARD.decode(data.trim()).ok())
        .is_some_and(|pem| String::from_utf8_lossy(&pem).trim() == target.ca_pem.trim());
    let same_server = cluster.server.as_deref().map(|s| s.trim_end_matches('/')) == Some(target.server.as_str());
    if !same_ca && !same_server {
        return Err(format!(
            "it points at {} with another CA",
            cluster.server.as_deref().unwrap_or("no server")
        ));
    }
    let options = KubeConfigOptions {
        context: Some(context),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(parsed, &options)
        .await
        .map_err(|e| format!("unusable kubeconfig: {e}"))?;
    let client = crate::kube::client::connect(&config).map_err(|e| format!("unusable kubeconfig: {e}"))?;
    // Discovery is allowed to every authenticated user (system:discovery) and
    // to nobody else: success proves the credentials, not just the network.
    match tokio::time::timeout(Duration::from_secs(5), client.list_core_api_versions()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("GET /api failed: {e}")),
        Err(_) => Err("GET /api did not answer within 5s".to_string()),
    }
}
