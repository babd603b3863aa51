//! One cluster: a kube client bound to a kubeconfig context, its discovery
//! cache, and the raw JSON requests every primitive is built on. Raw requests
//! (not typed `Api<K>`) because mesh-run handles any kind a playbook names and
//! needs the HTTP status (201 created vs 200 updated, 409 conflict).

use std::future::Future;
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
    /// `--request-timeout`: every request's deadline (None: none, as kubectl's `0`).
    pub request_timeout: Option<Duration>,
    discovery: RwLock<Option<Arc<Discovery>>>,
    /// Namespaces a dry run's `ensure_namespace` would have created: a later
    /// apply into them is checked as if they existed.
    pub planned_namespaces: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

/// The watch length asked of the server when requests have no deadline
/// (kubectl's reflectors ask 5–10 min; the server's own limit is 30 min+).
const WATCH_WITHOUT_DEADLINE: Duration = Duration::from_secs(290);

/// A response with its status; `body` is JSON (or Null when empty).
pub struct Response {
    pub status: StatusCode,
    pub body: Value,
}

impl ClusterClient {
    pub fn new(name: &str, config: kube::Config, request_timeout: Option<Duration>) -> Result<Self> {
        let url = config.cluster_url.to_string().trim_end_matches('/').to_string();
        let client = connect(&config).map_err(|e| Error::Kubeconfig {
            path: format!("context {name}"),
            message: e.to_string(),
        })?;
        Ok(ClusterClient {
            name: name.to_string(),
            url,
            client,
            request_timeout,
            discovery: RwLock::new(None),
            planned_namespaces: Default::default(),
        })
    }

    /// The `Unreachable` error of a request that got no answer in time.
    fn silent(&self, what: &str, after: Duration) -> Error {
        self.unreachable(format!(
            "{what} got no answer within {} (--request-timeout): the server accepts connections but does not respond (stopped, overloaded, or not an API server)",
            humantime::format_duration(after)
        ))
    }

    /// `fut` under the request deadline, if there is one.
    async fn in_time<T>(&self, what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        match self.request_timeout {
            Some(t) => tokio::time::timeout(t, fut).await.unwrap_or_else(|_| Err(self.silent(what, t))),
            None => fut.await,
        }
    }

