//! What `istioctl create-remote-secret` builds, as pure functions: names by
//! secret type, the kubeconfig in client-go's exact layout, the Secret around
//! it, the token Secret it mints, and the reader RBAC it creates for a missing
//! service account. The calls to the API server live in
//! `primitives/create_remote_secret.rs`.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::error::{Error, Result};

const REMOTE_SECRET_PREFIX: &str = "istio-remote-secret-";
const CONFIG_SECRET_NAME: &str = "istio-kubeconfig";
const CONFIG_SECRET_KEY: &str = "config";
const MULTICLUSTER_LABEL: &str = "istio/multiCluster";
const CLUSTER_ANNOTATION: &str = "networking.istio.io/cluster";
/// The only service account istioctl ever creates, whatever `--service-account` says.
pub const READER_SERVICE_ACCOUNT: &str = "istio-reader-service-account";
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
pub const SERVICE_ACCOUNT_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";

/// `--type`: who reads the secret. `remote` is picked up by istiod's
/// multicluster secret controller; `config` is mounted as istiod's own
/// KUBECONFIG (external control plane).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretType {
    Remote,
    Config,
}

impl SecretType {
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "remote" => Ok(SecretType::Remote),
            "config" => Ok(SecretType::Config),
            other => Err(Error::usage(format!("unsupported type: {other} (valid types: remote, config)"))),
        }
    }

    /// `istio-remote-secret-<cluster>` or `istio-kubeconfig`.
    pub fn secret_name(self, cluster_name: &str) -> String {
        match self {
            SecretType::Remote => format!("{REMOTE_SECRET_PREFIX}{cluster_name}"),
            SecretType::Config => CONFIG_SECRET_NAME.to_string(),
        }
    }

    /// The `stringData` key holding the kubeconfig: the cluster ID, or `config`.
    pub fn data_key(self, cluster_name: &str) -> String {
        match self {
            SecretType::Remote => cluster_name.to_string(),
            SecretType::Config => CONFIG_SECRET_KEY.to_string(),
        }
    }

    pub fn default_service_account(self) -> &'static str {
        match self {
            SecretType::Remote => READER_SERVICE_ACCOUNT,
            SecretType::Config => "istiod",
        }
    }
}

/// The token Secret istioctl creates for a service account on Kubernetes ≥ 1.24.
pub fn token_secret_name(service_account: &str) -> String {
    format!("{service_account}-istio-remote-secret-token")
}

/// istioctl validates `--name` as a DNS-1123 label (`labels.IsDNS1123Label`).
pub fn validate_cluster_name(name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-';
    if valid {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "{name} is not a valid DNS 1123 label: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
        )))
    }
}

/// The kubeconfig inside the secret, byte for byte as istioctl's client-go
/// codec writes it: cluster, context and user all named `cluster_name`. An
/// empty `ca` leaves out `certificate-authority-data` (Go's `omitempty`).
pub fn kubeconfig(cluster_name: &str, server: &str, ca: &[u8], token: &str) -> String {
    let name = scalar(cluster_name);
    let mut cluster = String::new();
    if !ca.is_empty() {
        let ca = base64::engine::general_purpose::STANDARD.encode(ca);
        cluster.push_str(&format!("    certificate-authority-data: {ca}\n"));
    }
    cluster.push_str(&format!("    server: {}\n", scalar(server)));
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n{cluster}  name: {name}\ncontexts:\n- context:\n    cluster: {name}\n    user: {name}\n  name: {name}\ncurrent-context: {name}\nkind: Config\nusers:\n- name: {name}\n  user:\n    token: {}\n",
        scalar(token)
    )
}

/// The Secret istioctl prints: no `type` (Opaque once applied), the
/// kubeconfig under `stringData` ("for easier review").
pub fn secret(secret_type: SecretType, cluster_name: &str, namespace: &str, kubeconfig: String) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_type.secret_name(cluster_name),
            "namespace": namespace,
            "annotations": { CLUSTER_ANNOTATION: cluster_name },
            "labels": { MULTICLUSTER_LABEL: "true" },
        },
        "stringData": { secret_type.data_key(cluster_name): kubeconfig },
    })
}

/// The long-lived token Secret the token controller fills with `ca.crt` and `token`.
pub fn token_secret(namespace: &str, service_account: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": token_secret_name(service_account),
            "namespace": namespace,
            "annotations": { SERVICE_ACCOUNT_NAME_ANNOTATION: service_account },
        },
        "type": SERVICE_ACCOUNT_TOKEN_TYPE,
    })
}

