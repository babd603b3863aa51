//! The CRDs every sandbox cluster gets: the Sail Operator's (`sailoperator.io/v1`)
//! and Istio's Gateway and VirtualService. Embedded in the binary from
//! `stdlib/manifests/crds/` (copied verbatim from upstream, see the file headers).

use std::time::Duration;

use futures::future::try_join_all;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::ApiResource;
use kube::runtime::wait::{await_condition, conditions};
use serde_json::Value;

use crate::error::{Error, Result};

macro_rules! bundled {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_str!(concat!("../../stdlib/manifests/crds/", $file)))),*]
    };
}

/// (file name, YAML) of every bundled CRD.
pub const BUNDLED: &[(&str, &str)] = bundled!(
    "sailoperator.io_istios.yaml",
    "sailoperator.io_istiorevisions.yaml",
    "sailoperator.io_istiorevisiontags.yaml",
    "sailoperator.io_istiocnis.yaml",
    "sailoperator.io_ztunnels.yaml",
    "networking.istio.io_gateways.yaml",
    "networking.istio.io_virtualservices.yaml",
);

/// The bundled CRDs parsed once; parsing 2.4 MB of YAML is worth doing only once per sandbox.
pub fn parse_bundled() -> Result<Vec<Value>> {
    BUNDLED
        .iter()
        .map(|(file, text)| {
            serde_saphyr::from_str::<Value>(text).map_err(|e| Error::Sandbox {
                message: format!("bundled CRD {file} does not parse: {e}"),
            })
        })
        .collect()
}

/// Kubernetes before 1.25 cannot load the Sail Operator CRDs unchanged. This
/// is the one place they are adapted, and only for such servers:
/// - `x-kubernetes-validations` (CEL rules, 1.25+) are removed: older servers
///   reject them on server-side apply, and would ignore them anyway. The
///   rules only guard immutability and cross-field consistency.
/// - `default` values below the top-level `spec` fields are removed: 1.20.2
///   rejects the `default: ""` ones (e.g. `...pilot.volumes.items...secretRef.name.default:
///   Invalid value: "null": in body must be of type string`). All of these
///   sit in embedded pod-spec fragments (volumes, env sources, probes) that
///   nothing in the sandbox renders. The top-level defaults (`spec`,
///   `spec.namespace`, `spec.version`, `spec.updateStrategy.type`) load fine
///   on 1.20.2 and are kept: procedures rely on them (an `Istio` without
///   `spec.version`).
pub fn adapt_for_pre_1_25(crd: &mut Value) {
    /// Schema nesting of `spec.updateStrategy.type` (root 0, spec 1, updateStrategy 2):
    /// defaults at most this deep are kept.
    const KEEP_DEFAULTS_UP_TO: usize = 3;
    fn strip(schema: &mut Value, depth: usize) {
        let Some(map) = schema.as_object_mut() else {
            return;
        };
        map.remove("x-kubernetes-validations");
        if depth > KEEP_DEFAULTS_UP_TO {
            map.remove("default");
        }
        // Recurse only into sub-schemas: a field may itself be named `default`.
        for (key, child) in map.iter_mut() {
            match (key.as_str(), child) {
                ("properties" | "patternProperties" | "definitions", Value::Object(fields)) => {
                    fields.values_mut().for_each(|s| strip(s, depth + 1))
                }
                ("items" | "additionalProperties" | "not", s @ Value::Object(_)) => strip(s, depth + 1),
                ("items" | "allOf" | "anyOf" | "oneOf", Value::Array(list)) => list.iter_mut().for_each(|s| strip(s, depth + 1)),
                _ => {}
            }
        }
    }
    if let Some(versions) = crd.pointer_mut("/spec/versions").and_then(Value::as_array_mut) {
        for version in versions {
            if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
                strip(schema, 0);
            }
        }
    }
}

/// True when the server is older than 1.25. Its `/version` decides; a build
/// without version stamps (`major: ""`, `gitVersion: v0.0.0-master`) says
/// nothing, and then the binary's own `--version` (`binary_minor`) does.
pub fn needs_adaptation(info: &k8s_openapi::apimachinery::pkg::version::Info, binary_minor: u32) -> bool {
    let stamped = (info.major == "1")
        .then(|| info.minor.trim_end_matches('+').parse::<u32>().ok())
        .flatten();
    let from_git = || {
        let rest = info.git_version.strip_prefix("v1.")?;
        rest.split('.').next()?.parse::<u32>().ok()
    };
    stamped.or_else(from_git).unwrap_or(binary_minor) < 25
}

