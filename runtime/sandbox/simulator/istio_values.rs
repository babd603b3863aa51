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
    if let Some(profile) = spec
        .get("profile")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty() && *p != "default")
    {
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

/// Drops what `schema` (an OpenAPI v3 schema of a CRD) does not declare, as
/// the operator's typed Go values never carry such fields: Istio's profiles
/// hold keys (`gateways`, `ztunnel`) that Sail's `Values` type does not have.
pub fn prune_to_schema(value: &mut Value, schema: &Value) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                map.retain(|key, _| properties.contains_key(key));
                for (key, child) in map.iter_mut() {
                    prune_to_schema(child, &properties[key]);
                }
            } else if let Some(each) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for child in map.values_mut() {
                    prune_to_schema(child, each);
                }
            }
        }
        Value::Array(items) => {
            if let Some(each) = schema.get("items") {
                items.iter_mut().for_each(|item| prune_to_schema(item, each));
            }
        }
        _ => {}
    }
}

/// The schema of `spec.values` in a bundled Sail CRD (`sailoperator.io_istiorevisions.yaml`, …).
pub fn values_schema(crd_yaml: &str) -> Option<Value> {
    let crd: Value = serde_saphyr::from_str(crd_yaml).ok()?;
    let versions = crd.pointer("/spec/versions")?.as_array()?;
    let version = versions.iter().find(|v| v["name"] == "v1").or(versions.first())?;
    version
        .pointer("/schema/openAPIV3Schema/properties/spec/properties/values")
        .cloned()
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
    fn fields_the_schema_does_not_declare_are_dropped() {
        let schema = json!({"properties": {
            "global": {"properties": {"istioNamespace": {"type": "string"}}},
            "pilot": {"properties": {"env": {"additionalProperties": {"type": "string"}}}},
            "experimental": {"x-kubernetes-preserve-unknown-fields": true},
        }});
        let mut values = json!({"gateways": {"x": {}}, "global": {"istioNamespace": "n", "bogus": 1},
                                "pilot": {"env": {"A": "1"}}, "experimental": {"anything": true}});
        prune_to_schema(&mut values, &schema);
        assert_eq!(
            values,
            json!({"global": {"istioNamespace": "n"}, "pilot": {"env": {"A": "1"}}, "experimental": {"anything": true}})
        );
    }

    #[test]
    fn the_bundled_revision_crd_has_a_values_schema() {
        let yaml = include_str!("../../../stdlib/manifests/crds/sailoperator.io_istiorevisions.yaml");
        let schema = values_schema(yaml).expect("spec.values schema");
        assert!(schema.pointer("/properties/global/properties/istioNamespace").is_some());
        assert!(schema.pointer("/properties/gateways").is_none());
    }

    #[test]
    fn the_revision_named_default_renders_with_an_empty_revision() {
        let values = compute(&[json!({})], &json!({"namespace": "istio-system"}), "default");
        assert_eq!(values["revision"], "");
        assert_eq!(profile_names(&json!({"profile": "default"})), ["default"]);
    }
}
