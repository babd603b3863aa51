//! Which resources a cluster serves: one aggregated request on servers that
//! support it (1.30+), the per-group walk (fetched concurrently) on older ones.
//! Keeps what kubectl needs to resolve names: plural, singular, short names.

use futures::future::join_all;
use http::Method;
use serde_json::Value;

use super::ClusterClient;
use crate::error::{Error, Result};

const ACCEPT_AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub namespaced: bool,
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The collection URL, in `namespace` when the resource is namespaced.
    pub fn url(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }

    /// kubectl's names for it: `istios.sailoperator.io`, `deployment.apps`.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

#[derive(Debug, Default)]
pub struct Discovery {
    /// Preferred version of each group first, groups in server order (core first).
    resources: Vec<ResourceInfo>,
}

impl Discovery {
    pub async fn fetch(cluster: &ClusterClient) -> Result<Self> {
        let (core, groups) = tokio::join!(get(cluster, "/api", ACCEPT_AGGREGATED), get(cluster, "/apis", ACCEPT_AGGREGATED));
        let (core, groups) = (core?, groups?);
        if groups.get("kind").and_then(Value::as_str) == Some("APIGroupDiscoveryList") {
            let mut d = Discovery::default();
            for doc in [&core, &groups] {
                d.add_aggregated(doc);
            }
            return Ok(d);
        }
        Self::fetch_legacy(cluster, &groups).await
    }