/// istioctl's `secretReferencesServiceAccount`: a token Secret annotated with the account.
pub fn references_service_account(secret: &Value, service_account: &str) -> bool {
    secret.get("type").and_then(Value::as_str) == Some(SERVICE_ACCOUNT_TOKEN_TYPE)
        && secret
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(SERVICE_ACCOUNT_NAME_ANNOTATION))
            .and_then(Value::as_str)
            == Some(service_account)
}

/// `ca.crt` and `token` of a token Secret, decoded; istioctl's
/// `no "ca.crt" data found` / `no "token" data found` while the token
/// controller has not filled them yet.
pub fn token_data(secret: &Value) -> std::result::Result<(Vec<u8>, String), String> {
    let field = |key: &str| -> std::result::Result<Vec<u8>, String> {
        let missing = || format!("no \"{key}\" data found");
        let encoded = secret
            .pointer("/data")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .ok_or_else(missing)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("\"{key}\" data is not base64: {e}"))?;
        if bytes.is_empty() { Err(missing()) } else { Ok(bytes) }
    };
    let ca = field("ca.crt")?;
    let token = String::from_utf8(field("token")?).map_err(|_| "\"token\" data is not text".to_string())?;
    Ok((ca, token))
}

/// The minor version from `GET /version`: `gitVersion` (`v1.37.2`), else
/// `minor` (which some providers suffix: `24+`).
pub fn server_minor(version: &Value) -> Option<u32> {
    let leading = |s: &str| s.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok();
    version
        .get("gitVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.trim_start_matches('v').split('.').nth(1).and_then(leading))
        .or_else(|| version.get("minor").and_then(Value::as_str).and_then(leading))
}

/// istioctl's warning when the kubeconfig points at a loopback address.
pub fn loopback_warning(server: &str) -> Option<String> {
    (server.contains("127.0.0.1") || server.contains("localhost")).then(|| {
        format!(
            "server in Kubeconfig is {server}. This is likely not reachable from inside the cluster, if you're using Kubernetes in Docker, pass --server with the container IP for the API Server (in mesh-run: the `server` option)"
        )
    })
}

/// What istioctl applies when the service account is missing: the
/// `istio-reader-service-account` and the `istio-reader-clusterrole-<ns>`
/// ClusterRole + binding, as it renders them from the base and istiod charts
/// (default profile; `reader-clusterrole.yaml` without the `istiodRemote`
/// extras): get/list/watch of what istiod reads from a remote cluster,
/// `create` of TokenReviews and SubjectAccessReviews (which change nothing
/// but let istiod authenticate that cluster's workloads), and create/delete
/// of MCS ServiceExports. The rules are in the chart's order, so mesh-run and
/// istioctl, run one after the other on a cluster, leave the same ClusterRole.
/// The labels are the chart's, less those naming a chart version
/// (`app.kubernetes.io/version`, `helm.sh/chart`) or claiming Helm
/// (`app.kubernetes.io/managed-by`).
pub fn reader_rbac(namespace: &str) -> Vec<Value> {
    let read = ["get", "list", "watch"];
    let name = format!("istio-reader-clusterrole-{namespace}");
    let labels = json!({"app": "istio-reader", "app.kubernetes.io/name": "istio-reader", "app.kubernetes.io/part-of": "istio",
        "app.kubernetes.io/instance": "istio", "release": "istio"});
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": READER_SERVICE_ACCOUNT, "namespace": namespace, "labels": labels}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels},
        "rules": [
            {"apiGroups": ["config.istio.io", "security.istio.io", "networking.istio.io", "authentication.istio.io",
                "rbac.istio.io", "telemetry.istio.io", "extensions.istio.io"], "resources": ["*"], "verbs": read},
            {"apiGroups": [""], "resources": ["endpoints", "pods", "services", "nodes", "replicationcontrollers",
                "namespaces", "secrets", "configmaps"], "verbs": read},
            {"apiGroups": ["networking.istio.io"], "verbs": ["get", "watch", "list"], "resources": ["workloadentries"]},
            {"apiGroups": ["networking.x-k8s.io", "gateway.networking.k8s.io"], "resources": ["gateways"],
                "verbs": ["get", "watch", "list"]},
            {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": read},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
            {"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceexports"],
                "verbs": ["get", "list", "watch", "create", "delete"]},
            {"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceimports"], "verbs": read},
            {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": read},
            {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
            {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": READER_SERVICE_ACCOUNT, "namespace": namespace}]}),
    ]
}

/// A YAML scalar the way Go's yaml encoder writes it: plain when it reads
/// back as the same string, double-quoted otherwise (`"true"`, `"123"`).
fn scalar(s: &str) -> String {
    let plain_chars = s.chars().all(|c| c.is_ascii_alphanumeric() || "-._/:+=~".contains(c));
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == '.');
    if plain_chars && first_ok && !s.ends_with(':') && !resolves_to_non_string(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// YAML 1.1 booleans, nulls and numbers, which a plain scalar would turn into.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &["y", "yes", "n", "no", "true", "false", "on", "off", "null", "~", ".inf", ".nan"];
    let lower = s.to_ascii_lowercase();
    WORDS.contains(&lower.trim_start_matches(['+', '-']))
        || s.parse::<f64>().is_ok()
        || lower.starts_with("0x")
        || lower.starts_with("0o")
        || lower.starts_with("0b")
        || s.chars().all(|c| c.is_ascii_digit() || c == '_' || c == ':') && s.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensitive::Sensitive;

    /// `createKubeConfig` of istioctl's remote_secret_test.go, with the
    /// namespace `istio-system-test` its tests use.
    fn istioctl_expected(cluster: &str, secret_name: &str, key: &str) -> String {
        format!(
            r#"# This file is autogenerated, do not edit.
apiVersion: v1
kind: Secret
metadata:
  annotations:
    networking.istio.io/cluster: {cluster}
  labels:
    istio/multiCluster: "true"
  name: {secret_name}
  namespace: istio-system-test
stringData:
  {key}: |
    apiVersion: v1
    clusters:
    - cluster:
        certificate-authority-data: Y2FEYXRh
        server: server
      name: {cluster}
    contexts:
    - context:
        cluster: {cluster}
        user: {cluster}
      name: {cluster}
    current-context: {cluster}
    kind: Config
    users:
    - name: {cluster}
      user:
        token: token
---
"#
        )
    }

    fn build(secret_type: SecretType, cluster: &str) -> Value {
        secret(
            secret_type,
            cluster,
            "istio-system-test",
            kubeconfig(cluster, "server", b"caData", "token"),
        )
    }

    fn parsed(yaml: &str) -> Value {
        crate::manifest::parse(yaml, "expected").unwrap().remove(0)
    }

    #[test]
    fn kubeconfig_matches_istioctl_byte_for_byte() {
        let expected = istioctl_expected("c0", "x", "k");
        let block: String = expected
            .lines()
            .skip_while(|l| !l.ends_with(": |"))
            .skip(1)
            .take_while(|l| *l != "---")
            .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap()))
            .collect();
        assert_eq!(kubeconfig("c0", "server", b"caData", "token"), block);
    }

    #[test]
    fn remote_secret_matches_istioctl_default_name_case() {
        let uid = "54643f96-eca0-11e9-bb97-42010a80000a";
        let expected = istioctl_expected(uid, &format!("istio-remote-secret-{uid}"), uid);
        assert_eq!(build(SecretType::Remote, uid), parsed(&expected));
    }

    #[test]
    fn config_secret_matches_istioctl_custom_name_case() {
        let expected = istioctl_expected("primary", "istio-kubeconfig", "config");
        assert_eq!(build(SecretType::Config, "primary"), parsed(&expected));
        assert!(
            build(SecretType::Config, "primary").get("type").is_none(),
            "no type: Opaque once applied"
        );
    }

    #[test]
    fn names_and_keys_by_type() {
        assert_eq!(SecretType::Remote.secret_name("c2"), "istio-remote-secret-c2");
        assert_eq!(SecretType::Remote.data_key("c2"), "c2");
        assert_eq!(SecretType::Remote.default_service_account(), "istio-reader-service-account");
        assert_eq!(SecretType::Config.secret_name("c2"), "istio-kubeconfig");
        assert_eq!(SecretType::Config.data_key("c2"), "config");
        assert_eq!(SecretType::Config.default_service_account(), "istiod");
        assert_eq!(SecretType::parse("config").unwrap(), SecretType::Config);
        assert_eq!(
            SecretType::parse("other").unwrap_err().to_string(),
            "unsupported type: other (valid types: remote, config)"
        );
        assert_eq!(
            token_secret_name("istiod-external-istiod"),
            "istiod-external-istiod-istio-remote-secret-token"
        );
    }

    #[test]
    fn cluster_names_are_dns_1123_labels() {
        for ok in ["cluster2", "c", "54643f96-eca0-11e9-bb97-42010a80000a", &"a".repeat(63)] {
            assert!(validate_cluster_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Cluster2", "-c", "c-", "c_2", "c.2", &"a".repeat(64)] {
            assert!(validate_cluster_name(bad).is_err(), "{bad}");
        }
        let err = validate_cluster_name("My_Cluster").unwrap_err();
        assert_eq!(err.kind(), "usage");
        assert!(err.to_string().starts_with("My_Cluster is not a valid DNS 1123 label"), "{err}");
    }

    #[test]
    fn token_secret_and_its_recognition() {
        let s = token_secret("external-istiod", "istiod-external-istiod");
        assert_eq!(s["metadata"]["name"], "istiod-external-istiod-istio-remote-secret-token");
        assert_eq!(s["type"], "kubernetes.io/service-account-token");
        assert!(references_service_account(&s, "istiod-external-istiod"));
        assert!(!references_service_account(&s, "istiod"));
        let opaque = json!({"type": "Opaque", "metadata": {"annotations": {SERVICE_ACCOUNT_NAME_ANNOTATION: "istiod"}}});
        assert!(!references_service_account(&opaque, "istiod"));
    }

    #[test]
    fn token_data_names_what_is_missing() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(token_data(&json!({})).unwrap_err(), "no \"ca.crt\" data found");
        assert_eq!(
            token_data(&json!({"data": {"ca.crt": b64("CA")}})).unwrap_err(),
            "no \"token\" data found"
        );
        assert_eq!(
            token_data(&json!({"data": {"ca.crt": b64("CA"), "token": ""}})).unwrap_err(),
            "no \"token\" data found"
        );
        let (ca, token) = token_data(&json!({"data": {"ca.crt": b64("CA"), "token": b64("eyJhbGci.x.y")}})).unwrap();
        assert_eq!((ca.as_slice(), token.as_str()), (b"CA".as_slice(), "eyJhbGci.x.y"));
    }

    #[test]
    fn server_minor_versions() {
        assert_eq!(
            server_minor(&json!({"major": "1", "minor": "37", "gitVersion": "v1.37.2"})),
            Some(37)
        );
        assert_eq!(server_minor(&json!({"minor": "24+", "gitVersion": "v1.24.17-gke.100"})), Some(24));
        assert_eq!(server_minor(&json!({"minor": "23+"})), Some(23));
        assert_eq!(server_minor(&json!({})), None);
    }

    #[test]
    fn loopback_servers_warn() {
        assert!(
            loopback_warning("https://127.0.0.1:6443")
                .unwrap()
                .starts_with("server in Kubeconfig is https://127.0.0.1:6443. This is likely")
        );
        assert!(loopback_warning("https://localhost:6443").is_some());
        assert!(loopback_warning("https://172.18.0.3:6443").is_none());
    }

    #[test]
    fn scalars_quote_what_yaml_would_misread() {
        assert_eq!(scalar("https://172.18.0.3:6443"), "https://172.18.0.3:6443");
        assert_eq!(
            scalar("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJr.c2ln-_x"),
            "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJr.c2ln-_x"
        );
        assert_eq!(scalar("123"), "\"123\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("1e3"), "\"1e3\"");
        assert_eq!(scalar(""), "\"\"");
        // Whatever gets quoted still reads back as the same string.
        for s in ["123", "on", "0x1f", "a b", "#x", "1:20"] {
            let doc = format!("v: {}\n", scalar(s));
            let v: Value = serde_saphyr::from_str(&doc).unwrap();
            assert_eq!(v["v"], s, "{doc}");
        }
    }

    #[test]
    fn kubeconfig_without_ca_omits_the_field() {
        let k = kubeconfig("c", "https://h:6443", b"", "t");
        assert!(!k.contains("certificate-authority-data"), "{k}");
        assert!(k.contains("    server: https://h:6443\n  name: c\n"), "{k}");
    }

    #[test]
    fn printing_the_secret_hides_the_token() {
        let s = Sensitive(secret(
            SecretType::Config,
            "c2",
            "external-istiod",
            kubeconfig("c2", "https://h:6443", b"CA", "SECRET-TOKEN"),
        ));
        let shown = format!("{s} {s:?}");
        assert!(shown.contains("Secret external-istiod/istio-kubeconfig"), "{shown}");
        assert!(!shown.contains("SECRET-TOKEN"), "{shown}");
    }

    #[test]
    fn reader_rbac_binds_the_reader_account() {
        let objs = reader_rbac("istio-system");
        assert_eq!(objs[0]["metadata"]["name"], READER_SERVICE_ACCOUNT);
        assert_eq!(objs[1]["metadata"]["name"], "istio-reader-clusterrole-istio-system");
        assert_eq!(objs[2]["roleRef"]["name"], "istio-reader-clusterrole-istio-system");
        assert_eq!(
            objs[2]["subjects"][0],
            json!({"kind": "ServiceAccount", "name": READER_SERVICE_ACCOUNT, "namespace": "istio-system"})
        );
        // Writes: only reviews (which change nothing) and MCS ServiceExports, as in the chart.
        let writes: Vec<String> = objs[1]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| !["get", "list", "watch"].contains(&v.as_str().unwrap()))
            })
            .map(|r| r["resources"][0].as_str().unwrap().to_string())
            .collect();
        assert_eq!(writes, ["serviceexports", "tokenreviews", "subjectaccessreviews"]);
    }
}
