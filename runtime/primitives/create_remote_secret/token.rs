//! The service account and its token on the source cluster, the way
//! istioctl gets them: find or create the account, then its token Secret
//! (or, before Kubernetes 1.24, the account's own secret), then wait for
//! the token controller to fill it.

use std::sync::Arc;
use std::time::Instant;

use http::{Method, StatusCode};
use serde_json::Value;

use super::{Request, TOKEN_WAIT};
use crate::error::{Error, Result};
use crate::kube::ClusterClient;
use crate::kube::apply::ApplyOptions;
use crate::kube::remote_secret as rs;
use crate::kube::watch;
use crate::session::{ClusterHandle, Session};

pub(super) fn token_failure(client: &ClusterClient, message: impl std::fmt::Display) -> Error {
    Error::RemoteSecret {
        message: format!(
            "cluster {}: could not get access token to read resources from local kube-apiserver: {message}",
            client.name
        ),
    }
}

/// The default cluster ID: the UID of the `kube-system` namespace.
pub(super) async fn kube_system_uid(client: &ClusterClient) -> Result<String> {
    let ns = client
        .get_json("/api/v1/namespaces/kube-system", &"Namespace kube-system")
        .await?
        .ok_or_else(|| Error::NotFound {
            cluster: client.name.clone(),
            object: "Namespace kube-system".into(),
        })?;
    ns.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::RemoteSecret {
            message: format!(
                "cluster {}: Namespace kube-system has no UID to name the cluster by; pass #{{ name: ... }}",
                client.name
            ),
        })
}

/// istioctl's `getOrCreateServiceAccount`. `None` only in a dry run, for an
/// account it would have created or that is not there yet.
pub(super) async fn get_or_create_service_account(session: &Session, cluster: &ClusterHandle, req: &Request) -> Result<Option<Value>> {
    let client = &cluster.0;
    let (ns, sa) = (&req.namespace, &req.service_account);
    let path = format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}");
    let what = format!("ServiceAccount {ns}/{sa}");
    if let Some(found) = client.get_json(&path, &what).await? {
        return Ok(Some(found));
    }
    // A dry run did not create what creates the account (an Istio the operator
    // would reconcile, a namespace): the result holds a placeholder token.
    if !req.create_service_account && session.dry_run {
        session.warn(
            &client.name,
            &what,
            "does not exist yet (an operator or an earlier step of a real run creates it); the dry run goes on with a placeholder token",
        );
        return Ok(None);
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
    let outcome = crate::primitives::ensure_namespace::ensure(session, cluster, ns).await?;
    session.step(
        &client.name,
        "namespace",
        &format!("Namespace {ns}"),
        outcome.as_str(),
        started,
        None,
    );
    // Server-side apply with force, as istioctl applies its rendered chart objects.
    let opts = ApplyOptions {
        namespace: None,
        selector: None,
        force: true,
        dry_run: session.dry_run,
        applyset: None,
    };
    crate::primitives::apply::apply_and_report(session, cluster, rs::reader_rbac(ns), &opts).await?;
    if session.dry_run {
        return if sa == rs::READER_SERVICE_ACCOUNT {
            Ok(None)
        } else {
            Err(not_created())
        };
    }
    client.get_json(&path, &what).await?.map(Some).ok_or_else(not_created)
}

