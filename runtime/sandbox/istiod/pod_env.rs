//! A container's environment as a kubelet computes it: literal values,
//! `fieldRef`s from the Pod, `resourceFieldRef`s, ConfigMap and Secret keys.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};
use serde_json::Value;

use super::pod_objects::PodObjects;

/// CPUs an istiod may use here (`GOMAXPROCS` from `resourceFieldRef`): the
/// machine is shared, a Node's allocatable (32) would be a lie.
const MAX_CPUS: u64 = 2;

/// `(name, value)` in the container's order; a later duplicate wins, as in a
/// container. Errors are what a kubelet reports as `CreateContainerConfigError`.
pub fn container_env(pod: &Pod, container: &Container, objects: &PodObjects) -> Result<Vec<(String, String)>, String> {
    let mut env = Vec::new();
    for var in container.env.iter().flatten() {
        if let Some(value) = value_of(var, pod, container, objects)? {
            env.push((var.name.clone(), value));
        }
    }
    Ok(env)
}

/// `None`: the variable is left out (an optional key that is missing).
fn value_of(var: &EnvVar, pod: &Pod, container: &Container, objects: &PodObjects) -> Result<Option<String>, String> {
    let Some(source) = &var.value_from else {
        return Ok(Some(var.value.clone().unwrap_or_default()));
    };
    let name = &var.name;
    if let Some(field) = &source.field_ref {
        return field_value(pod, &field.field_path)
            .map(Some)
            .ok_or_else(|| format!("env {name}: unsupported fieldRef {:?}", field.field_path));
    }
    if let Some(resource) = &source.resource_field_ref {
        if resource.resource.ends_with(".cpu") || resource.resource == "cpu" {
            return Ok(Some(cpus(container, &resource.resource).to_string()));
        }
        return Err(format!("env {name}: unsupported resourceFieldRef {:?}", resource.resource));
    }
    if let Some(r) = &source.config_map_key_ref {
        let data = objects.config_maps.get(&r.name).and_then(Option::as_ref);
        return key_value(name, data, &r.key, r.optional, &format!("ConfigMap {}", r.name));
    }
    if let Some(r) = &source.secret_key_ref {
        let data = objects.secrets.get(&r.name).and_then(Option::as_ref);
        return key_value(name, data, &r.key, r.optional, &format!("Secret {}", r.name));
    }
    Err(format!("env {name}: unsupported valueFrom"))
}

/// `key` of a ConfigMap's or Secret's `data` (`None` when it is missing); `None`
/// for an optional reference to a missing key or object.
fn key_value(
    name: &str,
    data: Option<&BTreeMap<String, Vec<u8>>>,
    key: &str,
    optional: Option<bool>,
    what: &str,
) -> Result<Option<String>, String> {
    match data.map(|data| data.get(key)) {
        Some(Some(bytes)) => Ok(Some(String::from_utf8_lossy(bytes).into_owned())),
        _ if optional == Some(true) => Ok(None),
        Some(None) => Err(format!("env {name}: key {key:?} not in {what}")),
        None => Err(format!("env {name}: {what} not found")),
    }
}

/// The downward API's `fieldPath`s.
pub fn field_value(pod: &Pod, path: &str) -> Option<String> {
    let value = serde_json::to_value(pod).ok()?;
    let keyed = |prefix: &str| path.strip_prefix(prefix)?.strip_suffix("']").map(str::to_string);
    if let Some(key) = keyed("metadata.labels['") {
        return Some(pod.metadata.labels.as_ref()?.get(&key).cloned().unwrap_or_default());
    }
    if let Some(key) = keyed("metadata.annotations['") {
        return Some(pod.metadata.annotations.as_ref()?.get(&key).cloned().unwrap_or_default());
    }
    let pointer = match path {
        "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.nodeName"
        | "spec.serviceAccountName"
        | "status.podIP"
        | "status.hostIP" => format!("/{}", path.replace('.', "/")),
        _ => return None,
    };
    Some(value.pointer(&pointer).and_then(Value::as_str).unwrap_or_default().to_string())
}

