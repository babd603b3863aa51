//! `create_remote_secret(dp, #{...})`: what `istioctl create-remote-secret` prints, built against the API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use http::{Method, StatusCode};
use kube::core::WatchEvent;
use rhai::{Dynamic, Engine, EvalAltResult, Map};
use serde::Deserialize;
use serde_json::Value;

use super::Primitive;
use crate::error::{Error, Result};
use crate::kube::ClusterClient;
use crate::kube::apply::ApplyOptions;
use crate::kube::remote_secret::{self as rs, SecretType};
use crate::sensitive::Sensitive;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "create_remote_secret",
    signatures: &[
        "create_remote_secret(source_cluster) -> SensitiveManifest",
        "create_remote_secret(source_cluster, #{type, name, namespace, service_account, create_service_account, server, secret_name}) -> SensitiveManifest",
        "source_cluster.create_remote_secret(#{...}) -> SensitiveManifest",
    ],
    doc: r#"
Builds the Secret `istioctl create-remote-secret --context=SOURCE` prints, reading (and, if needed,
creating) what it needs on the source (data-plane) cluster, and returns it for `apply` on another
cluster. Printing the result shows only its kind and name: it holds a token.

Options, with istioctl's defaults: `type` (`remote` → Secret `istio-remote-secret-<name>`, key
`<name>`, service account `istio-reader-service-account`; `config` → Secret `istio-kubeconfig`, key
`config`, service account `istiod`); `name` (the cluster ID, a DNS-1123 label; default: the UID of
the source's `kube-system` namespace); `namespace` (default `istio-system`: where the service account
is looked up and where the Secret goes); `service_account`; `create_service_account` (default `true`:
a missing account makes it create the namespace, `istio-reader-service-account` and the
`istio-reader-clusterrole-<namespace>` ClusterRole/Binding, read-only plus Token/SubjectAccessReview
creation); `server` (default: the source's API server URL from the kubeconfig, with a warning when
it is a loopback address); `secret_name` (a specific token Secret of the account).

