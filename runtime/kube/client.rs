//! One cluster: a kube client bound to a kubeconfig context, its discovery
//! cache, and the raw JSON requests every primitive is built on. Raw requests
//! (not typed `Api<K>`) because mesh-run handles any kind a playbook names and
//! needs the HTTP status (201 created vs 200 updated, 409 conflict).

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, StatusCode};
use serde_json::Value;
use tokio::sync::RwLock;

use super::discovery::{Discovery, ResourceInfo};
use super::trace;
use crate::error::{Error, Result};

pub struct ClusterClient {
    /// The kubeconfig context name: what playbooks and messages call this cluster.
    pub name: String,
    pub url: String,
    pub client: kube::Client,
    discovery: RwLock<Option<Arc<Discovery>>>,
    /// Namespaces a dry run's `ensure_namespace` would have created: a later
    /// apply into them is checked as if they existed.
    pub planned_namespaces: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

/// A response with its status; `body` is JSON (or Null when empty).
pub struct Response {
    pub status: StatusCode,
    pub body: Value,
}

impl ClusterClient {
    pub fn new(name: &str, config: kube::Config) -> Result<Self> {
        let url = config.cluster_url.to_string().trim_end_matches('/').to_string();
        let client = connect(&config).map_err(|e| Error::Kubeconfig {
            path: format!("context {name}"),
            message: e.to_string(),
        })?;
        Ok(ClusterClient {
            name: name.to_string(),
            url,
            client,
            discovery: RwLock::new(None),
            planned_namespaces: Default::default(),
        })
    }

    pub fn unreachable(&self, err: impl std::fmt::Display) -> Error {
        Error::Unreachable {
            cluster: self.name.clone(),
            url: self.url.clone(),
            message: err.to_string(),
        }
    }

    /// Sends one request; transport failures become `Unreachable`, HTTP
    /// failures are returned as a `Response` for the caller to interpret.
    pub async fn call(&self, method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Result<Response> {
        let (status, bytes) = self.send(method, path, "application/json", content_type, body).await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok(Response { status, body })
    }

    /// The one place requests go out (and are traced): status and raw body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        accept: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(StatusCode, bytes::Bytes)> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(http::header::ACCEPT, accept);
        if let Some(ct) = content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        let req = req
            .body(kube::client::Body::from(body))
            .map_err(|e| Error::usage(format!("bad request path {path}: {e}")))?;
        let traced = trace::start();
        let res = self.client.send(req).await;
        trace::finish(traced, &self.name, &method, path, res.as_ref().ok().map(|r| r.status()));
        let res = res.map_err(|e| self.unreachable(transport_reason(&e)))?;
        let status = res.status();
        let bytes = res.into_body().collect_bytes().await.map_err(|e| self.unreachable(e))?;
        Ok((status, bytes))
    }

    /// GET returning `None` on 404.
    pub async fn get_json(&self, path: &str, what: &dyn std::fmt::Display) -> Result<Option<Value>> {
        let res = self.call(Method::GET, path, None, Vec::new()).await?;
        match res.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(res.body)),
            _ => Err(self.api_error(&res, &what.to_string(), "get")),
        }
    }

    /// A watch on `url` (which carries `watch=true` and its resourceVersion):
    /// its events, transport failures mapped to `Unreachable`.
    pub async fn watch_events(&self, url: &str) -> Result<impl futures::Stream<Item = Result<kube::core::WatchEvent<Value>>> + use<>> {
        let request = Request::get(url)
            .body(Vec::new())
            .map_err(|e| Error::usage(format!("bad watch path {url}: {e}")))?;
        let traced = trace::start();
        let events = self.client.request_events::<Value>(request).await;
        trace::finish(traced, &self.name, &Method::GET, url, events.is_ok().then_some(StatusCode::OK));
        let events = events.map_err(|e| self.unreachable(e))?;
        let (name, url) = (self.name.clone(), self.url.clone());
        Ok(futures::StreamExt::map(
            events,
            move |event: std::result::Result<_, kube::Error>| {
                event.map_err(|e| Error::Unreachable {
                    cluster: name.clone(),
                    url: url.clone(),
                    message: e.to_string(),
                })
            },
        ))
    }

    /// Turns a failed response into the error a user can act on.
    pub fn api_error(&self, res: &Response, object: &str, action: &str) -> Error {
        let message = res
            .body
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "HTTP {}: {}",
                    res.status.as_u16(),
                    res.body.to_string().chars().take(300).collect::<String>()
                )
            });
        match res.status {
            StatusCode::CONFLICT if res.body.get("reason").and_then(Value::as_str) == Some("Conflict") && action == "apply" => {
                Error::Conflict {
                    cluster: self.name.clone(),
                    object: object.to_string(),
                    fields: conflict_fields(&res.body, &message),
                }
            }
            StatusCode::NOT_FOUND => Error::NotFound {
                cluster: self.name.clone(),
                object: object.to_string(),
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Api {
                cluster: self.name.clone(),
                object: object.to_string(),
                message: format!("{action} not allowed: {message}"),
            },
            _ => {
                let message = if message.contains("field not declared in schema") {
                    format!("{message} (the manifest has a field the schema does not know: check its spelling and nesting)")
                } else {
                    message
                };
                Error::Rejected {
                    cluster: self.name.clone(),
                    object: object.to_string(),
                    action: action.to_string(),
                    message,
                }
            }
        }
    }

    /// Discovery, fetched once per run and refreshed when a kind is missing
    /// (a CRD may have been installed since).
    pub async fn discovery(&self, refresh: bool) -> Result<Arc<Discovery>> {
        if !refresh && let Some(d) = self.discovery.read().await.as_ref() {
            return Ok(d.clone());
        }
        let mut slot = self.discovery.write().await;
        if !refresh && let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let d = Arc::new(Discovery::fetch(self).await?);
        *slot = Some(d.clone());
        Ok(d)
    }

    /// Resolves a kubectl resource name (`svc`, `istio`, `istios.sailoperator.io`, `Deployment`).
    pub async fn resolve(&self, resource: &str) -> Result<ResourceInfo> {
        if let Some(r) = self.discovery(false).await?.find(resource) {
            return Ok(r.clone());
        }
        match self.discovery(true).await?.find(resource) {
            Some(r) => Ok(r.clone()),
            None => Err(Error::UnknownKind {
                cluster: self.name.clone(),
                message: format!(
                    "the server doesn't have a resource type \"{resource}\": its CRD is not installed (is the operator that provides it installed on {}?)",
                    self.name
                ),
            }),
        }
    }

    /// Resolves `apiVersion` + `kind` of a manifest.
    pub async fn resolve_kind(&self, api_version: &str, kind: &str) -> Result<ResourceInfo> {
        let d = self.discovery(false).await?;
        if let Some(r) = d.find_kind(api_version, kind) {
            return Ok(r.clone());
        }
        let d = self.discovery(true).await?;
        if let Some(r) = d.find_kind(api_version, kind) {
            return Ok(r.clone());
        }
        Err(Error::UnknownKind {
            cluster: self.name.clone(),
            message: d.explain_missing(api_version, kind),
        })
    }
}

