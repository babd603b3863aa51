//! The `Endpoints` twin of a rendered `EndpointSlice`, on API servers before 1.34.
//!
//! Istio's charts give the selectorless remote `istiod` Service an EndpointSlice
//! only (what kube-proxy routes by on a real cluster). The sandbox has no
//! kube-proxy: its API servers call webhooks at the Service's endpoints
//! (`--enable-aggregator-routing`), and before 1.34 they look those up in the
//! Service's `Endpoints`, not its EndpointSlices ("endpoints \"istiod\" not
//! found"). So the simulated install adds the twin there, and only there.

use serde_json::{Value, json};

use crate::sandbox::flags::ROUTES_BY_ENDPOINT_SLICES;

/// Whether a server of `kube_version` (`1.30.4`) needs the twins.
pub fn needed(kube_version: &str) -> bool {
    let minor = kube_version.trim_start_matches('v').split('.').nth(1);
    minor
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| m < ROUTES_BY_ENDPOINT_SLICES)
}

/// The `Endpoints` of the Service `slice` belongs to (label
/// `kubernetes.io/service-name`) with the slice's ready addresses and ports;
/// `None` for anything but an EndpointSlice. Marked `skip-mirror` so the
/// mirroring controller does not turn it back into a second slice.
pub fn twin(slice: &Value) -> Option<Value> {
    if slice.get("kind").and_then(Value::as_str) != Some("EndpointSlice") {
        return None;
    }
    let metadata = slice.get("metadata")?;
    let service = metadata.pointer("/labels/kubernetes.io~1service-name")?.as_str()?;
    let mut labels = metadata.get("labels").cloned().unwrap_or_else(|| json!({}));
    if let Some(labels) = labels.as_object_mut() {
        labels.remove("kubernetes.io/service-name");
        labels.remove("endpointslice.kubernetes.io/managed-by");
        labels.insert("endpointslice.kubernetes.io/skip-mirror".into(), json!("true"));
    }
    let ready = |e: &&Value| e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false);
    let addresses: Vec<Value> = slice
        .get("endpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(ready)
        .flat_map(|e| e.get("addresses").and_then(Value::as_array).cloned().unwrap_or_default())
        .map(|ip| json!({ "ip": ip }))
        .collect();
    let ports = slice.get("ports").cloned().unwrap_or_else(|| json!([]));
    let mut endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": { "name": service, "labels": labels },
        "subsets": [{ "addresses": addresses, "ports": ports }],
    });
    if let Some(namespace) = metadata.get("namespace") {
        endpoints["metadata"]["namespace"] = namespace.clone();
    }
    Some(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_servers_before_1_34_need_twins() {
        assert!(needed("1.30.4"));
        assert!(needed("v1.33.0"));
        assert!(!needed("1.34.0"));
        assert!(!needed(crate::sandbox::assets::CURRENT_VERSION));
        assert!(!needed("garbage"));
    }

    #[test]
    fn the_twin_names_the_service_and_keeps_addresses_and_ports() {
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "istiod", "namespace": "istio-system", "labels": {
                "kubernetes.io/service-name": "istiod", "endpointslice.kubernetes.io/managed-by": "Helm",
                "app.kubernetes.io/name": "istiod"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["198.18.0.7"]}, {"addresses": ["198.18.0.9"], "conditions": {"ready": false}}],
            "ports": [{"name": "tcp-istiod", "port": 15012, "protocol": "TCP"}],
        });
        let twin = twin(&slice).unwrap();
        assert_eq!(twin["kind"], "Endpoints");
        assert_eq!(twin["metadata"]["name"], "istiod");
        assert_eq!(twin["metadata"]["namespace"], "istio-system");
        assert_eq!(twin["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"], "true");
        assert_eq!(twin["metadata"]["labels"]["app.kubernetes.io/name"], "istiod");
        assert!(twin["metadata"]["labels"].get("kubernetes.io/service-name").is_none());
        assert_eq!(twin["subsets"][0]["addresses"], json!([{"ip": "198.18.0.7"}]));
        assert_eq!(twin["subsets"][0]["ports"][0]["port"], 15012);
        assert!(super::twin(&json!({"kind": "Service", "metadata": {"name": "x"}})).is_none());
    }
}
