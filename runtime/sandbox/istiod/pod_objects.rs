//! What a kubelet fetches before it starts a Pod's container: the ConfigMaps
//! and Secrets its env and volumes name, and the service-account tokens its
//! projected volumes ask for (TokenRequest, bound to the Pod).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, ServiceAccount, Volume};
use kube::api::{Api, PostParams};

/// A token a projected volume asks for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenSpec {
    /// `None`: the API server's own audience.
    pub audience: Option<String>,
    pub expiration_seconds: i64,
}

/// The objects one container of a Pod refers to; `None` where one is missing.
#[derive(Debug, Default)]
pub struct PodObjects {
    pub config_maps: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    pub secrets: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    pub tokens: BTreeMap<TokenSpec, String>,
}

impl PodObjects {
    /// Fetches what `container` of `pod` refers to, from the Pod's namespace.
    pub async fn fetch(client: &kube::Client, pod: &Pod, container: &Container) -> Result<PodObjects, String> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let (config_maps, secrets, tokens) = references(pod, container);
        let mut objects = PodObjects::default();
        let config_map_api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        for name in config_maps {
            let found = config_map_api
                .get_opt(&name)
                .await
                .map_err(|e| format!("ConfigMap {namespace}/{name}: {e}"))?;
            objects.config_maps.insert(name, found.map(config_map_data));
        }
        let secret_api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        for name in secrets {
            let found = secret_api
                .get_opt(&name)
                .await
                .map_err(|e| format!("Secret {namespace}/{name}: {e}"))?;
            let data = found.map(|s| s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect());
            objects.secrets.insert(name, data);
        }
        for spec in tokens {
            let token = request_token(client, pod, &spec).await?;
            objects.tokens.insert(spec, token);
        }
        Ok(objects)
    }
}

fn config_map_data(config_map: ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let text = config_map.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes()));
    let binary = config_map.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0));
    text.chain(binary).collect()
}

/// ConfigMap names, Secret names and tokens that `container`'s env and mounted volumes name.
pub fn references(pod: &Pod, container: &Container) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<TokenSpec>) {
    let (mut config_maps, mut secrets, mut tokens) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for source in container.env.iter().flatten().filter_map(|e| e.value_from.as_ref()) {
        config_maps.extend(source.config_map_key_ref.as_ref().map(|r| r.name.clone()));
        secrets.extend(source.secret_key_ref.as_ref().map(|r| r.name.clone()));
    }
    for volume in mounted_volumes(pod, container) {
        config_maps.extend(volume.config_map.as_ref().map(|c| c.name.clone()));
        secrets.extend(volume.secret.as_ref().and_then(|s| s.secret_name.clone()));
        for source in volume.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            config_maps.extend(source.config_map.as_ref().map(|c| c.name.clone()));
            secrets.extend(source.secret.as_ref().map(|s| s.name.clone()));
            tokens.extend(source.service_account_token.as_ref().map(|t| TokenSpec {
                audience: t.audience.clone().filter(|a| !a.is_empty()),
                expiration_seconds: t.expiration_seconds.unwrap_or(3600),
            }));
        }
    }
    (config_maps, secrets, tokens)
}

/// The Pod's volumes that `container` mounts.
pub fn mounted_volumes<'a>(pod: &'a Pod, container: &'a Container) -> impl Iterator<Item = &'a Volume> {
    let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    let mounted: BTreeSet<&str> = container.volume_mounts.iter().flatten().map(|m| m.name.as_str()).collect();
    volumes.into_iter().flatten().filter(move |v| mounted.contains(v.name.as_str()))
}

/// A token of the Pod's service account bound to the Pod, as a kubelet gets it.
async fn request_token(client: &kube::Client, pod: &Pod, spec: &TokenSpec) -> Result<String, String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .unwrap_or("default");
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: spec.audience.iter().cloned().collect(),
            expiration_seconds: Some(spec.expiration_seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let granted: TokenRequest = accounts
        .create_subresource("token", account, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("token of ServiceAccount {namespace}/{account}: {e}"))?;
    granted
        .status
        .map(|s| s.token)
        .ok_or_else(|| format!("token of ServiceAccount {namespace}/{account}: no token in the answer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_and_mounted_volumes_name_what_to_fetch_and_unmounted_volumes_do_not() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "istiod-1", "namespace": "istio-system"},
            "spec": {
                "containers": [{"name": "discovery",
                    "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "a"}}}],
                    "volumeMounts": [{"name": "remote", "mountPath": "/var/run/secrets/remote"},
                                     {"name": "sa", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
                "volumes": [
                    {"name": "remote", "secret": {"secretName": "istio-kubeconfig", "optional": true}},
                    {"name": "unmounted", "configMap": {"name": "other"}},
                    {"name": "sa", "projected": {"sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}]
            }
        }))
        .unwrap();
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let (config_maps, secrets, tokens) = references(&pod, container);
        assert_eq!(config_maps.into_iter().collect::<Vec<_>>(), ["env-cm", "kube-root-ca.crt"]);
        assert_eq!(secrets.into_iter().collect::<Vec<_>>(), ["istio-kubeconfig"]);
        let expected = TokenSpec {
            audience: None,
            expiration_seconds: 3607,
        };
        assert_eq!(tokens.into_iter().collect::<Vec<_>>(), [expected]);
    }
}
