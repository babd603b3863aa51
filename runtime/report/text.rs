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
            dry_run,
            detail,
        } => {
            let mark = match outcome.split(' ').next().unwrap_or_default() {
                "unchanged" | "ok" | "absent" => "✓",
                "skipped" => "·",
                _ => "✔",
            };
            let dry = if *dry_run { " (dry run)" } else { "" };
            let mut line = format!(
                "{mark} {cluster:<16} {action:<14} {object:<48} {outcome}{dry} ({})",
                ms(*duration_ms)
            );
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
        Event::Plan {
            cluster,
            create,
            change,
            delete,
            prune,
            unchanged,
        } => {
            let mut line = format!(
                "plan for {cluster}: {} to create, {} to change, {}{} to prune, {unchanged} unchanged",
                create.len(),
                change.len(),
                if delete.is_empty() {
                    String::new()
                } else {
                    format!("{} to delete, ", delete.len())
                },
                prune.len()
            );
            for (mark, list) in [("+", create), ("~", change), ("-", delete), ("-", prune)] {
                for object in list {
                    line.push_str(&format!("\n  {mark} {object}"));
                }
            }
            line
        }
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
            dry_run: false,
            detail: None,
        });
        assert!(
            line.contains("control-plane") && line.contains("Istio default") && line.contains("created (1.5s)"),
            "{line}"
        );
    }

    #[test]
    fn dry_run_is_said_after_the_outcome_and_plans_list_objects() {
        let step = Event::Step {
            cluster: "dp".into(),
            action: "label".into(),
            object: "Namespace sample".into(),
            outcome: "configured".into(),
            duration_ms: 3,
            dry_run: true,
            detail: None,
        };
        assert!(render(&step).contains("configured (dry run) (3ms)"), "{}", render(&step));
        let plan = render(&Event::Plan {
            cluster: "cp".into(),
            create: vec!["Namespace a".into()],
            change: vec![],
            delete: vec![],
            prune: vec!["Secret a/b".into()],
            unchanged: 2,
        });
        assert_eq!(
            plan,
            "plan for cp: 1 to create, 0 to change, 1 to prune, 2 unchanged\n  + Namespace a\n  - Secret a/b"
        );
    }
}
