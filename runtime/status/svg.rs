//! `--output svg`: a self-contained picture drawn by mesh-run itself.
//! Layout: control-plane clusters (those running an istiod with remote
//! secrets) in the left column, the others in the right; each cluster a box
//! holding its istiods, data planes, gateways and workloads; remote-secret
//! edges (solid) and webhook edges (dashed) between the columns. Whatever
//! failed is red, with its one-line reason under it.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::model::{Cluster, EdgeKind, Status};

const BOX_W: f64 = 460.0;
const GAP_X: f64 = 220.0;
const MARGIN: f64 = 20.0;
const HEAD_H: f64 = 42.0;
const NODE_H: f64 = 40.0;
const LINE_H: f64 = 14.0;
const SMALL_H: f64 = 20.0;
const RED: &str = "#c62828";
const GREEN: &str = "#2e7d32";
/// Characters that fit a node's width at the font size used (~6.2 px each).
const NODE_CHARS: usize = 68;

/// XML text and attribute escaping.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Where a node was drawn: its left/right edge x and centre y.
#[derive(Clone, Copy)]
struct Anchor {
    left: f64,
    right: f64,
    y: f64,
}

struct Canvas {
    body: String,
    anchors: HashMap<String, Anchor>,
}

impl Canvas {
    fn text(&mut self, x: f64, y: f64, size: f64, colour: &str, weight: &str, s: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" fill="{colour}" font-weight="{weight}">{}</text>"#,
            escape(s)
        );
    }

    fn rect(&mut self, (x, y, w, h): (f64, f64, f64, f64), stroke: &str, fill: &str, dashed: bool) {
        let dash = if dashed { r#" stroke-dasharray="5,3""# } else { "" };
        let _ = writeln!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>"#
        );
    }

    /// A node: title, detail line, then its failed checks in red. Returns its height.
    fn node(&mut self, id: &str, (x, y): (f64, f64), (title, detail): (&str, &str), failures: &[String], fill: &str) -> f64 {
        let h = NODE_H + LINE_H * failures.len() as f64;
        let stroke = if failures.is_empty() { GREEN } else { RED };
        self.rect((x, y, BOX_W - 30.0, h), stroke, fill, false);
        self.text(x + 8.0, y + 16.0, 12.0, "#111", "bold", &clip(title, NODE_CHARS));
        self.text(x + 8.0, y + 31.0, 10.5, "#444", "normal", &clip(detail, NODE_CHARS + 8));
        for (k, f) in failures.iter().enumerate() {
            self.text(
                x + 8.0,
                y + NODE_H + 10.0 + LINE_H * k as f64,
                10.5,
                RED,
                "normal",
                &clip(f, NODE_CHARS + 8),
            );
        }
        self.anchors.insert(
            id.to_string(),
            Anchor {
                left: x,
                right: x + BOX_W - 30.0,
                y: y + 20.0,
            },
        );
        h
    }
}

/// Up to two failure lines of `subject`, `✗ check: message`.
fn failures(status: &Status, subject: &str) -> Vec<String> {
    let all: Vec<String> = status
        .failures_of(subject)
        .map(|f| format!("✗ {}: {}", f.check, f.message))
        .collect();
    if all.len() > 2 {
        let more = all.len() - 1;
        vec![all[0].clone(), format!("✗ … and {more} more failed check(s)")]
    } else {
        all
    }
}

fn is_control_plane(c: &Cluster) -> bool {
    c.istiods.iter().any(|i| !i.remote_secrets.is_empty())
}

