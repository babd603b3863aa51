//! The long-lived service-account token Secret istioctl mints (Kubernetes
//! ≥ 1.24 no longer makes one), how it is recognized and read, and the server
//! version that decides whether it is needed.

use base64::Engine as _;
use serde_json::{Value, json};

pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
pub const SERVICE_ACCOUNT_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";

/// The token Secret istioctl creates for a service account on Kubernetes ≥ 1.24.
pub fn token_secret_name(service_account: &str) -> String {
    format!("{service_account}-istio-remote-secret-token")
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
