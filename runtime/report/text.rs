//! Text rendering of events: aligned, one line each.

use super::Event;

pub fn render(event: &Event) -> String {
    match event {
        Event::Step {
            cluster,
            action,
            object,
            outcome,
            duration_ms,
            detail,
        } => {
            let mark = match outcome.split(' ').next().unwrap_or_default() {
                "unchanged" | "ok" | "absent" => "✓",
                "skipped" => "·",
                _ => "✔",
            };
            let mut line = format!("{mark} {cluster:<16} {action:<14} {object:<48} {outcome} ({})", ms(*duration_ms));
            if let Some(d) = detail {
                for l in d.lines() {
                    line.push_str("\n    ");
                    line.push_str(l);
                }
            }
            line
        }
        Event::Progress {
            cluster,
            object,
            elapsed_ms,
            state,
        } => {
            format!("… {cluster:<16} waiting {:<6} {object}: {state}", ms(*elapsed_ms))
        }
        Event::Warning { cluster, object, message } => format!("warning: {cluster}: {object}: {message}"),
        Event::Log { message } => message.clone(),
        Event::Summary {
            ok,
            steps,
            changed,
            duration_ms,
        } => {
            let verdict = if *ok { "done" } else { "failed" };
            format!("{verdict}: {steps} steps, {changed} changed, in {}", ms(*duration_ms))
        }
        Event::Error { message, .. } => message.clone(),
        Event::Rerun { trigger } => format!("⟳ {trigger} changed: running again"),
    }
}

fn ms(d: u128) -> String {
    if d < 1000 {
        format!("{d}ms")
    } else {
        format!("{:.1}s", d as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_line_has_cluster_object_outcome_duration() {
        let line = render(&Event::Step {
            cluster: "control-plane".into(),
            action: "apply".into(),
            object: "Istio default".into(),
            outcome: "created".into(),
            duration_ms: 1500,
            detail: None,
        });
        assert!(
            line.contains("control-plane") && line.contains("Istio default") && line.contains("created (1.5s)"),
            "{line}"
        );
    }
}