/// Draws one cluster box at (x, y); returns its height.
fn draw_cluster(canvas: &mut Canvas, status: &Status, c: &Cluster, x: f64, y: f64) -> f64 {
    let mut body = Canvas {
        body: String::new(),
        anchors: HashMap::new(),
    };
    let mut cy = y + HEAD_H;
    let inner = x + 15.0;
    for i in &c.istiods {
        let title = format!(
            "{} {}/{}",
            if i.external { "external istiod" } else { "istiod" },
            i.namespace,
            i.revision
        );
        let mut detail = format!("{} {} · cluster {}", i.version, i.state, i.cluster_id);
        if !i.mesh_id.is_empty() {
            detail.push_str(&format!(" · mesh {}", i.mesh_id));
        }
        detail.push_str(&format!(" · {} pod(s)", i.pods.len()));
        if let Some(g) = &i.gateway {
            detail.push_str(&format!(" · via {g}"));
        }
        cy += body.node(&i.id, (inner, cy), (&title, &detail), &failures(status, &i.id), "#e3f2fd") + 8.0;
    }
    for d in &c.data_planes {
        let title = format!("data plane {}/{}", d.namespace, d.revision);
        let detail = format!(
            "{} {} · cluster {} · {} · pilot {}",
            d.version, d.state, d.cluster_id, d.network, d.remote_pilot_address
        );
        cy += body.node(&d.id, (inner, cy), (&title, &detail), &failures(status, &d.id), "#f1f8e9") + 8.0;
    }
    for g in &c.gateways {
        let ports: Vec<String> = g.ports.iter().map(u16::to_string).collect();
        body.text(
            inner + 4.0,
            cy + 13.0,
            10.5,
            "#333",
            "normal",
            &clip(
                &format!("⇄ gateway {}/{} {} :{}", g.namespace, g.name, g.address, ports.join(",")),
                NODE_CHARS + 8,
            ),
        );
        cy += SMALL_H;
    }
    for w in &c.workloads {
        body.text(
            inner + 4.0,
            cy + 13.0,
            10.5,
            "#333",
            "normal",
            &format!("● {} workload pod(s) of revision {}", w.pods, w.revision),
        );
        cy += SMALL_H;
    }
    if !c.reachable {
        body.text(
            inner,
            cy + 14.0,
            11.0,
            RED,
            "bold",
            &clip(&format!("✗ unreachable: {}", c.error.as_deref().unwrap_or("")), NODE_CHARS),
        );
        cy += SMALL_H + 4.0;
    }
    if c.istiods.is_empty() && c.data_planes.is_empty() && c.reachable {
        body.text(inner, cy + 14.0, 10.5, "#777", "italic", "no Istio resources");
        cy += SMALL_H;
    }
    let h = (cy - y + 10.0).max(HEAD_H + 30.0);
    let stroke = if c.reachable { "#555" } else { RED };
    canvas.rect((x, y, BOX_W, h), stroke, "#fafafa", !c.reachable);
    canvas.text(x + 10.0, y + 18.0, 14.0, "#000", "bold", &c.context);
    canvas.text(x + 10.0, y + 33.0, 10.0, "#666", "normal", &clip(&c.server, NODE_CHARS + 10));
    canvas.body.push_str(&body.body);
    canvas.anchors.extend(body.anchors);
    // The box itself: edges to a cluster without data planes end here.
    canvas.anchors.insert(
        c.context.clone(),
        Anchor {
            left: x,
            right: x + BOX_W,
            y: y + 20.0,
        },
    );
    h
}

