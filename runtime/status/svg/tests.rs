//! Unit tests of svg.rs.
use super::*;
use crate::status::model::{Check, DataPlane, Edge, Istiod, RemoteSecret};

#[test]
fn escapes_markup() {
    assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    assert_eq!(clip("abcdef", 4), "abc…");
}

#[test]
fn draws_every_cluster_node_and_edge() {
    let status = Status {
        schema_version: 1,
        healthy: false,
        clusters: vec![
            Cluster {
                context: "cp".into(),
                reachable: true,
                istiods: vec![Istiod {
                    id: "cp/ext/ext".into(),
                    namespace: "ext".into(),
                    revision: "ext".into(),
                    remote_secrets: vec![RemoteSecret {
                        name: "s1".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
            Cluster {
                context: "dp<1>".into(),
                reachable: true,
                data_planes: vec![DataPlane {
                    id: "dp<1>/ext/ext".into(),
                    namespace: "ext".into(),
                    revision: "ext".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
        edges: vec![
            Edge {
                kind: EdgeKind::RemoteSecret,
                from: "cp/ext/ext".into(),
                to: "dp<1>/ext/ext".into(),
                label: "s1".into(),
                subject: "x".into(),
                ok: true,
            },
            Edge {
                kind: EdgeKind::Webhook,
                from: "dp<1>/ext/ext".into(),
                to: "cp/ext/ext".into(),
                label: "w".into(),
                subject: "dp<1>/ext/ext".into(),
                ok: false,
            },
        ],
        checks: vec![Check::fail("remote-istiod.probe", "dp<1>", "dp<1>/ext/ext", "probe failed", "fix")],
    };
    let svg = render(&status);
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains(">dp&lt;1&gt;</text>"), "{svg}");
    assert!(svg.contains("external istiod") || svg.contains("istiod ext/ext"), "{svg}");
    assert!(svg.contains("data plane ext/ext"), "{svg}");
    assert_eq!(svg.matches("marker-end=").count(), 2, "{svg}");
    assert!(svg.contains("✗ remote-istiod.probe: probe failed"), "{svg}");
    assert!(svg.contains("marker-end=\"url(#arrow-red)\""), "{svg}");
}
