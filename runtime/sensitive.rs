//! A manifest that carries credentials (the remote secret's token). Playbooks
//! can pass it to `apply` and read its name, but printing it shows no data.
//! The same rule for what the server answers: what holds a Secret's values is
//! named, never shown, in progress lines and errors.

use std::fmt;

use serde_json::Value;

#[derive(Clone)]
pub struct Sensitive(pub Value);

impl fmt::Display for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&summary(&self.0))
    }
}

/// Whether an API answer holds a Secret's values: a Secret, a SecretList, or
/// a list (a `List`'s `items`, or a bare array) with a Secret among its items.
/// A list's items carry no `kind` when the server lists one resource, hence SecretList.
pub fn holds_credentials(body: &Value) -> bool {
    let kind = |v: &Value| v.get("kind").and_then(Value::as_str).map(str::to_string);
    let items = match body {
        Value::Array(items) => Some(items),
        other => other.get("items").and_then(Value::as_array),
    };
    matches!(kind(body).as_deref(), Some("Secret" | "SecretList"))
        || items.is_some_and(|items| items.iter().any(|i| kind(i).as_deref() == Some("Secret")))
}

/// Whether a raw API path reads Secrets (`/api/v1/namespaces/NS/secrets/NAME`,
/// `/api/v1/secrets`, their watches), whatever the answer looks like: a
/// Table or a partial answer of them may hold values too. Any `secrets`
/// segment counts: hiding one pod-proxied page too much costs little.
pub fn reads_secrets(path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.split('/').any(|segment| segment.eq_ignore_ascii_case("secrets"))
}

/// What may be shown of an answer that holds credentials: its kind, where it
/// is and how many items it has, never a value.
pub fn summary(body: &Value) -> String {
    let get = |p: &str| body.pointer(p).and_then(Value::as_str).unwrap_or("?");
    let hidden = "contents hidden: they hold credentials";
    let count = |items: &Vec<Value>| match items.len() {
        1 => "1 item".to_string(),
        n => format!("{n} items"),
    };
    match body {
        Value::Array(items) => format!("a list of {} ({hidden})", count(items)),
        _ => match body.get("items").and_then(Value::as_array) {
            Some(items) => format!("{} of {} ({hidden})", get("/kind"), count(items)),
            None => format!(
                "{} {}/{} ({hidden})",
                get("/kind"),
                get("/metadata/namespace"),
                get("/metadata/name")
            ),
        },
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub fn register(engine: &mut rhai::Engine) {
    engine
        .register_type_with_name::<Sensitive>("SensitiveManifest")
        .register_get("name", |s: &mut Sensitive| {
            s.0.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string()
        })
        .register_get("namespace", |s: &mut Sensitive| {
            s.0.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string()
        })
        .register_get("labels", |s: &mut Sensitive| {
            rhai::serde::to_dynamic(s.0.pointer("/metadata/labels").cloned().unwrap_or(Value::Null)).unwrap_or_default()
        })
        .register_get("annotations", |s: &mut Sensitive| {
            rhai::serde::to_dynamic(s.0.pointer("/metadata/annotations").cloned().unwrap_or(Value::Null)).unwrap_or_default()
        })
        .register_fn("to_string", |s: &mut Sensitive| s.to_string())
        .register_fn("to_debug", |s: &mut Sensitive| s.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_hides_data() {
        let s = Sensitive(
            serde_json::json!({"kind": "Secret", "metadata": {"name": "istio-kubeconfig", "namespace": "external-istiod"},
            "stringData": {"config": "token: SECRET-TOKEN"}}),
        );
        let shown = s.to_string();
        assert!(shown.contains("Secret external-istiod/istio-kubeconfig"));
        assert!(!shown.contains("SECRET-TOKEN"));
    }

    #[test]
    fn secrets_and_lists_of_them_hold_credentials() {
        use serde_json::json;
        let secret = json!({"kind": "Secret", "metadata": {"name": "t"}, "data": {"token": "c2VjcmV0"}});
        assert!(holds_credentials(&secret));
        // Listing one resource, the server leaves out the items' kind.
        assert!(holds_credentials(
            &json!({"kind": "SecretList", "items": [{"metadata": {"name": "t"}}]})
        ));
        assert!(holds_credentials(
            &json!({"kind": "List", "items": [{"kind": "ConfigMap"}, secret.clone()]})
        ));
        assert!(holds_credentials(&json!([secret])));
        assert!(!holds_credentials(&json!({"kind": "ConfigMap", "data": {"k": "v"}})));
        assert!(!holds_credentials(&json!({"kind": "List", "items": [{"kind": "ConfigMap"}]})));
        assert!(!holds_credentials(&json!([{"id": "cluster1"}])));
        assert!(!holds_credentials(&json!("text")));
    }

    #[test]
    fn paths_that_read_secrets() {
        assert!(reads_secrets("/api/v1/namespaces/x/secrets/y"));
        assert!(reads_secrets("/api/v1/secrets?limit=5"));
        assert!(reads_secrets("/api/v1/watch/namespaces/x/secrets"));
        assert!(!reads_secrets("/api/v1/namespaces/secrets-ns/configmaps/y"));
        assert!(!reads_secrets("/apis/external-secrets.io/v1/externalsecrets"));
        assert!(!reads_secrets(
            "/api/v1/namespaces/x/configmaps?fieldSelector=metadata.name%3Dsecrets"
        ));
    }

    #[test]
    fn a_summary_names_but_never_shows() {
        use serde_json::json;
        let list = json!({"kind": "SecretList", "items": [{"data": {"token": "c2VjcmV0"}}, {}]});
        assert_eq!(summary(&list), "SecretList of 2 items (contents hidden: they hold credentials)");
        assert_eq!(summary(&json!([1])), "a list of 1 item (contents hidden: they hold credentials)");
    }
}
