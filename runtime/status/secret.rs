//! A remote secret as `status` reads it: the kubeconfig inside, where it
//! points, the token (kept for the live check, never shown) and its expiry.

use base64::Engine as _;
use kube::config::Kubeconfig;
use serde_json::Value;

/// One remote secret, parsed. Holds a token: deliberately not `Debug`.
pub struct ParsedSecret {
    pub namespace: String,
    pub name: String,
    pub cluster_name: String,
    pub server: String,
    pub ca: Option<Vec<u8>>,
    pub insecure: bool,
    pub token: Option<String>,
    pub kubeconfig: Option<Kubeconfig>,
    /// Why the kubeconfig could not be read, if it could not.
    pub problem: Option<String>,
}

/// Parses a Secret labelled `istio/multiCluster=true`: istioctl writes one
/// data key (the cluster name; `config` for a config cluster) holding a kubeconfig.
pub fn parse(secret: &Value) -> ParsedSecret {
    let meta = |p: &str| secret.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    let mut parsed = ParsedSecret {
        namespace: meta("/metadata/namespace"),
        name: meta("/metadata/name"),
        cluster_name: meta("/metadata/annotations/networking.istio.io~1cluster"),
        server: String::new(),
        ca: None,
        insecure: false,
        token: None,
        kubeconfig: None,
        problem: None,
    };
    let data = secret.get("data").and_then(Value::as_object);
    let Some((key, encoded)) = data.and_then(|d| d.iter().next()) else {
        parsed.problem = Some("the secret has no data".into());
        return parsed;
    };
    if parsed.cluster_name.is_empty() {
        parsed.cluster_name = key.clone();
    }
    let text = encoded
        .as_str()
        .and_then(|e| base64::engine::general_purpose::STANDARD.decode(e).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some(text) = text else {
        parsed.problem = Some(format!("data key {key} is not base64 text"));
        return parsed;
    };
    let kubeconfig = match Kubeconfig::from_yaml(&text) {
        Ok(k) => k,
        Err(e) => {
            parsed.problem = Some(format!("data key {key} is not a kubeconfig: {e}"));
            return parsed;
        }
    };
    if let Some(cluster) = kubeconfig.clusters.first().and_then(|c| c.cluster.as_ref()) {
        parsed.server = cluster.server.clone().unwrap_or_default();
        parsed.insecure = cluster.insecure_skip_tls_verify == Some(true);
        parsed.ca = cluster
            .certificate_authority_data
            .as_ref()
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d.trim()).ok());
    }
    // Read from the text: kube keeps tokens behind `secrecy`, which mesh-run does not depend on.
    parsed.token = serde_saphyr::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.pointer("/users/0/user/token").and_then(Value::as_str).map(str::to_string));
    parsed.kubeconfig = Some(kubeconfig);
    parsed
}

/// Same API server: same URL (ignoring a trailing slash) and, when both
/// name one, the same CA.
pub fn same_server(url_a: &str, ca_a: Option<&[u8]>, url_b: &str, ca_b: Option<&[u8]>) -> bool {
    let url = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
    if url(url_a) != url(url_b) {
        return false;
    }
    match (ca_a, ca_b) {
        (Some(a), Some(b)) => a.trim_ascii() == b.trim_ascii(),
        _ => true,
    }
}

/// The `exp` claim of a JWT as seconds since the epoch; None for a token
/// that is not a JWT or carries no expiry (legacy token Secrets).
pub fn token_expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_i64()
}

/// RFC 3339 (UTC) of epoch seconds.
pub fn rfc3339(seconds: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(annotation: Option<&str>, key: &str, kubeconfig: &str) -> Value {
        let data = base64::engine::general_purpose::STANDARD.encode(kubeconfig);
        let mut s = serde_json::json!({"metadata": {"name": "istio-remote-secret-c2", "namespace": "ext"}, "data": {key: data}});
        if let Some(a) = annotation {
            s["metadata"]["annotations"] = serde_json::json!({"networking.istio.io/cluster": a});
        }
        s
    }

    #[test]
    fn reads_server_ca_and_token_of_istioctls_kubeconfig() {
        let text = crate::kube::remote_secret::kubeconfig("c2", "https://10.0.0.2:6443", b"PEM", "tok.en.x");
        let p = parse(&secret(Some("c2"), "c2", &text));
        assert_eq!((p.name.as_str(), p.namespace.as_str()), ("istio-remote-secret-c2", "ext"));
        assert_eq!(p.cluster_name, "c2");
        assert_eq!(p.server, "https://10.0.0.2:6443");
        assert_eq!(p.ca.as_deref(), Some(&b"PEM"[..]));
        assert_eq!(p.token.as_deref(), Some("tok.en.x"));
        assert!(p.problem.is_none() && !p.insecure);
    }

    #[test]
    fn the_data_key_names_the_cluster_without_the_annotation() {
        let text = crate::kube::remote_secret::kubeconfig("c3", "https://h:6443", b"", "t");
        assert_eq!(parse(&secret(None, "c3", &text)).cluster_name, "c3");
        let broken = parse(&secret(None, "c3", "not: [a kubeconfig"));
        assert!(broken.problem.unwrap().contains("not a kubeconfig"));
    }

    #[test]
    fn servers_match_by_url_and_ca() {
        assert!(same_server("https://a:6443/", Some(b"X\n"), "https://A:6443", Some(b"X")));
        assert!(!same_server("https://a:6443", Some(b"X"), "https://a:6443", Some(b"Y")));
        assert!(!same_server("https://a:6443", None, "https://b:6443", None));
        assert!(same_server("https://a:6443", None, "https://a:6443", Some(b"Y")));
    }

    #[test]
    fn expiry_comes_from_the_jwt_exp_claim() {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1767225600,"sub":"x"}"#);
        assert_eq!(token_expiry(&format!("h.{claims}.s")), Some(1767225600));
        assert_eq!(rfc3339(1767225600), "2026-01-01T00:00:00Z");
        let legacy = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"sub":"x"}"#);
        assert_eq!(token_expiry(&format!("h.{legacy}.s")), None);
        assert_eq!(token_expiry("opaque"), None);
    }
}
