//! `create_remote_secret(dp, #{...})`: what `istioctl create-remote-secret` prints, built against the API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, Map};
use serde::Deserialize;
use serde_json::Value;

mod token;

use token::{find_or_create_token_secret, get_or_create_service_account, kube_system_uid, service_account_secret, wait_for_token_data};

use super::Primitive;
use crate::error::Result;
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
`istio-reader-clusterrole-<namespace>` ClusterRole/Binding of istioctl's charts: read access, plus
creating TokenReviews, SubjectAccessReviews and MCS ServiceExports); `server` (default: the source's
API server URL from the kubeconfig; a warning when the server used, given or not, is a loopback
address and the call succeeds); `secret_name` (a specific token Secret of the account).

The token comes from a `kubernetes.io/service-account-token` Secret of the account (on Kubernetes
< 1.24: the account's only `secrets[]` entry); one named `<account>-istio-remote-secret-token` is
created if none exists, and watched (at most 5 s) until the token controller fills it. The Secret is
labelled `istio/multiCluster: "true"` and annotated `networking.istio.io/cluster: <name>`.

With `--dry-run` nothing is created; when no token Secret exists yet (or the `secret_name` one or the service account does not) the result holds a placeholder
token (annotated `mesh-run.io/dry-run-placeholder`) and a warning says so, since only a real run can
mint a token.

```rhai
let secret = create_remote_secret(dp, #{ type: "config", namespace: "external-istiod",
    service_account: "istiod-external-istiod", create_service_account: false,
    server: `https://${node_ip}:6443` });
cp.apply(secret);
```
"#,
    options: KEYS,
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

const KEYS: &[&str] = &[
    "type",
    "name",
    "namespace",
    "service_account",
    "create_service_account",
    "server",
    "secret_name",
];

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
            let opts = PRIMITIVE.parse_options::<RemoteSecretOpts>(opts)?;
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
    let service_account = get_or_create_service_account(session, cluster, &req).await?;
    let token_secret = match &service_account {
        Some(sa) => service_account_secret(session, client, &req, sa).await?,
        // A dry run shows the token Secret a real run would create (≥ 1.24), then uses a placeholder.
        None => find_or_create_token_secret(session, client, &req).await?,
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
            (Vec::new(), DRY_RUN_TOKEN.to_string(), "placeholder")
        }
    };

    // istioctl warns about a loopback server only when it succeeds: a failed call says only why it failed.
    // It stays silent about a loopback `--server` given on purpose; mesh-run does not: the
    // remote istiod dials this address from another cluster, where loopback is itself.
    let server = match &req.server {
        Some(server) => {
            if is_loopback(server) {
                session.warn(&client.name, &object, passed_loopback_warning(server));
            }
            server.clone()
        }
        None => {
            if let Some(warning) = rs::loopback_warning(&client.url) {
                session.warn(&client.name, &object, warning);
            }
            client.url.clone()
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

/// A loopback host: 127.0.0.0/8, `localhost` or `[::1]`.
fn is_loopback(server: &str) -> bool {
    let host = server.split("://").nth(1).unwrap_or(server);
    let host = host.split('/').next().unwrap_or(host);
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| &h[1..]).unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn passed_loopback_warning(server: &str) -> String {
    format!(
        "the `server` option is {server}, a loopback address: the istiod that reads this Secret runs on another cluster, where it reaches itself, not this API server; pass the address the other cluster reaches this one at"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers_are_recognised() {
        for server in [
            "https://127.0.0.1:6443",
            "https://localhost:6443",
            "https://[::1]:6443",
            "https://127.0.0.5",
        ] {
            assert!(is_loopback(server), "{server}");
        }
        for server in [
            "https://172.18.0.3:6443",
            "https://[fd00::1]:6443",
            "https://localhost.example.com:6443",
        ] {
            assert!(!is_loopback(server), "{server}");
        }
        assert!(passed_loopback_warning("https://127.0.0.1:6443").contains("`server` option is https://127.0.0.1:6443"));
    }

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
            "unknown option \"servr\" for create_remote_secret; did you mean \"server\"? (valid options: type, name, namespace, service_account, create_service_account, server, secret_name)"
        );
        assert!(
            request(&[("type", "remot".into())])
                .unwrap_err()
                .to_string()
                .starts_with("unsupported type: remot")
        );
        assert!(
            request(&[("name", "Cluster_2".into())])
                .unwrap_err()
                .to_string()
                .contains("not a valid DNS 1123 label")
        );
    }
}