    /// Servers before aggregated discovery: /api/v1, then every group version.
    async fn fetch_legacy(cluster: &ClusterClient, groups: &Value) -> Result<Self> {
        let mut paths = vec![("".to_string(), "/api/v1".to_string())];
        for g in groups.get("groups").and_then(Value::as_array).into_iter().flatten() {
            let name = g.get("name").and_then(Value::as_str).unwrap_or_default();
            let preferred = g.pointer("/preferredVersion/groupVersion").and_then(Value::as_str);
            let mut versions: Vec<&str> = g
                .get("versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.get("groupVersion").and_then(Value::as_str))
                .collect();
            // Preferred version first, so name lookups pick it like kubectl does.
            versions.sort_by_key(|v| Some(*v) != preferred);
            paths.extend(versions.into_iter().map(|gv| (name.to_string(), format!("/apis/{gv}"))));
        }
        let lists = join_all(paths.iter().map(|(_, p)| get(cluster, p, "application/json"))).await;
        let mut d = Discovery::default();
        for ((group, path), list) in paths.iter().zip(lists) {
            // A group listed a moment ago may not serve its version yet (a CRD
            // being created) or any more: skip it, as kubectl does with
            // partial discovery failures. Only the core group is required.
            let list = match list {
                Ok(l) => l,
                Err(Error::Api { .. }) if path != "/api/v1" => continue,
                Err(e) => return Err(e),
            };
            let gv = list.get("groupVersion").and_then(Value::as_str).unwrap_or_default();
            let version = gv.rsplit('/').next().unwrap_or(gv).to_string();
            for r in list.get("resources").and_then(Value::as_array).into_iter().flatten() {
                let plural = str_at(r, "name");
                if plural.contains('/') {
                    continue; // subresource
                }
                d.resources.push(ResourceInfo {
                    group: group.clone(),
                    version: version.clone(),
                    kind: str_at(r, "kind"),
                    singular: non_empty_or(str_at(r, "singularName"), || str_at(r, "kind").to_lowercase()),
                    short_names: strings_at(r, "shortNames"),
                    namespaced: r.get("namespaced").and_then(Value::as_bool).unwrap_or(false),
                    plural,
                });
            }
        }
        Ok(d)
    }

    fn add_aggregated(&mut self, doc: &Value) {
        for g in doc.get("items").and_then(Value::as_array).into_iter().flatten() {
            let group = g.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            for v in g.get("versions").and_then(Value::as_array).into_iter().flatten() {
                let version = str_at(v, "version");
                for r in v.get("resources").and_then(Value::as_array).into_iter().flatten() {
                    let kind = r.pointer("/responseKind/kind").and_then(Value::as_str).unwrap_or_default();
                    self.resources.push(ResourceInfo {
                        group: group.to_string(),
                        version: version.clone(),
                        kind: kind.to_string(),
                        plural: str_at(r, "resource"),
                        singular: non_empty_or(str_at(r, "singularResource"), || kind.to_lowercase()),
                        short_names: strings_at(r, "shortNames"),
                        namespaced: r.get("scope").and_then(Value::as_str) == Some("Namespaced"),
                    });
                }
            }
        }
    }

    /// kubectl's resolution: `name` or `name.group` or `name.version.group`,
    /// where name is a plural, singular, short name or kind (case-insensitive).
    pub fn find(&self, resource: &str) -> Option<&ResourceInfo> {
        let wanted = resource.to_ascii_lowercase();
        let matches_name = |r: &ResourceInfo, n: &str| {
            r.plural == n || r.singular == n || r.kind.to_ascii_lowercase() == n || r.short_names.iter().any(|s| s == n)
        };
        if let Some(r) = self.resources.iter().find(|r| matches_name(r, &wanted)) {
            return Some(r);
        }
        let (name, rest) = wanted.split_once('.')?;
        self.resources
            .iter()
            .find(|r| matches_name(r, name) && (r.group == rest || format!("{}.{}", r.version, r.group) == rest))
    }

    /// Served names `resource` looks like a typo of, as `name (Kind, plural.group)`.
    pub fn similar(&self, resource: &str) -> Vec<String> {
        let names = self.resources.iter().flat_map(|r| {
            [r.plural.as_str(), r.singular.as_str(), r.kind.as_str()]
                .into_iter()
                .chain(r.short_names.iter().map(String::as_str))
        });
        let qualified: Vec<String> = self.resources.iter().map(ResourceInfo::qualified_plural).collect();
        let mut out: Vec<(String, &ResourceInfo)> = Vec::new();
        for name in super::suggest::closest(resource, names.chain(qualified.iter().map(String::as_str))) {
            // One suggestion per resource: its closest name.
            if let Some(r) = self.find(&name)
                && !out.iter().any(|(_, seen)| *seen == r)
            {
                out.push((name, r));
            }
        }
        out.into_iter()
            .map(|(name, r)| format!("{name} ({}, {})", r.kind, r.qualified_plural()))
            .collect()
    }

    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceInfo> {
        let (group, version) = split_api_version(api_version);
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// The preferred version of `kind` in `group` (an ApplySet names kinds without versions).
    pub fn find_group_kind(&self, group: &str, kind: &str) -> Option<&ResourceInfo> {
        self.resources.iter().find(|r| r.group == group && r.kind == kind)
    }

    /// Why `apiVersion`/`kind` is not served, in terms a user can act on.
    pub fn explain_missing(&self, api_version: &str, kind: &str) -> String {
        let (group, version) = split_api_version(api_version);
        let mut served: Vec<&str> = self
            .resources
            .iter()
            .filter(|r| r.group == group && r.kind == kind)
            .map(|r| r.version.as_str())
            .collect();
        served.dedup();
        if !served.is_empty() {
            let g = if group.is_empty() { String::new() } else { format!("{group}/") };
            return format!(
                "the server does not serve {kind} in {api_version} (it serves {}); this Kubernetes version does not support the manifest's API version",
                served.iter().map(|v| format!("{g}{v}")).collect::<Vec<_>>().join(", ")
            );
        }
        let _ = version;
        format!(
            "no kind \"{kind}\" is registered for {api_version}: its CRD is not installed (is the operator that provides it installed?)"
        )
    }
}

pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

async fn get(cluster: &ClusterClient, path: &str, accept: &str) -> Result<Value> {
    let (status, bytes) = cluster.send(Method::GET, path, accept, None, Vec::new()).await?;
    if !status.is_success() {
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if matches!(status, http::StatusCode::UNAUTHORIZED | http::StatusCode::FORBIDDEN) {
            let res = super::client::Response { status, body };
            return Err(cluster.api_error(&res, &format!("discovery {path}"), "discovery"));
        }
        let words = super::api_error::status_in_words(status, &body);
        return Err(Error::Api {
            cluster: cluster.name.clone(),
            object: format!("discovery {path}"),
            message: match body.get("message").and_then(Value::as_str) {
                Some(m) => format!("{words}: {m}"),
                None => words,
            },
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| Error::Api {
        cluster: cluster.name.clone(),
        object: format!("discovery {path}"),
        message: format!("the answer is not JSON ({e}): is {} a Kubernetes API server?", cluster.url),
    })
}

fn str_at(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn strings_at(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn non_empty_or(s: String, f: impl FnOnce() -> String) -> String {
    if s.is_empty() { f() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Discovery {
        let mut d = Discovery::default();
        d.add_aggregated(&serde_json::json!({"items": [
            {"metadata": {"name": ""}, "versions": [{"version": "v1", "resources": [
                {"resource": "services", "responseKind": {"kind": "Service"}, "scope": "Namespaced", "singularResource": "service", "shortNames": ["svc"]}
            ]}]},
            {"metadata": {"name": "apps"}, "versions": [{"version": "v1", "resources": [
                {"resource": "deployments", "responseKind": {"kind": "Deployment"}, "scope": "Namespaced", "singularResource": "deployment", "shortNames": ["deploy"]}
            ]}]},
            {"metadata": {"name": "sailoperator.io"}, "versions": [{"version": "v1", "resources": [
                {"resource": "istios", "responseKind": {"kind": "Istio"}, "scope": "Cluster", "singularResource": "istio"}
            ]}]}
        ]}));
        d
    }

    #[test]
    fn resolves_kubectl_names() {
        let d = sample();
        for name in ["svc", "service", "services", "Service"] {
            assert_eq!(d.find(name).map(|r| r.plural.as_str()), Some("services"), "{name}");
        }
        assert_eq!(d.find("deploy").map(|r| r.group.as_str()), Some("apps"));
        assert_eq!(d.find("deployments.apps").map(|r| r.kind.as_str()), Some("Deployment"));
        assert_eq!(d.find("deployments.v1.apps").map(|r| r.kind.as_str()), Some("Deployment"));
        assert_eq!(d.find("istios.sailoperator.io").map(|r| r.namespaced), Some(false));
        assert!(d.find("istios.example.com").is_none());
        assert!(d.find("nothing").is_none());
    }

    #[test]
    fn suggests_served_names_for_a_typo() {
        let d = sample();
        assert_eq!(d.similar("istoi"), vec!["istio (Istio, istios.sailoperator.io)"]);
        assert_eq!(d.similar("deploymnets"), vec!["deployments (Deployment, deployments.apps)"]);
        assert!(d.similar("gadget").is_empty());
    }

    #[test]
    fn explains_an_unserved_version() {
        let d = sample();
        let msg = d.explain_missing("apps/v2", "Deployment");
        assert!(msg.contains("it serves apps/v1"), "{msg}");
        let msg = d.explain_missing("example.com/v1", "Widget");
        assert!(msg.contains("CRD is not installed"), "{msg}");
    }

    #[test]
    fn urls_follow_scope() {
        let d = sample();
        assert_eq!(d.find("svc").unwrap().url(Some("ns")), "/api/v1/namespaces/ns/services");
        assert_eq!(d.find("istio").unwrap().url(Some("ns")), "/apis/sailoperator.io/v1/istios");
    }
}