/// Whole CPUs from the container's limit (else request), between 1 and [`MAX_CPUS`].
fn cpus(container: &Container, resource: &str) -> u64 {
    let resources = container.resources.as_ref();
    let requests = || resources.and_then(|r| r.requests.as_ref()).and_then(|r| r.get("cpu"));
    let limits = resources.and_then(|r| r.limits.as_ref()).and_then(|l| l.get("cpu"));
    let quantity = if resource.starts_with("requests.") {
        requests()
    } else {
        limits.or_else(requests)
    };
    let millis = quantity.and_then(|q| match q.0.strip_suffix('m') {
        Some(m) => m.parse::<f64>().ok(),
        None => q.0.parse::<f64>().ok().map(|cpus| cpus * 1000.0),
    });
    millis.map_or(MAX_CPUS, |m| ((m / 1000.0).ceil() as u64).clamp(1, MAX_CPUS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(env: Value, resources: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "istiod-7d9-abc", "namespace": "external-istiod", "uid": "u-1", "labels": {"app": "istiod"}},
            "spec": {"serviceAccountName": "istiod-external-istiod", "nodeName": "kwok-node-1",
                     "containers": [{"name": "discovery", "env": env, "resources": resources}]},
            "status": {"podIP": "198.18.1.1"}
        }))
        .unwrap()
    }

    fn env_of(pod: &Pod, objects: &PodObjects) -> Result<Vec<(String, String)>, String> {
        container_env(pod, &pod.spec.as_ref().unwrap().containers[0], objects)
    }

    #[test]
    fn the_chart_s_env_resolves_from_the_pod() {
        let field = |path: &str| json!({"fieldRef": {"apiVersion": "v1", "fieldPath": path}});
        let pod = pod(
            json!([
                {"name": "REVISION", "value": "external-istiod"},
                {"name": "POD_NAME", "valueFrom": field("metadata.name")},
                {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
                {"name": "SERVICE_ACCOUNT", "valueFrom": field("spec.serviceAccountName")},
                {"name": "APP", "valueFrom": field("metadata.labels['app']")},
                {"name": "IP", "valueFrom": field("status.podIP")},
                {"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}}},
                {"name": "PLATFORM"}
            ]),
            json!({"requests": {"cpu": "500m"}}),
        );
        let env = env_of(&pod, &PodObjects::default()).unwrap();
        let expected = [
            ("REVISION", "external-istiod"),
            ("POD_NAME", "istiod-7d9-abc"),
            ("POD_NAMESPACE", "external-istiod"),
            ("SERVICE_ACCOUNT", "istiod-external-istiod"),
            ("APP", "istiod"),
            ("IP", "198.18.1.1"),
            ("GOMAXPROCS", "1"),
            ("PLATFORM", ""),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(env, expected);
    }

    #[test]
    fn gomaxprocs_is_one_or_two() {
        let gomaxprocs = |resources: Value| {
            let pod = pod(
                json!([{"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]),
                resources,
            );
            env_of(&pod, &PodObjects::default()).unwrap()[0].1.clone()
        };
        assert_eq!(gomaxprocs(json!({})), "2");
        assert_eq!(gomaxprocs(json!({"limits": {"cpu": "1500m"}})), "2");
        assert_eq!(gomaxprocs(json!({"limits": {"cpu": "8"}})), "2");
        assert_eq!(gomaxprocs(json!({"limits": {"cpu": "1"}, "requests": {"cpu": "3"}})), "1");
    }

    #[test]
    fn keys_of_config_maps_and_secrets_and_their_absence() {
        let key_ref = |kind: &str, name: &str, optional: bool| json!({kind: {"name": name, "key": "k", "optional": optional}});
        let pod = pod(
            json!([
                {"name": "FROM_CM", "valueFrom": key_ref("configMapKeyRef", "cm", false)},
                {"name": "FROM_SECRET", "valueFrom": key_ref("secretKeyRef", "s", false)},
                {"name": "OPTIONAL", "valueFrom": key_ref("secretKeyRef", "missing", true)}
            ]),
            json!({}),
        );
        let mut objects = PodObjects::default();
        objects
            .config_maps
            .insert("cm".into(), Some([("k".to_string(), b"v1".to_vec())].into()));
        objects.secrets.insert("s".into(), Some([("k".to_string(), b"v2".to_vec())].into()));
        objects.secrets.insert("missing".into(), None);
        let env = env_of(&pod, &objects).unwrap();
        assert_eq!(
            env,
            [("FROM_CM".to_string(), "v1".to_string()), ("FROM_SECRET".into(), "v2".into())]
        );
        objects.secrets.insert("s".into(), None);
        assert_eq!(env_of(&pod, &objects).unwrap_err(), "env FROM_SECRET: Secret s not found");
    }
}
