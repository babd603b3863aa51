//! The kubeconfig of a run and the clients built from it, one per context,
//! created on first use and reused for every call of the run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::ClusterClient;
use crate::error::{Error, Result};

pub struct Clusters {
    path: PathBuf,
    /// `--request-timeout`, given to every client.
    request_timeout: Option<Duration>,
    kubeconfig: Mutex<Option<Kubeconfig>>,
    clients: Mutex<HashMap<String, Arc<ClusterClient>>>,
}

impl Clusters {
    pub fn new(path: PathBuf, request_timeout: Option<Duration>) -> Self {
        Clusters {
            path,
            request_timeout,
            kubeconfig: Mutex::new(None),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// `--kubeconfig`, else `KUBECONFIG` (first entry), else `~/.kube/config`.
    pub fn default_path(flag: Option<PathBuf>) -> PathBuf {
        if let Some(p) = flag {
            return p;
        }
        if let Some(k) = std::env::var_os("KUBECONFIG").filter(|k| !k.is_empty())
            && let Some(first) = std::env::split_paths(&k).next()
        {
            return first;
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".kube").join("config")
    }

    fn kubeconfig(&self) -> Result<Kubeconfig> {
        let mut slot = self.kubeconfig.lock().expect("kubeconfig lock");
        if let Some(k) = slot.as_ref() {
            return Ok(k.clone());
        }
        let k = Kubeconfig::read_from(&self.path).map_err(|e| Error::Kubeconfig {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        *slot = Some(k.clone());
        Ok(k)
    }

    pub fn context_names(&self) -> Result<Vec<String>> {
        Ok(self.kubeconfig()?.contexts.iter().map(|c| c.name.clone()).collect())
    }

    /// The API server URL and CA (PEM) that `context` names, as written in the
    /// kubeconfig (`status` matches remote secrets to contexts by these).
    pub fn server_and_ca(&self, context: &str) -> Result<(String, Option<Vec<u8>>)> {
        use base64::Engine as _;
        let kubeconfig = self.kubeconfig()?;
        let cluster_name = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context)
            .and_then(|c| c.context.as_ref())
            .map(|c| c.cluster.clone())
            .unwrap_or_default();
        let cluster = kubeconfig
            .clusters
            .iter()
            .find(|c| c.name == cluster_name)
            .and_then(|c| c.cluster.as_ref());
        let server = cluster.and_then(|c| c.server.clone()).unwrap_or_default();
        let ca = cluster.and_then(|c| {
            let data = c.certificate_authority_data.as_ref();
            data.and_then(|d| base64::engine::general_purpose::STANDARD.decode(d.trim()).ok())
                .or_else(|| c.certificate_authority.as_ref().and_then(|f| std::fs::read(f).ok()))
        });
        Ok((server, ca))
    }

    /// The clients of every context the run has used so far.
    pub fn used(&self) -> Vec<Arc<ClusterClient>> {
        self.clients.lock().expect("clients lock").values().cloned().collect()
    }

    /// The client for `context`. No request is made here: an unknown context
    /// fails at once, an unreachable server fails on first use.
    pub async fn get(&self, context: &str) -> Result<Arc<ClusterClient>> {
        if let Some(c) = self.clients.lock().expect("clients lock").get(context) {
            return Ok(c.clone());
        }
        let kubeconfig = self.kubeconfig()?;
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            let available = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect::<Vec<_>>();
            return Err(Error::UnknownContext {
                context: context.to_string(),
                available: if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                },
            });
        }
        let options = KubeConfigOptions {
            context: Some(context.to_string()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| Error::Kubeconfig {
                path: self.path.display().to_string(),
                message: format!("context {context}: {e}"),
            })?;
        let client = Arc::new(ClusterClient::new(context, config, self.request_timeout)?);
        let mut clients = self.clients.lock().expect("clients lock");
        Ok(clients.entry(context.to_string()).or_insert(client).clone())
    }
}
