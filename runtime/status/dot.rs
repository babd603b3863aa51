//! `--output dot`: the graph for Graphviz — one box (subgraph cluster) per
//! context, istiods, data planes and gateways inside, remote-secret and
//! webhook edges between them; failed checks red with their reason.

use super::model::{EdgeKind, Status};

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
}

pub fn render(status: &Status) -> String {
    let mut out = String::from(
        "digraph mesh {\n  rankdir=LR;\n  compound=true;\n  node [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n",
    );
    let mut known: Vec<String> = Vec::new();
    for (k, c) in status.clusters.iter().enumerate() {
        let head = if c.reachable {
            format!("{}\n{}", c.context, c.server)
        } else {
            format!("{}\nunreachable: {}", c.context, c.error.as_deref().unwrap_or(""))
        };
        let colour = if c.reachable { "gray40" } else { "red" };
        out.push_str(&format!(
            "  subgraph cluster_{k} {{\n    label={};\n    color={colour};\n",
            quote(&head)
        ));
        // An anchor, so edges can end at a cluster with no data plane.
        out.push_str(&format!("    {} [shape=plaintext, label=\"(cluster)\"];\n", quote(&c.context)));
        known.push(c.context.clone());
        let node = |id: &str, label: String| {
            let failures: Vec<String> = status.failures_of(id).map(|f| format!("✗ {}: {}", f.check, f.message)).collect();
            if failures.is_empty() {
                format!("    {} [label={}];\n", quote(id), quote(&label))
            } else {
                let label = format!("{label}\n{}", failures.join("\n"));
                format!("    {} [label={}, color=red, fontcolor=red];\n", quote(id), quote(&label))
            }
        };
        for i in &c.istiods {
            out.push_str(&node(
                &i.id,
                format!(
                    "istiod {}/{}\n{} {}  cluster {}",
                    i.namespace, i.revision, i.version, i.state, i.cluster_id
                ),
            ));
            known.push(i.id.clone());
        }
        for d in &c.data_planes {
            out.push_str(&node(
                &d.id,
                format!(
                    "data plane {}/{}\n{} {}  cluster {}",
                    d.namespace, d.revision, d.version, d.state, d.cluster_id
                ),
            ));
            known.push(d.id.clone());
        }
        for g in &c.gateways {
            let id = format!("{}/gateway/{}/{}", c.context, g.namespace, g.name);
            out.push_str(&format!(
                "    {} [shape=cds, label={}];\n",
                quote(&id),
                quote(&format!("gateway {}/{}\n{}", g.namespace, g.name, g.address))
            ));
        }
        out.push_str("  }\n");
    }
    for e in &status.edges {
        if !known.contains(&e.to) {
            out.push_str(&format!(
                "  {} [style=dashed, label={}];\n",
                quote(&e.to),
                quote(&format!("{}\n(no context)", e.to))
            ));
            known.push(e.to.clone());
        }
        let style = match e.kind {
            EdgeKind::RemoteSecret => "solid",
            EdgeKind::Webhook => "dashed",
        };
        let mut label = match e.kind {
            EdgeKind::RemoteSecret => format!("secret {}", e.label),
            EdgeKind::Webhook => "webhook".to_string(),
        };
        let colour = if e.ok {
            "black"
        } else {
            if let Some(f) = status.failures_of(&e.subject).next() {
                label.push_str(&format!("\n✗ {}", f.message));
            }
            "red"
        };
        out.push_str(&format!(
            "  {} -> {} [label={}, style={style}, color={colour}, fontcolor={colour}];\n",
            quote(&e.from),
            quote(&e.to),
            quote(&label)
        ));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::model::{Check, Cluster, Edge, Istiod};

    #[test]
    fn boxes_nodes_and_red_edges() {
        let status = Status {
            schema_version: 1,
            healthy: false,
            clusters: vec![Cluster {
                context: "cp".into(),
                reachable: true,
                istiods: vec![Istiod {
                    id: "cp/ns/r".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            edges: vec![Edge {
                kind: EdgeKind::RemoteSecret,
                from: "cp/ns/r".into(),
                to: "https://10.0.0.9:6443".into(),
                label: "s\"x".into(),
                subject: "cp/ns/secret/s".into(),
                ok: false,
            }],
            checks: vec![Check::fail("secret.credentials", "cp", "cp/ns/secret/s", "401", "recreate")],
        };
        let dot = render(&status);
        assert!(dot.starts_with("digraph mesh {") && dot.trim_end().ends_with('}'), "{dot}");
        assert!(dot.contains("subgraph cluster_0"), "{dot}");
        assert!(dot.contains("\"cp/ns/r\" -> \"https://10.0.0.9:6443\""), "{dot}");
        assert!(dot.contains("secret s\\\"x\\n✗ 401"), "{dot}");
        assert!(dot.contains("color=red"), "{dot}");
        assert!(dot.contains("(no context)"), "{dot}");
    }
}
