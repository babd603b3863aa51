//! Networks (day-2-operations.md item 8, istio/istio#49412): a data plane's
//! network is named in three places that must agree — the injection path
//! (`/inject/.../net/<network>`: what its sidecars announce as
//! ISTIO_META_NETWORK), its remote Istio's `global.network` (what the charts
//! render) and the `topology.istio.io/network` label of its system namespace
//! (what istiod reads to place the cluster's endpoints). A cluster on another
//! network than istiod's also needs an east-west gateway (port 15443) for
//! traffic between networks.

use serde_json::Value;

use super::graph::text;
use super::model::{Check, DataPlane, Istiod};
use super::read::Objects;

pub const CONSISTENCY: &str = "network.consistency";
pub const EAST_WEST: &str = "network.east-west";
const LABEL: &str = "topology.istio.io/network";
/// The port of Istio's east-west gateways (AUTO_PASSTHROUGH, mTLS between networks).
const CROSS_NETWORK_PORT: u64 = 15443;

/// Where a data plane's network is named (empty: not named there).
#[derive(Debug, Default, PartialEq)]
pub struct Named {
    pub injection: String,
    pub values: String,
    pub label: String,
}

impl Named {
    pub fn of(dp: &DataPlane, objects: &Objects) -> Named {
        let istio = objects.istios.iter().find(|i| text(i, "/metadata/name") == dp.name);
        let ns = objects.namespaces.iter().find(|n| text(n, "/metadata/name") == dp.namespace);
        Named {
            injection: dp.network.clone(),
            values: istio.map(|i| text(i, "/spec/values/global/network")).unwrap_or_default(),
            label: ns
                .map(|n| text(n, &format!("/metadata/labels/{}", LABEL.replace('/', "~1"))))
                .unwrap_or_default(),
        }
    }
}

/// The checks of one data plane served by `istiod`: its network named
/// consistently, and an east-west gateway when it is not istiod's network.
pub fn checks(dp: &DataPlane, named: &Named, istiod: &Istiod, services: &[Value]) -> Vec<Check> {
    let ctx = dp.id.split('/').next().unwrap_or_default();
    let network = named.injection.as_str();
    if network.is_empty() {
        return Vec::new();
    }
    let config = istiod.cluster_id == dp.cluster_id;
    let mut disagree = Vec::new();
    if !named.values.is_empty() && named.values != network {
        disagree.push(format!("its Istio's global.network is {}", named.values));
    }
    if !named.label.is_empty() && named.label != network {
        disagree.push(format!("namespace {}'s {LABEL} label is {}", dp.namespace, named.label));
    }
    if config && !istiod.network.is_empty() && istiod.network != network {
        disagree.push(format!("it is istiod's config cluster, on istiod's network {}", istiod.network));
    }
    let foreign = !istiod.network.is_empty() && istiod.network != network;
    if !config && foreign && named.label.is_empty() {
        disagree.push(format!(
            "namespace {} has no {LABEL} label, so istiod (on {}) does not know this cluster's endpoints are elsewhere",
            dp.namespace, istiod.network
        ));
    }
    let mut out = vec![if disagree.is_empty() {
        Check::pass(
            CONSISTENCY,
            ctx,
            &dp.id,
            format!("network {network}: injection path, values and namespace agree"),
        )
    } else {
        Check::fail(
            CONSISTENCY,
            ctx,
            &dp.id,
            format!("its sidecars are injected on network {network}, but {}", disagree.join("; ")),
            format!(
                "rerun the install playbook with this data plane's network (DATA_PLANE_NETWORKS, stdlib external::with_networks), which renders the path, the values and dp.label(\"namespace/{}\", #{{ \"{LABEL}\": \"{network}\" }}) together",
                dp.namespace
            ),
        )
    }];
    if foreign && !has_east_west_gateway(services) {
        out.push(Check::warn(
            EAST_WEST,
            ctx,
            &dp.id,
            format!(
                "on network {network}, istiod's is {}, and no gateway here listens on {CROSS_NETWORK_PORT}: services on other networks are out of reach of this cluster's pods, and theirs of it",
                istiod.network
            ),
            "install an east-west gateway on each network (Istio's multi-network install: a gateway labelled topology.istio.io/network exposing 15443 with AUTO_PASSTHROUGH), or put this cluster on istiod's network",
        ));
    }
    out
}

/// A LoadBalancer Service with Istio's cross-network port.
fn has_east_west_gateway(services: &[Value]) -> bool {
    services.iter().any(|s| {
        s.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
            && s.pointer("/spec/ports")
                .and_then(Value::as_array)
                .is_some_and(|ports| ports.iter().any(|p| p["port"].as_u64() == Some(CROSS_NETWORK_PORT)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::model::Verdict;
    use serde_json::json;

    fn dp(cluster_id: &str, network: &str) -> DataPlane {
        DataPlane {
            id: "dp3/external-istiod/external-istiod".into(),
            namespace: "external-istiod".into(),
            cluster_id: cluster_id.into(),
            network: network.into(),
            ..Default::default()
        }
    }

    fn istiod() -> Istiod {
        Istiod {
            cluster_id: "cluster1".into(),
            network: "network1".into(),
            ..Default::default()
        }
    }

    fn named(injection: &str, values: &str, label: &str) -> Named {
        Named {
            injection: injection.into(),
            values: values.into(),
            label: label.into(),
        }
    }

    #[test]
    fn the_same_network_everywhere_passes_without_a_gateway() {
        let out = checks(&dp("cluster2", "network1"), &named("network1", "", ""), &istiod(), &[]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].verdict, Verdict::Pass, "{out:?}");
    }

    #[test]
    fn another_network_needs_the_label_and_warns_without_an_east_west_gateway() {
        let ok = checks(
            &dp("cluster3", "network2"),
            &named("network2", "network2", "network2"),
            &istiod(),
            &[],
        );
        assert_eq!(ok[0].verdict, Verdict::Pass, "{ok:?}");
        assert_eq!(ok[1].check, EAST_WEST);
        assert_eq!(ok[1].verdict, Verdict::Warn);
        let gateway = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 15021}, {"port": 15443}]}});
        assert_eq!(
            checks(
                &dp("cluster3", "network2"),
                &named("network2", "network2", "network2"),
                &istiod(),
                &[gateway]
            )
            .len(),
            1
        );

        let unlabelled = checks(&dp("cluster3", "network2"), &named("network2", "network2", ""), &istiod(), &[]);
        assert_eq!(unlabelled[0].verdict, Verdict::Fail);
        assert!(
            unlabelled[0].message.contains("no topology.istio.io/network label"),
            "{unlabelled:?}"
        );
        assert!(
            unlabelled[0]
                .advice
                .as_deref()
                .unwrap()
                .contains("dp.label(\"namespace/external-istiod\"")
        );
    }

    #[test]
    fn each_place_that_disagrees_is_named() {
        let out = checks(
            &dp("cluster3", "network2"),
            &named("network2", "network3", "network1"),
            &istiod(),
            &[],
        );
        assert_eq!(out[0].verdict, Verdict::Fail);
        assert!(out[0].message.contains("global.network is network3"), "{}", out[0].message);
        assert!(out[0].message.contains("label is network1"), "{}", out[0].message);
        let config = checks(&dp("cluster1", "network2"), &named("network2", "", "network2"), &istiod(), &[]);
        assert!(config[0].message.contains("istiod's config cluster"), "{}", config[0].message);
    }

    #[test]
    fn no_network_in_the_injection_path_is_not_judged() {
        assert!(checks(&dp("cluster2", ""), &named("", "", ""), &istiod(), &[]).is_empty());
    }
}
