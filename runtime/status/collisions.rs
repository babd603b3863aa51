//! Several meshes on one control-plane cluster (istio/istio#35130, #37674,
//! #44368): istiods in different namespaces must not share a mesh ID, a
//! cluster ID or the injection webhook they patch, and two gateways must not
//! publish the same address and port. Revisions of one mesh share a
//! namespace and are not collisions.

use std::collections::BTreeMap;

use super::model::{Check, Cluster};

pub const CHECK: &str = "mesh.collision";

/// A field istiods of different meshes must not share, and how to read it.
type Field = (&'static str, fn(&super::model::Istiod) -> &str);

/// One check per cluster running two or more external istiods or gateways.
pub fn check(cluster: &Cluster) -> Option<Check> {
    let external: Vec<_> = cluster.istiods.iter().filter(|i| i.external).collect();
    if external.len() < 2 && cluster.gateways.len() < 2 {
        return None;
    }
    let mut found = Vec::new();
    let fields: [Field; 3] = [
        ("mesh ID", |i| i.mesh_id.as_str()),
        ("cluster ID", |i| i.cluster_id.as_str()),
        ("injection webhook", |i| i.injection_webhook.as_str()),
    ];
    for (what, field) in fields {
        let mut by_value: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for i in &external {
            if !field(i).is_empty() {
                let namespaces = by_value.entry(field(i)).or_default();
                if !namespaces.contains(&i.namespace.as_str()) {
                    namespaces.push(&i.namespace);
                }
            }
        }
        for (value, namespaces) in by_value.into_iter().filter(|(_, n)| n.len() > 1) {
            found.push(format!("{what} {value} in namespaces {}", namespaces.join(", ")));
        }
    }
    let mut ports: BTreeMap<(String, u16), Vec<String>> = BTreeMap::new();
    for g in cluster.gateways.iter().filter(|g| !g.address.is_empty()) {
        for p in &g.ports {
            ports
                .entry((g.address.clone(), *p))
                .or_default()
                .push(format!("{}/{}", g.namespace, g.name));
        }
    }
    for ((address, port), gateways) in ports.into_iter().filter(|(_, g)| g.len() > 1) {
        found.push(format!("{address}:{port} published by {}", gateways.join(", ")));
    }
    let subject = cluster.context.as_str();
    Some(if found.is_empty() {
        Check::pass(
            CHECK,
            subject,
            subject,
            format!(
                "{} istiods, {} gateways: no shared names or addresses",
                external.len(),
                cluster.gateways.len()
            ),
        )
    } else {
        Check::fail(
            CHECK,
            subject,
            subject,
            format!("meshes collide: {}", found.join("; ")),
            "give each mesh its own namespace/revision, meshID, cluster ID and gateway (playbooks/external-multi-mesh.rhai shows one way)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::model::{Gateway, Istiod, Verdict};

    fn istiod(ns: &str, mesh: &str, cluster: &str) -> Istiod {
        Istiod {
            namespace: ns.into(),
            mesh_id: mesh.into(),
            cluster_id: cluster.into(),
            injection_webhook: format!("istio-sidecar-injector-{ns}-{ns}"),
            external: true,
            ..Default::default()
        }
    }

    #[test]
    fn distinct_meshes_pass_and_shared_ids_fail() {
        let mut cp = Cluster {
            context: "cp".into(),
            istiods: vec![istiod("a", "mesh1", "c1"), istiod("b", "mesh2", "c2")],
            ..Default::default()
        };
        assert_eq!(check(&cp).unwrap().verdict, Verdict::Pass);
        cp.istiods[1].mesh_id = "mesh1".into();
        cp.gateways = vec![
            Gateway {
                namespace: "g1".into(),
                name: "gw".into(),
                address: "10.0.0.1".into(),
                ports: vec![15012],
            },
            Gateway {
                namespace: "g2".into(),
                name: "gw".into(),
                address: "10.0.0.1".into(),
                ports: vec![15012, 15017],
            },
        ];
        let c = check(&cp).unwrap();
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.message.contains("mesh ID mesh1 in namespaces a, b"), "{}", c.message);
        assert!(c.message.contains("10.0.0.1:15012 published by g1/gw, g2/gw"), "{}", c.message);
        assert!(!c.message.contains("15017"), "{}", c.message);
    }

    #[test]
    fn revisions_of_one_mesh_are_not_collisions() {
        let cp = Cluster {
            context: "cp".into(),
            istiods: vec![istiod("a", "mesh1", "c1"), istiod("a", "mesh1", "c1")],
            ..Default::default()
        };
        assert_eq!(check(&cp).unwrap().verdict, Verdict::Pass);
    }
}