    /// How long a watch asks the server to run: the request timeout (at
    /// least 5 s, so a short one does not turn watches into polling).
    pub fn watch_window(&self) -> Duration {
        self.request_timeout
            .map(|t| t.max(Duration::from_secs(5)))
            .unwrap_or(WATCH_WITHOUT_DEADLINE)
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
    /// POST `body` (JSON) to the collection `path`; with `dry_run`, as a
    /// server dry run (`dryRun=All`): validated and admitted, not stored.
    pub async fn create(&self, path: &str, body: &serde_json::Value, dry_run: bool) -> Result<Response> {
        let path = if dry_run { format!("{path}?dryRun=All") } else { path.to_string() };
        let body = serde_json::to_vec(body).unwrap_or_default();
        self.call(Method::POST, &path, Some("application/json"), body).await
    }

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
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        self.in_time(&what, async {
            let traced = trace::start();
            let res = self.client.send(req).await;
            trace::finish(traced, &self.name, &method, path, res.as_ref().ok().map(|r| r.status()));
            let res = res.map_err(|e| self.unreachable(transport_reason(&e)))?;
            let status = res.status();
            let bytes = res.into_body().collect_bytes().await.map_err(|e| self.unreachable(e))?;
            Ok((status, bytes))
        })
        .await
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
    /// its events, transport failures mapped to `Unreachable`. The server is
    /// asked to end it after `watch_window()`; one that has not ended it a
    /// request timeout later is dead (a stopped process keeps its TCP
    /// connections open, so keepalive cannot tell), and the stream ends
    /// with `Unreachable`.
    pub async fn watch_events(&self, url: &str) -> Result<impl futures::Stream<Item = Result<kube::core::WatchEvent<Value>>> + use<>> {
        let window = self.watch_window();
        let url = format!("{url}&timeoutSeconds={}", window.as_secs());
        let request = Request::get(&url)
            .body(Vec::new())
            .map_err(|e| Error::usage(format!("bad watch path {url}: {e}")))?;
        let started = tokio::time::Instant::now();
        let what = format!("watch {}", url.split('?').next().unwrap_or(&url));
        let events = self
            .in_time(&what, async {
                let traced = trace::start();
                let events = self.client.request_events::<Value>(request).await;
                trace::finish(traced, &self.name, &Method::GET, &url, events.is_ok().then_some(StatusCode::OK));
                events.map_err(|e| self.unreachable(e))
            })
            .await?;
        let (name, cluster_url) = (self.name.clone(), self.url.clone());
        let unreachable = move |message: String| Error::Unreachable {
            cluster: name.clone(),
            url: cluster_url.clone(),
            message,
        };
        let deadline = self.request_timeout.map(|t| (started + window + t, window + t));
        let events = Box::pin(events);
        Ok(futures::stream::unfold(Some(events), move |state| {
            let unreachable = unreachable.clone();
            let what = what.clone();
            async move {
                let mut events = state?;
                let next = match deadline {
                    Some((at, after)) => match tokio::time::timeout_at(at, futures::StreamExt::next(&mut events)).await {
                        Ok(next) => next,
                        Err(_) => {
                            let message = format!(
                                "{what} was not ended by the server within {} (asked for {}; --request-timeout): the connection is dead",
                                humantime::format_duration(after),
                                humantime::format_duration(window)
                            );
                            return Some((Err(unreachable(message)), None));
                        }
                    },
                    None => futures::StreamExt::next(&mut events).await,
                };
                next.map(|event| (event.map_err(|e: kube::Error| unreachable(e.to_string())), Some(events)))
            }
        }))
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
        let d = self.discovery(true).await?;
        if let Some(r) = d.find(resource) {
            return Ok(r.clone());
        }
        let similar = d.similar(resource);
        let message = if similar.is_empty() {
            format!(
                "the server doesn't have a resource type \"{resource}\": its CRD is not installed (is the operator that provides it installed on {}?)",
                self.name
            )
        } else {
            format!(
                "the server doesn't have a resource type \"{resource}\": not served; did you mean {}?",
                similar.join(" or ")
            )
        };
        Err(Error::UnknownKind {
            cluster: self.name.clone(),
            message,
        })
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

    /// A client of a server that accepts connections and never answers.
    async fn silent_server(request_timeout: Duration) -> (ClusterClient, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let config = kube::Config::new(url.parse().unwrap());
        (ClusterClient::new("silent", config, Some(request_timeout)).unwrap(), held)
    }

    #[tokio::test]
    async fn a_silent_server_is_unreachable_within_the_request_timeout() {
        let (client, held) = silent_server(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        let err = client
            .get_json("/api/v1/namespaces/x", &"Namespace x")
            .await
            .expect_err("no answer is an error");
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
        assert_eq!(err.kind(), "unreachable");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cluster silent: API server {} is unreachable", client.url)),
            "{text}"
        );
        assert!(
            text.contains("GET /api/v1/namespaces/x got no answer within 300ms (--request-timeout)"),
            "{text}"
        );
        held.abort();
    }

    #[test]
    fn a_watch_is_asked_to_end_within_the_request_timeout() {
        let config = || kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let _guard = rt.enter();
        let window = |t| ClusterClient::new("c", config(), t).unwrap().watch_window();
        assert_eq!(window(Some(Duration::from_secs(30))), Duration::from_secs(30));
        assert_eq!(window(Some(Duration::from_secs(1))), Duration::from_secs(5));
        assert_eq!(window(None), WATCH_WITHOUT_DEADLINE);
    }
}
