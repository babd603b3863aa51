//! The Istio Helm charts, rendered for the simulated Sail Operator by
//! `istio-render` (scripts/istio-build/render): Helm's own engine over the
//! charts embedded in the istio.io/istio snapshot. Rendering is real; only
//! the operator loop around it is simulated.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::endpoints_twin;
use crate::sandbox::address_plan::Ipv4Prefix;

/// The charts Sail installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chart {
    /// Cluster-wide pieces, for the revision `default` only.
    Base,
    /// istiod, or with `profile: remote` the remote cluster's webhooks, Service and RBAC.
    Istiod,
    Cni,
}

impl Chart {
    fn dir(self) -> &'static str {
        match self {
            Chart::Base => "base",
            Chart::Istiod => "istio-control/istio-discovery",
            Chart::Cni => "istio-cni",
        }
    }
}

pub struct Charts {
    binary: PathBuf,
    /// The istio.io/istio module version the charts come from.
    pub snapshot: String,
    profiles: Mutex<HashMap<String, Result<Value, String>>>,
    /// The sandbox's own network namespace's range, when it has one: addresses
    /// the API server dials (webhooks at EndpointSlice addresses) stay on this machine.
    network: Option<Ipv4Prefix>,
}

/// Kinds that make an API server open connections to addresses in the objects.
const DIALLING_KINDS: &[&str] = &["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "EndpointSlice"];

impl Charts {
    pub fn new(binary: PathBuf, snapshot: String, network: Option<Ipv4Prefix>) -> Charts {
        if network.is_none() {
            eprintln!(
                "simulated sail-operator: no network namespace: rendered webhook configurations and EndpointSlices are not installed (the API server would dial their addresses off this machine)"
            );
        }
        Charts {
            binary,
            snapshot,
            profiles: Mutex::new(HashMap::new()),
            network,
        }
    }

    /// Whether the sandbox has its own network namespace (a real istiod can be reached).
    pub fn contained(&self) -> bool {
        self.network.is_some()
    }

    /// The workplace's network rule for what the simulators dial themselves:
    /// loopback, or an address of the sandbox's own network namespace.
    pub fn may_dial(&self, ip: std::net::IpAddr) -> bool {
        match ip {
            std::net::IpAddr::V4(v4) => v4.is_loopback() || self.network.is_some_and(|n| n.contains(v4)),
            std::net::IpAddr::V6(v6) => v6.is_loopback(),
        }
    }

    /// The values of profile `name` (`manifests/profiles/<name>.yaml`), cached.
    pub async fn profile(&self, name: &str) -> Result<Value, String> {
        let mut profiles = self.profiles.lock().await;
        if let Some(known) = profiles.get(name) {
            return known.clone();
        }
        let result = self
            .run(&["profile", name], None)
            .await
            .and_then(|text| serde_json::from_str(&text).map_err(|e| format!("profile {name}: {e}")));
        profiles.insert(name.to_string(), result.clone());
        result
    }

    /// Every object `chart` renders as Helm release `release` in `namespace`
    /// for a server of `kube_version`, CRDs left out: the sandbox installs the
    /// CRDs itself, as OLM does for the real operator. Errors are Helm's words.
    pub async fn render(
        &self,
        chart: Chart,
        release: &str,
        namespace: &str,
        kube_version: &str,
        values: &Value,
    ) -> Result<Vec<Value>, String> {
        let input = serde_json::to_vec(values).map_err(|e| e.to_string())?;
        let text = self
            .run(&["chart", chart.dir(), release, namespace, kube_version], Some(input))
            .await?;
        let objects = crate::manifest::parse(&text, "rendered chart").map_err(|e| e.to_string())?;
        let kept = |kind: &str| kind != "CustomResourceDefinition" && (self.contained() || !DIALLING_KINDS.contains(&kind));
        let mut objects: Vec<Value> = objects
            .into_iter()
            .filter(|o| kept(o.get("kind").and_then(Value::as_str).unwrap_or("")))
            .collect();
        if endpoints_twin::needed(kube_version) {
            let twins: Vec<Value> = objects.iter().filter_map(endpoints_twin::twin).collect();
            objects.extend(twins);
        }
        Ok(objects)
    }

    async fn run(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Result<String, String> {
        let mut child = tokio::process::Command::new(&self.binary)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.binary.display()))?;
        let mut pipe = child.stdin.take();
        if let (Some(pipe), Some(input)) = (pipe.as_mut(), stdin) {
            pipe.write_all(&input).await.map_err(|e| format!("istio-render: {e}"))?;
        }
        drop(pipe);
        let output = child.wait_with_output().await.map_err(|e| format!("istio-render: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        }
    }
}
