//! The kubeconfig inside a remote secret, byte for byte as istioctl's
//! client-go codec writes it, with Go's YAML quoting of scalars.

use base64::Engine as _;

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
    use serde_json::Value;

    use super::*;

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
}