The token comes from a `kubernetes.io/service-account-token` Secret of the account (on Kubernetes
< 1.24: the account's only `secrets[]` entry); one named `<account>-istio-remote-secret-token` is
created if none exists, and watched (at most 5 s) until the token controller fills it. The Secret is
labelled `istio/multiCluster: "true"` and annotated `networking.istio.io/cluster: <name>`.

With `--dry-run` nothing is created; when no token Secret exists yet the result holds a placeholder
token (annotated `mesh-run.io/dry-run-placeholder`) and a warning says so, since only a real run can
mint a token.

```rhai
let secret = create_remote_secret(dp, #{ type: "config", namespace: "external-istiod",
    service_account: "istiod-external-istiod", create_service_account: false,
    server: `https://${node_ip}:6443` });
cp.apply(secret);
```
"#,
    register,
};

#[derive(Deserialize, Default)]
struct RemoteSecretOpts {
    #[serde(rename = "type")]
    secret_type: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    service_account: Option<String>,
    create_service_account: Option<bool>,
    server: Option<String>,
    secret_name: Option<String>,
}

const KEYS: &[&str] = &["type", "name", "namespace", "service_account", "create_service_account", "server", "secret_name"];

/// Placeholder token of a dry run, which must not create the token Secret.
const DRY_RUN_TOKEN: &str = "mesh-run-dry-run-placeholder-no-token-was-minted";
const DRY_RUN_ANNOTATION: &str = "mesh-run.io/dry-run-placeholder";
/// istioctl's `waitForTokenData` gives up after 5 retries 1 s apart.
const TOKEN_WAIT: Duration = Duration::from_secs(5);

/// The options with istioctl's defaults filled in (except those read from the cluster).
#[derive(Debug)]
struct Request {
    secret_type: SecretType,
    name: Option<String>,
    namespace: String,
    service_account: String,
    create_service_account: bool,
    server: Option<String>,
    secret_name: Option<String>,
}

impl Request {
    fn from_options(opts: RemoteSecretOpts) -> Result<Self> {
        let secret_type = SecretType::parse(opts.secret_type.as_deref().unwrap_or("remote"))?;
        if let Some(name) = &opts.name {
            rs::validate_cluster_name(name)?;
        }
        Ok(Request {
            secret_type,
            name: opts.name,
            namespace: opts.namespace.unwrap_or_else(|| "istio-system".into()),
            service_account: opts.service_account.unwrap_or_else(|| secret_type.default_service_account().into()),
            create_service_account: opts.create_service_account.unwrap_or(true),
            server: opts.server,
            secret_name: opts.secret_name,
        })
    }
}

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    let f = move |c: &mut ClusterHandle, opts: Option<Map>| -> std::result::Result<Dynamic, Box<EvalAltResult>> {
        let (s2, c) = (s.clone(), c.clone());
        s.bridge.run(async move {
            let opts = crate::options::parse::<RemoteSecretOpts>("create_remote_secret", opts, KEYS)?;
            let secret = create_remote_secret(&s2, &c, Request::from_options(opts)?).await?;
            Ok(Dynamic::from(Sensitive(secret)))
        })
    };
    let f2 = f.clone();
    engine.register_fn("create_remote_secret", move |c: &mut ClusterHandle| f(c, None));
    engine.register_fn("create_remote_secret", move |c: &mut ClusterHandle, o: Map| f2(c, Some(o)));
}

async fn create_remote_secret(session: &Session, cluster: &ClusterHandle, req: Request) -> Result<Value> {
    let client = &cluster.0;
    let started = Instant::now();
    let cluster_name = match &req.name {
        Some(name) => name.clone(),
        None => kube_system_uid(client).await?,
    };
    let secret_name = req.secret_type.secret_name(&cluster_name);
    let object = format!("Secret {}/{secret_name}", req.namespace);
    let server = match &req.server {
        Some(server) => server.clone(),
        None => {
            if let Some(warning) = rs::loopback_warning(&client.url) {
                session.warn(&client.name, &object, warning);
            }
            client.url.clone()
        }
    };

    let service_account = get_or_create_service_account(session, cluster, &req).await?;
    let token_secret = match &service_account {
        Some(sa) => service_account_secret(session, client, &req, sa).await?,
        None => None,
    };
    let placeholder = token_secret.is_none();
    let (ca, token, outcome) = match token_secret {
        Some(secret) => {
            let (ca, token) = wait_for_token_data(client, secret).await?;
            (ca, token, "ok")
        }
        None => {
            session.warn(
                &client.name,
                &object,
                format!(
                    "dry run: no token Secret exists yet for service account {}/{} and a dry run cannot mint one; the returned Secret holds a placeholder token",
                    req.namespace, req.service_account
                ),
            );
            (Vec::new(), DRY_RUN_TOKEN.to_string(), "placeholder (dry run)")
        }
    };

    let kubeconfig = rs::kubeconfig(&cluster_name, &server, &ca, &token);
    let mut secret = rs::secret(req.secret_type, &cluster_name, &req.namespace, kubeconfig);
    if placeholder {
        secret["metadata"]["annotations"][DRY_RUN_ANNOTATION] = "a dry run cannot mint a service account token".into();
    }
    session.step(&client.name, "remote-secret", &object, outcome, started, None);
    Ok(secret)
}

/// An istioctl-worded failure while getting the token, naming the cluster.
fn token_failure(client: &ClusterClient, message: impl std::fmt::Display) -> Error {
    Error::RemoteSecret {
        message: format!("cluster {}: could not get access token to read resources from local kube-apiserver: {message}", client.name),
    }
}

/// The default cluster ID: the UID of the `kube-system` namespace.
async fn kube_system_uid(client: &ClusterClient) -> Result<String> {
    let ns = client
        .get_json("/api/v1/namespaces/kube-system", &"Namespace kube-system")
        .await?
        .ok_or_else(|| Error::NotFound { cluster: client.name.clone(), object: "Namespace kube-system".into() })?;
    ns.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_string).ok_or_else(|| Error::RemoteSecret {
        message: format!("cluster {}: Namespace kube-system has no UID to name the cluster by; pass #{{ name: ... }}", client.name),
    })
}

/// istioctl's `getOrCreateServiceAccount`. `None` only in a dry run that
/// would have created `istio-reader-service-account`.
async fn get_or_create_service_account(session: &Session, cluster: &ClusterHandle, req: &Request) -> Result<Option<Value>> {
    let client = &cluster.0;
    let (ns, sa) = (&req.namespace, &req.service_account);
    let path = format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}");
    let what = format!("ServiceAccount {ns}/{sa}");
    if let Some(found) = client.get_json(&path, &what).await? {
        return Ok(Some(found));
    }
    if !req.create_service_account {
        return Err(token_failure(
            client,
            format!(
                "failed retrieving service account {sa}.{ns} required for creating the remote secret (hint: try installing a minimal Istio profile on the cluster first, or run with '--create-service-account=true'): serviceaccounts \"{sa}\" not found"
            ),
        ));
    }
    // Like istioctl, only the reader account is created, whatever was asked for.
    let not_created = || {
        token_failure(
            client,
            format!(
                "failed retrieving service account {sa}.{ns} after creating it: serviceaccounts \"{sa}\" not found (only {} is ever created; create {sa} first)",
                rs::READER_SERVICE_ACCOUNT
            ),
        )
    };
    let started = Instant::now();
    let outcome = super::ensure_namespace::ensure(cluster, ns, session.dry_run).await?;
    let outcome = if session.dry_run { format!("{} (dry run)", outcome.as_str()) } else { outcome.as_str().to_string() };
    session.step(&client.name, "namespace", &format!("Namespace {ns}"), &outcome, started, None);
    if session.dry_run {
        let reader = format!("ServiceAccount {ns}/{}", rs::READER_SERVICE_ACCOUNT);
        session.step(&client.name, "create", &reader, "skipped (dry run)", Instant::now(), None);
        return if sa == rs::READER_SERVICE_ACCOUNT { Ok(None) } else { Err(not_created()) };
    }
    // Server-side apply with force, as istioctl applies its rendered chart objects.
    let opts = ApplyOptions { namespace: None, selector: None, force: true, dry_run: false };
    super::apply::apply_and_report(session, cluster, rs::reader_rbac(ns), &opts).await?;
    client.get_json(&path, &what).await?.map(Some).ok_or_else(not_created)
}

/// istioctl's `getServiceAccountSecret`: the token Secret of `service_account`,
/// by the server's version. `None` only in a dry run that would have created it.
async fn service_account_secret(
    session: &Session,
    client: &ClusterClient,
    req: &Request,
    service_account: &Value,
) -> Result<Option<Value>> {
    let version = client.call(Method::GET, "/version", None, Vec::new()).await?;
    if !version.status.is_success() {
        return Err(client.api_error(&version, "/version", "get"));
    }
    // An unparsable version is taken as a current one: token Secrets are not auto-created any more.
    match rs::server_minor(&version.body) {
        Some(minor) if minor < 24 => legacy_service_account_secret(client, req, service_account).await.map(Some),
        _ => find_or_create_token_secret(session, client, req).await,
    }
}

/// Kubernetes < 1.24: the token Secret the token controller made and listed in `secrets[]`.
async fn legacy_service_account_secret(client: &ClusterClient, req: &Request, service_account: &Value) -> Result<Value> {
    let (ns, sa) = (&req.namespace, &req.service_account);
    if let Some(name) = &req.secret_name {
        return get_referencing_secret(client, ns, name, sa).await;
    }
    let secrets_of = |sa: &Value| sa.get("secrets").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut refs = secrets_of(service_account);
    if refs.is_empty() {
        // The token controller lists the Secret it made just after the account
        // is created; istioctl does not wait for it, mesh-run does (≤ 5 s).
        let path = format!("/api/v1/namespaces/{ns}/serviceaccounts");
        let listed = |sa: &Value| Some(secrets_of(sa)).filter(|r| !r.is_empty());
        refs = watch_until(client, &path, sa, &format!("ServiceAccount {ns}/{sa}"), listed).await?.unwrap_or_default();
    }
    match refs.as_slice() {
        [] => Err(token_failure(client, format!("no secret found in the service account: {ns}/{sa}"))),
        [one] => {
            let name = one.get("name").and_then(Value::as_str).unwrap_or_default();
            let secret_ns = one.get("namespace").and_then(Value::as_str).filter(|n| !n.is_empty()).unwrap_or(ns);
            let what = format!("Secret {secret_ns}/{name}");
            client
                .get_json(&format!("/api/v1/namespaces/{secret_ns}/secrets/{name}"), &what)
                .await?
                .ok_or_else(|| Error::NotFound { cluster: client.name.clone(), object: what })
        }
        many => Err(token_failure(
            client,
            format!(
                "wrong number of secrets ({}) in serviceaccount {ns}/{sa}, please use --secret-name to specify one (in mesh-run: the `secret_name` option)",
                many.len()
            ),
        )),
    }
}

/// Kubernetes ≥ 1.24: the first token Secret annotated with the account, else a new one.
async fn find_or_create_token_secret(session: &Session, client: &ClusterClient, req: &Request) -> Result<Option<Value>> {
    let (ns, sa) = (&req.namespace, &req.service_account);
    if let Some(name) = &req.secret_name {
        return get_referencing_secret(client, ns, name, sa).await.map(Some);
    }
    let path = format!("/api/v1/namespaces/{ns}/secrets?fieldSelector=type%3D{}", rs::SERVICE_ACCOUNT_TOKEN_TYPE.replace('/', "%2F"));
    let list = client.call(Method::GET, &path, None, Vec::new()).await?;
    if !list.status.is_success() {
        return Err(client.api_error(&list, &format!("Secrets in {ns}"), "list"));
    }
    let items = list.body.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(found) = items.into_iter().find(|s| rs::references_service_account(s, sa)) {
        return Ok(Some(found));
    }
    let name = rs::token_secret_name(sa);
    let object = format!("Secret {ns}/{name}");
    let started = Instant::now();
    if session.dry_run {
        session.step(&client.name, "create", &object, "skipped (dry run)", started, None);
        return Ok(None);
    }
    let body = serde_json::to_vec(&rs::token_secret(ns, sa)).unwrap_or_default();
    let res = client.call(Method::POST, &format!("/api/v1/namespaces/{ns}/secrets"), Some("application/json"), body).await?;
    match res.status {
        s if s.is_success() => {
            session.step(&client.name, "create", &object, "created", started, None);
            Ok(Some(res.body))
        }
        // Created meanwhile, or left over under that name: usable only if it is the account's.
        StatusCode::CONFLICT => get_referencing_secret(client, ns, &name, sa).await.map(Some),
        _ => Err(client.api_error(&res, &object, "create")),
    }
}

/// A named token Secret, which must belong to `service_account`.
async fn get_referencing_secret(client: &ClusterClient, ns: &str, name: &str, service_account: &str) -> Result<Value> {
    let what = format!("Secret {ns}/{name}");
    let secret = client
        .get_json(&format!("/api/v1/namespaces/{ns}/secrets/{name}"), &what)
        .await?
        .ok_or_else(|| Error::NotFound { cluster: client.name.clone(), object: what.clone() })?;
    if !rs::references_service_account(&secret, service_account) {
        return Err(token_failure(
            client,
            format!(
                "{what} is not a {} Secret annotated {}: {service_account}",
                rs::SERVICE_ACCOUNT_TOKEN_TYPE,
                rs::SERVICE_ACCOUNT_NAME_ANNOTATION
            ),
        ));
    }
    Ok(secret)
}

/// istioctl's `waitForTokenData`: `ca.crt` and `token`, once the token
/// controller has filled them. istioctl re-reads the Secret 5 times, 1 s
/// apart; this watches it for the same 5 s, so a run goes on as soon as they
/// are there (usually within milliseconds of creating it).
async fn wait_for_token_data(client: &ClusterClient, secret: Value) -> Result<(Vec<u8>, String)> {
    let mut last = rs::token_data(&secret);
    if let Ok(data) = last {
        return Ok(data);
    }
    let field = |p: &str| secret.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    let what = format!("Secret {}/{}", field("/metadata/namespace"), field("/metadata/name"));
    let path = format!("/api/v1/namespaces/{}/secrets", field("/metadata/namespace"));
    let judge = |s: &Value| {
        last = rs::token_data(s);
        last.clone().ok()
    };
    match watch_until(client, &path, &field("/metadata/name"), &what, judge).await? {
        Some(data) => Ok(data),
        None => Err(token_failure(
            client,
            format!(
                "{} in {what} after waiting {}s for the token controller to fill it (is kube-controller-manager running with its serviceaccount-token controller?)",
                last.err().unwrap_or_default(),
                TOKEN_WAIT.as_secs()
            ),
        )),
    }
}

/// Watches the object `name` of the collection at `path` until `judge`
/// returns something, for at most `TOKEN_WAIT`; `None` when time is up.
async fn watch_until<T>(
    client: &ClusterClient,
    path: &str,
    name: &str,
    what: &str,
    mut judge: impl FnMut(&Value) -> Option<T>,
) -> Result<Option<T>> {
    let collection = format!("{path}?fieldSelector=metadata.name%3D{name}");
    let gone = || Error::NotFound { cluster: client.name.clone(), object: what.to_string() };
    let watching = async {
        // List, then watch from there; again if the watch ends early.
        loop {
            let list = client.get_json(&collection, &what).await?.unwrap_or(Value::Null);
            let current = list.get("items").and_then(Value::as_array).and_then(|items| items.first()).ok_or_else(gone)?;
            if let Some(found) = judge(current) {
                return Ok(found);
            }
            let rv = list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("0");
            let url = format!("{collection}&watch=true&resourceVersion={rv}&timeoutSeconds={}", TOKEN_WAIT.as_secs() + 1);
            let request = http::Request::get(url).body(Vec::new()).map_err(|e| Error::usage(e.to_string()))?;
            let events = client.client.request_events::<Value>(request).await.map_err(|e| client.unreachable(e))?;
            futures::pin_mut!(events);
            while let Some(event) = events.try_next().await.map_err(|e| client.unreachable(e))? {
                match event {
                    WatchEvent::Added(object) | WatchEvent::Modified(object) => {
                        if let Some(found) = judge(&object) {
                            return Ok(found);
                        }
                    }
                    WatchEvent::Deleted(_) => return Err(gone()),
                    WatchEvent::Bookmark(_) => {}
                    // 410 Gone: the resourceVersion is too old, relist.
                    WatchEvent::Error(_) => break,
                }
            }
        }
    };
    match tokio::time::timeout(TOKEN_WAIT, watching).await {
        Ok(result) => result.map(Some),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, Dynamic)]) -> Result<Request> {
        let map: Map = pairs.iter().map(|(k, v)| ((*k).into(), v.clone())).collect();
        Request::from_options(crate::options::parse("create_remote_secret", Some(map), KEYS)?)
    }

    #[test]
    fn defaults_follow_istioctl() {
        let r = request(&[]).unwrap();
        assert_eq!(r.secret_type, SecretType::Remote);
        assert_eq!(r.namespace, "istio-system");
        assert_eq!(r.service_account, "istio-reader-service-account");
        assert!(r.create_service_account);
        assert!(r.name.is_none() && r.server.is_none() && r.secret_name.is_none());
        let r = request(&[("type", "config".into())]).unwrap();
        assert_eq!(r.service_account, "istiod");
    }

    #[test]
    fn explicit_options_win() {
        let r = request(&[
            ("type", "config".into()),
            ("name", "cluster2".into()),
            ("namespace", "external-istiod".into()),
            ("service_account", "istiod-external-istiod".into()),
            ("create_service_account", false.into()),
            ("server", "https://172.18.0.3:6443".into()),
        ])
        .unwrap();
        assert_eq!((r.name.as_deref(), r.namespace.as_str()), (Some("cluster2"), "external-istiod"));
        assert_eq!(r.service_account, "istiod-external-istiod");
        assert!(!r.create_service_account);
        assert_eq!(r.server.as_deref(), Some("https://172.18.0.3:6443"));
    }

    #[test]
    fn bad_options_are_usage_errors() {
        let err = request(&[("servr", "x".into())]).unwrap_err();
        assert_eq!(err.kind(), "usage");
        assert_eq!(
            err.to_string(),
            "unknown option \"servr\" for create_remote_secret; valid options: type, name, namespace, service_account, create_service_account, server, secret_name"
        );
        assert!(request(&[("type", "remot".into())]).unwrap_err().to_string().starts_with("unsupported type: remot"));
        assert!(request(&[("name", "Cluster_2".into())]).unwrap_err().to_string().contains("not a valid DNS 1123 label"));
    }
}
