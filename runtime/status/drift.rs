//! Address drift: a LoadBalancer may get a new address (istio/istio#29359),
//! and then every address rendered from the old one — the data planes'
//! `remotePilotAddress`, istiod's `caAddress` and `discoveryAddress` —
//! silently points nowhere. The EndpointSlices are checked per data plane
//! (remote-istiod.address).

use super::graph::host;
use super::model::{Check, Cluster, Istiod};

pub const CHECK: &str = "drift.gateway-address";

/// One check per external istiod whose gateway has an address.
pub fn checks(istiod: &Istiod, cluster: &Cluster, clusters: &[Cluster]) -> Option<Check> {
    let id = istiod.gateway.as_ref()?;
    let gateway = cluster.gateways.iter().find(|g| &format!("{}/{}", g.namespace, g.name) == id)?;
    if gateway.address.is_empty() || !istiod.external {
        return None;
    }
    let address = gateway.address.as_str();
    let mut stale = Vec::new();
    for (what, value) in [("caAddress", &istiod.ca_address), ("discoveryAddress", &istiod.discovery_address)] {
        if !value.is_empty() && host(value) != address {
            stale.push(format!("istiod's {what} {value}"));
        }
    }
    for dp in clusters.iter().flat_map(|c| c.data_planes.iter()) {
        if dp.istiod.as_deref() == Some(istiod.id.as_str()) && host(&dp.remote_pilot_address) != address {
            stale.push(format!("{}'s remotePilotAddress {}", dp.id, dp.remote_pilot_address));
        }
    }
    Some(if stale.is_empty() {
        Check::pass(
            CHECK,
            &cluster.context,
            &istiod.id,
            format!("everything points at gateway {id} ({address})"),
        )
    } else {
        Check::fail(
            CHECK,
            &cluster.context,
            &istiod.id,
            format!(
                "gateway {id} is now at {address}, but {} still point(s) at the old address",
                stale.join(", ")
            ),
            format!("rerun the install playbook: it reads the gateway's address ({address}) and renders every one of these again"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::model::{DataPlane, Gateway};

    fn mesh(gateway_address: &str, remote_pilot: &str) -> Vec<Cluster> {
        let istiod = Istiod {
            id: "cp/ext/ext".into(),
            external: true,
            gateway: Some("istio-system/gw".into()),
            ca_address: "10.0.0.5:15012".into(),
            discovery_address: "10.0.0.5:15012".into(),
            ..Default::default()
        };
        let cp = Cluster {
            context: "cp".into(),
            istiods: vec![istiod],
            gateways: vec![Gateway {
                namespace: "istio-system".into(),
                name: "gw".into(),
                address: gateway_address.into(),
                ports: vec![15012],
            }],
            ..Default::default()
        };
        let dp = Cluster {
            context: "dp".into(),
            data_planes: vec![DataPlane {
                id: "dp/ext/ext".into(),
                remote_pilot_address: remote_pilot.into(),
                istiod: Some("cp/ext/ext".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        vec![cp, dp]
    }

    #[test]
    fn same_address_everywhere_passes() {
        let clusters = mesh("10.0.0.5", "10.0.0.5");
        let check = checks(&clusters[0].istiods[0], &clusters[0], &clusters).unwrap();
        assert_eq!(check.verdict, crate::status::model::Verdict::Pass, "{check:?}");
    }

    #[test]
    fn a_moved_gateway_names_every_stale_address() {
        let clusters = mesh("10.0.0.9", "10.0.0.5");
        let check = checks(&clusters[0].istiods[0], &clusters[0], &clusters).unwrap();
        assert_eq!(check.verdict, crate::status::model::Verdict::Fail);
        for stale in [
            "caAddress 10.0.0.5:15012",
            "discoveryAddress",
            "dp/ext/ext's remotePilotAddress 10.0.0.5",
        ] {
            assert!(check.message.contains(stale), "{stale}: {}", check.message);
        }
        assert!(check.advice.unwrap().contains("10.0.0.9"));
    }
}