pub fn render(status: &Status) -> String {
    let mut canvas = Canvas {
        body: String::new(),
        anchors: HashMap::new(),
    };
    let (left, right): (Vec<&Cluster>, Vec<&Cluster>) = status.clusters.iter().partition(|c| is_control_plane(c));
    let (left, right) = if left.is_empty() { (right, Vec::new()) } else { (left, right) };
    let right_x = MARGIN + BOX_W + GAP_X;
    let mut bottom: f64 = 0.0;
    for (column, x) in [(&left, MARGIN), (&right, right_x)] {
        let mut y = MARGIN + 24.0;
        for c in column.iter() {
            y += draw_cluster(&mut canvas, status, c, x, y) + 18.0;
        }
        bottom = bottom.max(y);
    }
    // Targets no context reaches: dashed boxes under the right column.
    let mut y = bottom;
    for e in &status.edges {
        if !canvas.anchors.contains_key(&e.to) {
            canvas.rect((right_x, y, BOX_W, 34.0), "#888", "#fff", true);
            canvas.text(
                right_x + 10.0,
                y + 21.0,
                11.0,
                "#555",
                "normal",
                &clip(&format!("{} (no kubeconfig context)", e.to), NODE_CHARS),
            );
            canvas.anchors.insert(
                e.to.clone(),
                Anchor {
                    left: right_x,
                    right: right_x + BOX_W,
                    y: y + 17.0,
                },
            );
            y += 50.0;
        }
    }
    bottom = bottom.max(y);

    let mut edges = String::new();
    for e in &status.edges {
        let (Some(from), Some(to)) = (canvas.anchors.get(&e.from), canvas.anchors.get(&e.to)) else {
            continue;
        };
        // Secrets leave the istiod a little above its centre, webhooks return below it.
        let (dy, dash, name) = match e.kind {
            EdgeKind::RemoteSecret => (-6.0, "", format!("secret {}", e.label)),
            EdgeKind::Webhook => (6.0, r#" stroke-dasharray="6,4""#, "webhook".to_string()),
        };
        let forward = from.right <= to.left;
        let (x1, x2) = if forward {
            (from.right, to.left)
        } else if from.left >= to.right {
            (from.left, to.right)
        } else {
            (from.right, to.right)
        };
        let (y1, y2) = (from.y + dy, to.y + dy);
        let bend = if (x2 - x1).abs() < 1.0 { 60.0 } else { (x2 - x1) / 2.0 };
        let colour = if e.ok { "#1565c0" } else { RED };
        let marker = if e.ok { "arrow" } else { "arrow-red" };
        let _ = writeln!(
            edges,
            r#"<path d="M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}" fill="none" stroke="{colour}" stroke-width="1.6"{dash} marker-end="url(#{marker})"><title>{}</title></path>"#,
            x1 + bend,
            x2 - bend,
            escape(&format!("{} → {}", e.from, e.to))
        );
        // Labels sit beside the end in the right column's gap: secrets above
        // their arrowhead, webhooks below their start, so neither crosses a line.
        let (lx, ly) = match e.kind {
            EdgeKind::RemoteSecret => (x2.max(x1) - 8.0, if forward { y2 } else { y1 } - 8.0),
            EdgeKind::Webhook => (x1.max(x2) - 8.0, if forward { y2 } else { y1 } + 16.0),
        };
        let mut label = name;
        if !e.ok
            && let Some(f) = status.failures_of(&e.subject).next()
        {
            label = format!("{label} ✗ {}", f.check);
        }
        let _ = writeln!(
            edges,
            r#"<text x="{lx:.1}" y="{ly:.1}" font-size="10" fill="{colour}" text-anchor="end">{}</text>"#,
            escape(&clip(&label, 44))
        );
    }

    let width = if right.is_empty() {
        MARGIN * 2.0 + BOX_W
    } else {
        right_x + BOX_W + MARGIN
    };
    let height = bottom + 24.0;
    let failed = status.failed().count();
    let title = if failed == 0 {
        "mesh-run status: all checks pass".to_string()
    } else {
        format!("mesh-run status: {failed} check(s) failed")
    };
    let title_colour = if failed == 0 { GREEN } else { RED };
    let mut svg = format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
<defs>
<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#1565c0"/></marker>
<marker id="arrow-red" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{RED}"/></marker>
</defs>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{MARGIN}" y="{:.1}" font-size="14" font-weight="bold" fill="{title_colour}">{}</text>
"##,
        MARGIN + 8.0,
        escape(&title)
    );
    svg.push_str(&canvas.body);
    svg.push_str(&edges);
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests;