/// istioctl's `getServiceAccountSecret`: the token Secret of `service_account`,
/// by the server's version. `None` only in a dry run that would have created it.
pub(super) async fn service_account_secret(
    session: &Session,
    client: &Arc<ClusterClient>,
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
pub(super) async fn legacy_service_account_secret(client: &ClusterClient, req: &Request, service_account: &Value) -> Result<Value> {
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
        refs = watch_until(client, &path, sa, &format!("ServiceAccount {ns}/{sa}"), listed)
            .await?
            .unwrap_or_default();
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
                .ok_or_else(|| Error::NotFound {
                    cluster: client.name.clone(),
                    object: what,
                })
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
pub(super) async fn find_or_create_token_secret(session: &Session, client: &Arc<ClusterClient>, req: &Request) -> Result<Option<Value>> {
    let (ns, sa) = (&req.namespace, &req.service_account);
    if let Some(name) = &req.secret_name {
        return match get_referencing_secret(client, ns, name, sa).await {
            // A dry run of a playbook that creates this Secret first (a token rotation) did not create it.
            Err(Error::NotFound { .. }) if session.dry_run => Ok(None),
            found => found.map(Some),
        };
    }
    let path = format!(
        "/api/v1/namespaces/{ns}/secrets?fieldSelector=type%3D{}",
        rs::SERVICE_ACCOUNT_TOKEN_TYPE.replace('/', "%2F")
    );
    let list = client.call(Method::GET, &path, None, Vec::new()).await?;
    if !list.status.is_success() {
        return Err(client.api_error(&list, &format!("Secrets in {ns}"), "list"));
    }
    let items = list.body.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(found) = items.into_iter().find(|s| rs::references_service_account(s, sa)) {
        if session.applysets.is_member(&found) {
            let name = found.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let info = client.resolve_kind("v1", "Secret").await?;
            session
                .applysets
                .applied(client, &crate::kube::ObjectRef::new(info, name, Some(ns)))
                .await;
        }
        return Ok(Some(found));
    }
    let name = rs::token_secret_name(sa);
    let object = format!("Secret {ns}/{name}");
    let started = Instant::now();
    let info = client.resolve_kind("v1", "Secret").await?;
    let target = crate::kube::ObjectRef::new(info.clone(), &name, Some(ns));
    if session.dry_run {
        // A dry run cannot mint a token: the caller goes on with a placeholder.
        session.step(&client.name, "create", &object, "created", started, None);
        return Ok(None);
    }
    session.applysets.track(client, &[(info, Some(ns.clone()))]).await?;
    let mut secret = rs::token_secret(ns, sa);
    secret["metadata"]["labels"][crate::applyset::id::PART_OF] = Value::String(session.applysets.id.clone());
    let body = serde_json::to_vec(&secret).unwrap_or_default();
    let res = client
        .call(
            Method::POST,
            &format!("/api/v1/namespaces/{ns}/secrets"),
            Some("application/json"),
            body,
        )
        .await?;
    match res.status {
        s if s.is_success() => {
            session.applysets.applied(client, &target).await;
            session.step(&client.name, "create", &object, "created", started, None);
            Ok(Some(res.body))
        }
        // Created meanwhile, or left over under that name: usable only if it is the account's.
        StatusCode::CONFLICT => get_referencing_secret(client, ns, &name, sa).await.map(Some),
        _ => Err(client.api_error(&res, &object, "create")),
    }
}

/// A named token Secret, which must belong to `service_account`.
pub(super) async fn get_referencing_secret(client: &ClusterClient, ns: &str, name: &str, service_account: &str) -> Result<Value> {
    let what = format!("Secret {ns}/{name}");
    let secret = client
        .get_json(&format!("/api/v1/namespaces/{ns}/secrets/{name}"), &what)
        .await?
        .ok_or_else(|| Error::NotFound {
            cluster: client.name.clone(),
            object: what.clone(),
        })?;
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
pub(super) async fn wait_for_token_data(client: &ClusterClient, secret: Value) -> Result<(Vec<u8>, String)> {
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
pub(super) async fn watch_until<T>(
    client: &ClusterClient,
    path: &str,
    name: &str,
    what: &str,
    mut judge: impl FnMut(&Value) -> Option<T>,
) -> Result<Option<T>> {
    let gone = || Error::NotFound {
        cluster: client.name.clone(),
        object: what.to_string(),
    };
    let watching = watch::observe(client, path, name, &what, |object| match object {
        None => Some(Err(gone())),
        Some(o) => judge(o).map(Ok),
    });
    match tokio::time::timeout(TOKEN_WAIT, watching).await {
        Ok(result) => result?.map(Some),
        Err(_) => Ok(None),
    }
}