/// A kube client for `config`: every client mesh-run makes (the sandbox's and
/// its simulators' too) comes from here. kube's client stack — base URL,
/// retries of 429/503/504 (honouring `Retry-After`, e.g. "storage is
/// (re)initializing" while a new CRD's kind comes up), credentials, extra
/// headers, rustls — on a connector of our own: kube's leaves Nagle's
/// algorithm on, and a request written in two segments then waits for the
/// API server's delayed ACK — 40 ms stalls on fresh connections (issue 6,
/// seen with `MESH_RUN_TRACE=http`). An unreachable server must fail within
/// seconds, not after the OS's TCP timeout; reads stay unbounded (watches are
/// long-lived): `config`'s timeouts are not used. Proxies are refused, as
/// kube without its proxy features refuses them, rather than bypassed.
pub fn connect(config: &kube::Config) -> std::result::Result<kube::Client, String> {
    use kube::client::ConfigExt;
    use kube::client::retry::RetryPolicy;
    if let Some(proxy) = &config.proxy_url {
        return Err(format!(
            "its cluster sets proxy-url {proxy}, and mesh-run does not support proxies: remove proxy-url to reach the API server directly"
        ));
    }
    let stack = || -> kube::Result<kube::Client> {
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(3)));
        let https = config.rustls_https_connector_with_connector(http)?;
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        let service = tower::ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(
                config
                    .default_retry
                    .then(|| tower::retry::RetryLayer::new(RetryPolicy::server_retry())),
            )
            .option_layer(config.auth_layer()?)
            .layer(config.extra_headers_layer()?)
            .map_err(tower::BoxError::from)
            .service(client);
        Ok(kube::Client::new(service, config.default_namespace.clone()))
    };
    stack().map_err(|e| e.to_string())
}

/// Names the conflicting fields the API server listed in the Status causes.
fn conflict_fields(body: &Value, message: &str) -> String {
    let fields: Vec<String> = body
        .pointer("/details/causes")
        .and_then(Value::as_array)
        .map(|causes| {
            causes
                .iter()
                .map(|c| {
                    let field = c.get("field").and_then(Value::as_str).unwrap_or("?");
                    let msg = c.get("message").and_then(Value::as_str).unwrap_or("");
                    format!("{field} ({msg})")
                })
                .collect()
        })
        .unwrap_or_default();
    if fields.is_empty() {
        message.to_string()
    } else {
        fields.join(", ")
    }
}

/// The root cause of a transport error, without kube's wrapping.
fn transport_reason(err: &kube::Error) -> String {
    let mut msg = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_proxy_is_refused_not_bypassed() {
        let mut config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        assert!(connect(&config).is_ok());
        config.proxy_url = Some("http://proxy.example:3128".parse().unwrap());
        let err = connect(&config).err().expect("a proxy must be refused").to_string();
        assert!(err.contains("proxy-url http://proxy.example:3128/"), "{err}");
        assert!(err.contains("remove proxy-url"), "{err}");
    }

    #[test]
    fn conflict_fields_lists_each_cause() {
        let body = serde_json::json!({"details": {"causes": [
            {"field": ".data.a", "message": "conflict with \"kubectl\""},
            {"field": ".data.b", "message": "conflict with \"kubectl\""}
        ]}});
        let out = conflict_fields(&body, "fallback");
        assert_eq!(out, ".data.a (conflict with \"kubectl\"), .data.b (conflict with \"kubectl\")");
        assert_eq!(conflict_fields(&serde_json::json!({}), "fallback"), "fallback");
    }
}
