//! The command line against the playbook: every `--set` key is read by some
//! `input()`, and every context the run would bind exists in the kubeconfig
//! (`cluster("literal")`, `cluster(input("X"))`, and the comma-separated
//! values of inputs named `CTX_*`, the seed procedure's naming).

use rhai::{ASTNode, Expr, FnCallExpr, Position, Stmt};

use super::{Finding, Kind, Script, Settings, suggest};

pub fn check(scripts: &[Script], settings: &Settings, out: &mut Vec<Finding>) {
    let Some(playbook) = scripts.first() else { return };
    let mut names: Vec<String> = Vec::new();
    let mut dynamic = false;
    let mut contexts: Vec<(String, String, Position, String)> = Vec::new();
    for script in scripts {
        calls_named(script, &["input", "cluster"], |call, pos| {
            match (call.name.as_str(), call.args.first()) {
                ("input", Some(Expr::StringConstant(name, _))) => {
                    if !names.contains(&name.to_string()) {
                        names.push(name.to_string());
                    }
                    if name.starts_with("CTX_")
                        && let Some(value) = value_of(call, settings)
                    {
                        for context in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                            contexts.push((script.name.clone(), context.to_string(), pos, format!("input {name}")));
                        }
                    }
                }
                ("input", _) => dynamic = true,
                ("cluster", Some(Expr::StringConstant(context, _))) => {
                    contexts.push((script.name.clone(), context.to_string(), pos, "cluster(...)".into()))
                }
                ("cluster", Some(Expr::FnCall(inner, _))) if inner.name == "input" && inner.namespace.is_empty() => {
                    if let (Some(value), Some(Expr::StringConstant(name, _))) = (value_of(inner, settings), inner.args.first()) {
                        contexts.push((script.name.clone(), value, pos, format!("input {name}")));
                    }
                }
                _ => {}
            }
        });
    }
    if !dynamic {
        let mut keys: Vec<&String> = settings.sets.keys().filter(|k| !names.contains(k)).collect();
        keys.sort();
        for key in keys {
            let hint = suggest::hint(key, names.iter().map(String::as_str));
            out.push(Finding {
                source: playbook.name.clone(),
                at: None,
                message: format!(
                    "--set {key}: no input(\"{key}\") in {} or its modules reads it{hint} (its inputs: {}; `mesh-run inputs {}` explains them)",
                    playbook.name,
                    if names.is_empty() { "none".to_string() } else { names.join(", ") },
                    playbook.name
                ),
                kind: Kind::Usage,
            });
        }
    }
    let Some(known) = &settings.contexts else { return };
    let mut seen = Vec::new();
    for (source, context, pos, from) in contexts {
        if known.contains(&context) || seen.contains(&context) {
            continue;
        }
        let hint = suggest::hint(&context, known.iter().map(String::as_str));
        let available = if known.is_empty() { "none".to_string() } else { known.join(", ") };
        let mut finding = Finding::at(
            &source,
            pos,
            format!("no context \"{context}\" in the kubeconfig ({from}){hint} (contexts: {available})"),
        );
        finding.kind = Kind::Context {
            context: context.clone(),
            available: format!("{available}{hint}"),
        };
        out.push(finding);
        seen.push(context);
    }
}

/// The value `input(NAME)` or `input(NAME, "default")` has in this run, as the session reads it.
fn value_of(call: &FnCallExpr, settings: &Settings) -> Option<String> {
    let Some(Expr::StringConstant(name, _)) = call.args.first() else {
        return None;
    };
    if let Some(v) = settings.sets.get(name.as_str()) {
        return Some(v.clone());
    }
    if let Some(v) = std::env::var(name.as_str()).ok().filter(|v| !v.is_empty()) {
        return Some(v);
    }
    match call.args.get(1) {
        Some(Expr::StringConstant(default, _)) => Some(default.to_string()),
        _ => None,
    }
}

/// Calls (not methods, not module functions) to one of `names`, with their positions.
pub fn calls_named(script: &Script, names: &[&str], mut f: impl FnMut(&FnCallExpr, Position)) {
    script.ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos))) = path.last()
            && call.namespace.is_empty()
            && names.contains(&call.name.as_str())
        {
            f(call, *pos);
        }
        true
    });
}