/// Creates every CRD and waits until each is Established.
pub async fn install(client: &kube::Client, crds: &[Value], adapt: bool) -> Result<()> {
    let resource = ApiResource::erase::<CustomResourceDefinition>(&());
    let dynamic: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    try_join_all(crds.iter().map(|crd| async {
        let mut crd = crd.clone();
        if adapt {
            adapt_for_pre_1_25(&mut crd);
        }
        let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?").to_string();
        let object: DynamicObject = serde_json::from_value(crd).map_err(|e| Error::Sandbox {
            message: format!("CRD {name}: {e}"),
        })?;
        match dynamic.create(&PostParams::default(), &object).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => {
                return Err(Error::Sandbox {
                    message: format!("cannot create CRD {name}: {e}"),
                });
            }
        }
        let typed: Api<CustomResourceDefinition> = Api::all(client.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let established = await_condition(typed.clone(), &name, conditions::is_crd_established());
            match tokio::time::timeout_at(deadline, established).await {
                Ok(Ok(_)) => return Ok(()),
                // A freshly started 1.20 apiserver under load sometimes fails a
                // list with a 500 ("rpc error ... unexpected EOF" from etcd):
                // transient, so watch again rather than fail the sandbox.
                Ok(Err(e)) if tokio::time::Instant::now() < deadline => {
                    eprintln!("sandbox: waiting for CRD {name}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(Err(e)) => {
                    return Err(Error::Sandbox {
                        message: format!("waiting for CRD {name}: {e}"),
                    });
                }
                Err(_) => {
                    return Err(Error::Sandbox {
                        message: format!("CRD {name} not Established after 60s"),
                    });
                }
            }
        }
    }))
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(node: &Value, key: &str) -> usize {
        match node {
            Value::Object(map) => map.iter().map(|(k, v)| usize::from(k == key) + count(v, key)).sum(),
            Value::Array(items) => items.iter().map(|v| count(v, key)).sum(),
            _ => 0,
        }
    }

    #[test]
    fn every_bundled_crd_parses() {
        let crds = parse_bundled().unwrap();
        assert_eq!(crds.len(), BUNDLED.len());
        assert!(crds.iter().all(|c| c["kind"] == "CustomResourceDefinition"));
    }

    #[test]
    fn adaptation_strips_cel_and_nested_defaults_but_keeps_top_level_ones() {
        let mut istio = parse_bundled().unwrap().remove(0);
        assert_eq!(istio["metadata"]["name"], "istios.sailoperator.io");
        assert!(count(&istio, "x-kubernetes-validations") > 0);
        adapt_for_pre_1_25(&mut istio);
        assert_eq!(count(&istio, "x-kubernetes-validations"), 0);
        let spec = &istio["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["properties"]["version"]["default"], "v1.31.0-beta.1");
        assert_eq!(spec["properties"]["namespace"]["default"], "istio-system");
        assert_eq!(spec["properties"]["updateStrategy"]["properties"]["type"]["default"], "InPlace");
        assert!(spec["default"].is_object());
        assert_eq!(count(&spec["properties"]["values"], "default"), 0);
    }

    #[test]
    fn only_servers_before_1_25_are_adapted() {
        let info = |minor: &str| k8s_openapi::apimachinery::pkg::version::Info {
            major: "1".into(),
            minor: minor.into(),
            ..Default::default()
        };
        assert!(needs_adaptation(&info("20"), 37));
        assert!(needs_adaptation(&info("24+"), 37));
        assert!(!needs_adaptation(&info("25"), 20));
        assert!(!needs_adaptation(&info("37"), 20));
        let unstamped = k8s_openapi::apimachinery::pkg::version::Info {
            git_version: "v0.0.0-master+faecb196815e2".into(),
            ..Default::default()
        };
        assert!(needs_adaptation(&unstamped, 20));
        assert!(!needs_adaptation(&unstamped, 37));
    }
}
