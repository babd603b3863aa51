//! The terminal view: one tree per cluster, then every check on a line of
//! its own with, when it did not pass, what to do. Colour only on a TTY.

use super::model::{Check, Cluster, Status, Verdict};

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn verdict(&self, v: Verdict) -> String {
        match v {
            Verdict::Pass => self.wrap("32", "✓"),
            Verdict::Warn => self.wrap("33", "!"),
            Verdict::Fail => self.wrap("31", "✗"),
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
}

/// The whole report; `colour` adds ANSI colours (the caller checks for a TTY).
pub fn render(status: &Status, colour: bool) -> String {
    let p = Paint { on: colour };
    let mut out = String::new();
    for cluster in &status.clusters {
        render_cluster(&mut out, cluster, status, &p);
    }
    let count = |v: Verdict| status.checks.iter().filter(|c| c.verdict == v).count();
    out.push_str(&format!(
        "\n{} {} passed, {} warning(s), {} failed\n",
        p.bold("Checks:"),
        count(Verdict::Pass),
        count(Verdict::Warn),
        count(Verdict::Fail)
    ));
    for check in &status.checks {
        out.push_str(&check_line(check, &p));
    }
    out
}

fn check_line(check: &Check, p: &Paint) -> String {
    let mut line = format!(
        "{} {:<28} {:<10} {}\n",
        p.verdict(check.verdict),
        check.check,
        check.cluster,
        check.message
    );
    if let Some(advice) = check.advice.as_ref().filter(|_| check.verdict != Verdict::Pass) {
        line.push_str(&format!("    {} {advice}\n", p.dim("→")));
    }
    line
}

fn render_cluster(out: &mut String, c: &Cluster, status: &Status, p: &Paint) {
    let head = if c.reachable {
        format!("{}  {}\n", p.bold(&c.context), p.dim(&c.server))
    } else {
        format!(
            "{}  {}  {} unreachable: {}\n",
            p.bold(&c.context),
            p.dim(&c.server),
            p.verdict(Verdict::Fail),
            c.error.as_deref().unwrap_or("")
        )
    };
    out.push_str(&head);
    let mut lines: Vec<(String, Vec<String>)> = Vec::new();
    for i in &c.istiods {
        let kind = if i.external { "external istiod" } else { "istiod" };
        let mut children = Vec::new();
        if let Some(g) = &i.gateway {
            children.push(format!("exposed by gateway {g}"));
        }
        for s in &i.remote_secrets {
            let target = s
                .context
                .as_deref()
                .map(|ctx| format!("context {ctx}"))
                .unwrap_or_else(|| format!("{} (no context)", s.server));
            let mut line = format!("remote secret {} → cluster {} = {target}", s.name, s.cluster_name);
            if let Some(a) = &s.account {
                line.push_str(&format!(", as {a}"));
            }
            if let Some(e) = &s.token_expires {
                line.push_str(&format!(", token expires {e}"));
            }
            let subject = super::graph::secret_subject(&c.context, &i.namespace, &s.name);
            let marks = marks(status, &subject, p);
            children.push(format!("{line}{marks}"));
        }
        let head = format!(
            "{kind} {}/{} (revision {})  {}  {}  cluster {}  mesh {}  network {}  pods {}{}",
            i.namespace,
            i.name,
            i.revision,
            or_dash(&i.version),
            or_dash(&i.state),
            i.cluster_id,
            or_dash(&i.mesh_id),
            or_dash(&i.network),
            i.pods.len(),
            marks(status, &i.id, p)
        );
        lines.push((head, children));
    }
    for d in &c.data_planes {
        let served = d
            .istiod
            .as_deref()
            .map(|i| format!(" → istiod {i}"))
            .unwrap_or_else(|| " → no istiod".into());
        let head = format!(
            "data plane {}/{} (revision {})  {}  {}  cluster {}  network {}{served}{}",
            d.namespace,
            d.name,
            d.revision,
            or_dash(&d.version),
            or_dash(&d.state),
            or_dash(&d.cluster_id),
            or_dash(&d.network),
            marks(status, &d.id, p)
        );
        let children = vec![
            format!("webhook {} → {}", d.webhook, d.injection_path),
            format!("remotePilotAddress {}", or_dash(&d.remote_pilot_address)),
        ];
        lines.push((head, children));
    }
    for g in &c.gateways {
        let ports: Vec<String> = g.ports.iter().map(u16::to_string).collect();
        lines.push((
            format!(
                "gateway {}/{}  {}  ports {}",
                g.namespace,
                g.name,
                or_dash(&g.address),
                ports.join(",")
            ),
            vec![],
        ));
    }
    for r in &c.revisions {
        let used = if r.in_use { "in use" } else { "not in use" };
        lines.push((
            format!(
                "IstioRevision {} ({})  {}  {}  {used}",
                r.name,
                or_dash(&r.namespace),
                or_dash(&r.version),
                or_dash(&r.state)
            ),
            vec![],
        ));
    }
    for w in &c.workloads {
        lines.push((format!("workloads of revision {}: {} pod(s)", w.revision, w.pods), vec![]));
    }
    let n = lines.len();
    for (k, (head, children)) in lines.into_iter().enumerate() {
        let last = k + 1 == n;
        out.push_str(&format!("{}{head}\n", if last { "└── " } else { "├── " }));
        let m = children.len();
        for (j, child) in children.into_iter().enumerate() {
            let stem = if last { "    " } else { "│   " };
            out.push_str(&format!("{stem}{}{child}\n", if j + 1 == m { "└── " } else { "├── " }));
        }
    }
    out.push('\n');
}

/// ` ✗ 2` after a node with failed checks.
fn marks(status: &Status, subject: &str, p: &Paint) -> String {
    let failed = status.failures_of(subject).count();
    if failed == 0 {
        String::new()
    } else {
        format!("  {} {failed} failed", p.verdict(Verdict::Fail))
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::model::{Cluster, DataPlane};

    fn status() -> Status {
        Status {
            schema_version: 1,
            healthy: false,
            clusters: vec![
                Cluster {
                    context: "dp".into(),
                    reachable: true,
                    data_planes: vec![DataPlane {
                        id: "dp/ns/r".into(),
                        namespace: "ns".into(),
                        name: "r".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                Cluster {
                    context: "gone".into(),
                    error: Some("connection refused".into()),
                    ..Default::default()
                },
            ],
            edges: vec![],
            checks: vec![Check::fail(
                "remote-istiod.ca-bundle",
                "dp",
                "dp/ns/r",
                "caBundle not set",
                "annotate it",
            )],
        }
    }

    #[test]
    fn plain_text_has_the_tree_the_verdicts_and_the_advice() {
        let text = render(&status(), false);
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.contains("└── data plane ns/r"), "{text}");
        assert!(text.contains("✗ 1 failed"), "{text}");
        assert!(
            text.contains("gone  ") && text.contains("unreachable: connection refused"),
            "{text}"
        );
        assert!(text.contains("✗ remote-istiod.ca-bundle"), "{text}");
        assert!(text.contains("    → annotate it"), "{text}");
        assert!(text.contains("0 passed, 0 warning(s), 1 failed"), "{text}");
    }

    #[test]
    fn colour_only_when_asked() {
        assert!(render(&status(), true).contains("\x1b[31m✗\x1b[0m"));
    }
}
