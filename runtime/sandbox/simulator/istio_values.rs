//! The Helm values the simulated Sail Operator renders an `Istio` with,
//! computed as Sail's `revision.ComputeValues` does: profile `default`, then
//! the resource's `spec.profile`, then `spec.values`, then the overrides
//! (`istiovalues.ApplyOverrides`). Pure: profiles come in as values.

use serde_json::{Map, Value, json};

/// Deep merge as Helm merges values: maps merge key by key, anything else
/// (lists included) is replaced by `overlay`.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => merge(existing, value),
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// The profile names applied, in order: `default` always, then `spec.profile` (if another one).
pub fn profile_names(spec: &Value) -> Vec<String> {
    let mut names = vec!["default".to_string()];
    if let Some(profile) = spec.get("profile").and_then(Value::as_str).filter(|p| !p.is_empty() && *p != "default") {
        names.push(profile.to_string());
    }
    names
}

/// `profiles` are the values of [`profile_names`], in the same order.
pub fn compute(profiles: &[Value], spec: &Value, revision: &str) -> Value {
    let mut values = Value::Object(Map::new());
    for profile in profiles {
        merge(&mut values, profile);
    }
    if let Some(user) = spec.get("values") {
        merge(&mut values, user);
    }
    apply_overrides(&mut values, revision, spec.get("namespace").and_then(Value::as_str).unwrap_or(""));
    values
}

/// Sail's overrides: `revision` ("" for the revision named `default`),
/// `global.istioNamespace` = the target namespace, `defaultRevision` dropped
/// (so the procedure's `defaultRevision: external-istiod` has no effect).
fn apply_overrides(values: &mut Value, revision: &str, namespace: &str) {
    let Value::Object(map) = values else { return };
    let revision = if revision == "default" { "" } else { revision };
    map.insert("revision".into(), json!(revision));
    map.remove("defaultRevision");
    let global = map.entry("global").or_insert_with(|| json!({}));
    if !global.is_object() {
        *global = json!({});
    }
    global["istioNamespace"] = json!(namespace);
}

/// The values of an `IstioCNI`: its profiles and `spec.values`, no revision.
pub fn compute_cni(profiles: &[Value], spec: &Value) -> Value {
    let mut values = Value::Object(Map::new());
    for profile in profiles {
        merge(&mut values, profile);
    }
    if let Some(user) = spec.get("values") {
        merge(&mut values, user);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_merge_and_everything_else_is_replaced() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x"});
        merge(&mut base, &json!({"a": {"c": [3], "e": true}, "d": {"f": 1}}));
        assert_eq!(base, json!({"a": {"b": 1, "c": [3], "e": true}, "d": {"f": 1}}));
    }

    #[test]
    fn profiles_then_spec_values_then_overrides() {
        let default = json!({"defaultRevision": "", "global": {"istioNamespace": "istio-system", "configValidation": true}});
        let remote = json!({"profile": "remote"});
        let spec = json!({
            "namespace": "external-istiod",
            "profile": "remote",
            "values": {"defaultRevision": "external-istiod", "global": {"configCluster": true, "istioNamespace": "ignored"}},
        });
        assert_eq!(profile_names(&spec), ["default", "remote"]);
        let values = compute(&[default, remote], &spec, "external-istiod");
        assert_eq!(values["profile"], "remote");
        assert_eq!(values["revision"], "external-istiod");
        assert_eq!(values["global"]["istioNamespace"], "external-istiod");
        assert_eq!(values["global"]["configCluster"], true);
        assert_eq!(values["global"]["configValidation"], true, "the default profile stays underneath");
        assert!(values.get("defaultRevision").is_none(), "Sail drops defaultRevision");
    }

    #[test]
    fn the_revision_named_default_renders_with_an_empty_revision() {
        let values = compute(&[json!({})], &json!({"namespace": "istio-system"}), "default");
        assert_eq!(values["revision"], "");
        assert_eq!(profile_names(&json!({"profile": "default"})), ["default"]);
    }
}
