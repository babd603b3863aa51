//! The mesh as `mesh-run status` reports it: one serializable graph (the
//! JSON schema documented in the README, `schemaVersion` 1) that the text,
//! DOT and SVG views and the `status(clusters)` primitive all read.

use serde::{Deserialize, Serialize};

/// Bumped only when a field changes meaning or goes away; new fields may be added.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub schema_version: u32,
    /// No check failed (warnings allowed).
    pub healthy: bool,
    pub clusters: Vec<Cluster>,
    /// Remote secrets (control plane → data plane) and injection webhooks (data plane → istiod).
    pub edges: Vec<Edge>,
    pub checks: Vec<Check>,
}

/// One kubeconfig context.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub context: String,
    pub server: String,
    pub reachable: bool,
    /// Why it could not be read, when not reachable.
    pub error: Option<String>,
    pub istiods: Vec<Istiod>,
    pub data_planes: Vec<DataPlane>,
    pub gateways: Vec<Gateway>,
    /// Sail's IstioRevisions (several while a revision-based upgrade runs).
    pub revisions: Vec<Revision>,
    /// Sidecar-injected pods per revision.
    pub workloads: Vec<Workloads>,
}

/// A control plane: an `Istio` whose profile is not `remote`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Istiod {
    /// `<context>/<namespace>/<revision>`: how edges name it.
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub revision: String,
    pub version: String,
    /// The Istio resource's `status.state` (`Healthy`, `IstiodNotReady`, ...).
    pub state: String,
    pub cluster_id: String,
    pub mesh_id: String,
    pub network: String,
    /// `EXTERNAL_ISTIOD=true`: it serves data planes through remote secrets.
    pub external: bool,
    pub pods: Vec<String>,
    /// `global.caAddress` and `meshConfig.defaultConfig.discoveryAddress` (host:port).
    pub ca_address: String,
    pub discovery_address: String,
    /// The data planes' injection webhook it patches (`INJECTION_WEBHOOK_CONFIG_NAME`).
    pub injection_webhook: String,
    /// `namespace/name` of the ingress gateway that exposes it, if found.
    pub gateway: Option<String>,
    pub remote_secrets: Vec<RemoteSecret>,
}

/// A Secret labelled `istio/multiCluster=true` in an istiod's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteSecret {
    pub name: String,
    /// The cluster ID it carries (annotation `networking.istio.io/cluster`, else its data key).
    pub cluster_name: String,
    pub server: String,
    /// The kubeconfig context reaching the same server with the same CA; None if no context does.
    pub context: Option<String>,
    /// Who the token authenticates as (learned live), if it does.
    pub account: Option<String>,
    /// The token's `exp` (RFC 3339), when it is a JWT that carries one.
    pub token_expires: Option<String>,
}

/// A data plane: an `Istio` with profile `remote`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataPlane {
    /// `<context>/<namespace>/<revision>`.
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub revision: String,
    pub version: String,
    pub state: String,
    /// From the injection path `/inject/cluster/<id>/net/<network>`.
    pub cluster_id: String,
    pub network: String,
    pub injection_path: String,
    pub remote_pilot_address: String,
    pub webhook: String,
    /// The istiod (its id) holding a remote secret for this cluster, if any.
    pub istiod: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    pub namespace: String,
    pub name: String,
    /// The LoadBalancer's current address (IP or hostname), empty while pending.
    pub address: String,
    pub ports: Vec<u16>,
}

/// A `sailoperator.io` IstioRevision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub name: String,
    pub namespace: String,
    pub version: String,
    pub state: String,
    /// Its `InUse` condition is True (pods or namespaces reference it).
    pub in_use: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workloads {
    pub revision: String,
    pub pods: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EdgeKind {
    /// A control plane's istiod reads a data plane through a remote secret.
    RemoteSecret,
    /// A data plane's injection webhook calls an istiod.
    Webhook,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Edge {
    pub kind: EdgeKind,
    /// Node ids: istiod/data-plane ids, or a bare context for a cluster.
    pub from: String,
    pub to: String,
    pub label: String,
    /// What the checks about this edge name as their `subject`: the data
    /// plane's id for a webhook, `<context>/<namespace>/secret/<name>` for a secret.
    pub subject: String,
    /// No check about this edge failed.
    pub ok: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// One line of the report: which check, about what, the verdict and, when
/// it did not pass, what to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Stable name, e.g. `remote-istiod.ca-bundle` (listed in the README).
    pub check: String,
    pub verdict: Verdict,
    /// The context it concerns.
    pub cluster: String,
    /// The node (istiod/data-plane id) or object it concerns.
    pub subject: String,
    pub message: String,
    pub advice: Option<String>,
}

impl Check {
    pub fn pass(check: &str, cluster: &str, subject: &str, message: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            verdict: Verdict::Pass,
            cluster: cluster.into(),
            subject: subject.into(),
            message: message.into(),
            advice: None,
        }
    }

    pub fn fail(check: &str, cluster: &str, subject: &str, message: impl Into<String>, advice: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::Fail,
            advice: Some(advice.into()),
            ..Check::pass(check, cluster, subject, message)
        }
    }

    pub fn warn(check: &str, cluster: &str, subject: &str, message: impl Into<String>, advice: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::Warn,
            ..Check::fail(check, cluster, subject, message, advice)
        }
    }
}

impl Status {
    /// 0 when every check passed or warned, 1 when one failed.
    pub fn exit_code(&self) -> u8 {
        if self.healthy { 0 } else { 1 }
    }

    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.verdict == Verdict::Fail)
    }

    /// The failed checks about one node, for the drawings.
    pub fn failures_of<'a>(&'a self, subject: &'a str) -> impl Iterator<Item = &'a Check> + 'a {
        self.failed().filter(move |c| c.subject == subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_with_camel_case_names() {
        let status = Status {
            schema_version: SCHEMA_VERSION,
            healthy: false,
            clusters: vec![Cluster {
                context: "cp".into(),
                reachable: true,
                istiods: vec![Istiod {
                    id: "cp/ns/rev".into(),
                    remote_secrets: vec![RemoteSecret {
                        name: "s".into(),
                        context: Some("dp".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            edges: vec![Edge {
                kind: EdgeKind::RemoteSecret,
                from: "cp/ns/rev".into(),
                to: "dp/ns/rev".into(),
                label: "s".into(),
                subject: "cp/ns/secret/s".into(),
                ok: true,
            }],
            checks: vec![Check::fail("secret.credentials", "cp", "cp/ns/rev", "401", "recreate it")],
        };
        let text = serde_json::to_string(&status).unwrap();
        assert!(text.contains("\"schemaVersion\":1"), "{text}");
        assert!(text.contains("\"remoteSecrets\""), "{text}");
        assert!(text.contains("\"kind\":\"remoteSecret\""), "{text}");
        assert!(text.contains("\"verdict\":\"fail\""), "{text}");
        let back: Status = serde_json::from_str(&text).unwrap();
        assert_eq!(back, status);
        assert_eq!(back.exit_code(), 1);
    }
}
