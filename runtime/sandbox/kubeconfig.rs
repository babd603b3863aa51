//! DIR/kubeconfig: one context per sandbox cluster (context name = cluster
//! name), each carrying the cluster's CA so clients verify TLS.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::error::{Error, Result};

/// What a kubeconfig needs to reach one cluster as its admin.
pub struct KubeconfigEntry<'a> {
    pub name: &'a str,
    pub server: &'a str,
    pub ca_pem: &'a str,
    pub client_cert_pem: &'a str,
    pub client_key_pem: &'a str,
}

// Field order here is the order kubectl writes, so the file reads familiar.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct File<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    clusters: Vec<Named<ClusterFields<'a>>>,
    contexts: Vec<Named<ContextFields<'a>>>,
    current_context: &'a str,
    users: Vec<Named<UserFields>>,
}

#[derive(Serialize)]
struct Named<T> {
    name: String,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
struct ClusterFields<'a> {
    cluster: ClusterBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterBody<'a> {
    certificate_authority_data: String,
    server: &'a str,
}

#[derive(Serialize)]
struct ContextFields<'a> {
    context: ContextBody<'a>,
}

#[derive(Serialize)]
struct ContextBody<'a> {
    cluster: &'a str,
    user: String,
}

#[derive(Serialize)]
struct UserFields {
    user: UserBody,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UserBody {
    client_certificate_data: String,
    client_key_data: String,
}

fn user_name(cluster: &str) -> String {
    format!("{cluster}-admin")
}

/// The kubeconfig YAML for `entries`; the first one is the current context.
pub fn render(entries: &[KubeconfigEntry<'_>]) -> Result<String> {
    let file = File {
        api_version: "v1",
        kind: "Config",
        clusters: entries
            .iter()
            .map(|e| Named {
                name: e.name.to_string(),
                body: ClusterFields {
                    cluster: ClusterBody {
                        certificate_authority_data: STANDARD.encode(e.ca_pem),
                        server: e.server,
                    },
                },
            })
            .collect(),
        contexts: entries
            .iter()
            .map(|e| Named {
                name: e.name.to_string(),
                body: ContextFields {
                    context: ContextBody {
                        cluster: e.name,
                        user: user_name(e.name),
                    },
                },
            })
            .collect(),
        current_context: entries.first().map(|e| e.name).unwrap_or(""),
        users: entries
            .iter()
            .map(|e| Named {
                name: user_name(e.name),
                body: UserFields {
                    user: UserBody {
                        client_certificate_data: STANDARD.encode(e.client_cert_pem),
                        client_key_data: STANDARD.encode(e.client_key_pem),
                    },
                },
            })
            .collect(),
    };
    serde_saphyr::to_string(&file).map_err(|e| Error::Sandbox {
        message: format!("cannot write kubeconfig: {e}"),
    })
}

/// A kube client for `context` of the kubeconfig text `yaml`.
pub async fn client_for(yaml: &str, context: &str) -> Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| Error::Sandbox {
        message: format!("kubeconfig for {context}: {e}"),
    })?;
    let options = kube::config::KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| Error::Sandbox {
            message: format!("kubeconfig for {context}: {e}"),
        })?;
    crate::kube::client::connect(&config).map_err(|e| Error::Sandbox {
        message: format!("client for {context}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(name: &'a str, server: &'a str) -> KubeconfigEntry<'a> {
        KubeconfigEntry {
            name,
            server,
            ca_pem: "CA",
            client_cert_pem: "CERT",
            client_key_pem: "KEY",
        }
    }

    #[test]
    fn one_context_per_cluster_named_after_it() {
        let yaml = render(&[
            entry("control-plane", "https://127.0.0.1:1"),
            entry("data-plane", "https://127.0.0.1:2"),
        ])
        .unwrap();
        let parsed = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("control-plane"));
        let names: Vec<_> = parsed.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["control-plane", "data-plane"]);
        let context = parsed.contexts[1].context.as_ref().unwrap();
        assert_eq!(context.cluster, "data-plane");
        assert_eq!(context.user.as_deref(), Some("data-plane-admin"));
        let cluster = parsed.clusters[1].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:2"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some(STANDARD.encode("CA").as_str()));
        assert_eq!(cluster.insecure_skip_tls_verify, None, "TLS must never be skipped");
        assert!(yaml.starts_with("apiVersion: v1\nkind: Config\n"), "{yaml}");
        assert!(yaml.contains("client-key-data: "), "{yaml}");
    }
}
