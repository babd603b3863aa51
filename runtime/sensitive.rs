//! A manifest that carries credentials (the remote secret's token). Playbooks
//! can pass it to `apply` and read its name, but printing it shows no data.

use std::fmt;

use serde_json::Value;

#[derive(Clone)]
pub struct Sensitive(pub Value);

impl fmt::Display for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let get = |p: &str| self.0.pointer(p).and_then(Value::as_str).unwrap_or("?");
        write!(
            f,
            "{} {}/{} (contents hidden: they hold credentials)",
            get("/kind"),
            get("/metadata/namespace"),
            get("/metadata/name")
        )
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
}
