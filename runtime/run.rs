//! One run of a playbook: read, compile, check inputs, evaluate, report.
//! Synchronous (Rhai is): callers run it on a blocking thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::applyset::ApplySets;
use crate::bridge::Bridge;
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::kube::Clusters;
use crate::modules::{Resolver, Sources};
use crate::report::{Event, Format, Reporter};
use crate::session::Session;

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub playbook: PathBuf,
    pub sets: HashMap<String, String>,
    pub kubeconfig: PathBuf,
    pub dry_run: bool,
    /// After a successful run, delete the set's members it did not apply:
    /// `--prune`, `--no-prune`, or neither (prune when the set is this file's).
    pub prune: Option<bool>,
    /// Names the set beside the playbook (two installs of one playbook on one cluster).
    pub instance: Option<String>,
    /// Dry run: show unchanged steps too.
    pub verbose: bool,
    pub output: Format,
    pub timeout: Option<Duration>,
}

pub struct RunOutcome {
    pub result: Result<(), Diagnostic>,
    /// The playbook, the modules it imported and the local files it applied.
    pub files: Vec<PathBuf>,
}

pub fn run(opts: &RunOptions, bridge: Bridge) -> RunOutcome {
    let mut files = vec![opts.playbook.clone()];
    let reporter = Reporter::new(opts.output).changes_only(opts.dry_run && !opts.verbose);
    let stem = opts
        .playbook
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let set_name = crate::applyset::id::parent_name(&stem, opts.instance.as_deref());
    let sources = Sources::default();
    let name = opts.playbook.display().to_string();
    let base_dir = opts
        .playbook
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let session = Arc::new(Session {
        bridge: bridge.clone(),
        clusters: Clusters::new(opts.kubeconfig.clone()),
        reporter,
        dry_run: opts.dry_run,
        sets: opts.sets.clone(),
        base_dir: base_dir.clone(),
        files_read: Mutex::new(Vec::new()),
        applysets: ApplySets::new(set_name, playbook_path(&opts.playbook), opts.prune, opts.dry_run),
    });
    let resolver = Resolver::new(&base_dir, sources.clone());
    let imported = resolver.files.clone();
    let engine = crate::engine::build(&session, resolver);

    let result = (|| {
        let text = std::fs::read_to_string(&opts.playbook)
            .map_err(|e| Diagnostic::plain(Error::usage(format!("cannot read playbook {name}: {e}"))))?;
        sources.insert(&name, &text);
        let missing: Vec<String> = crate::inputs::required(&text)
            .into_iter()
            .filter(|n| session.input(n).is_none())
            .collect();
        if let Some(first) = missing.first() {
            return Err(Diagnostic::plain(Error::MissingInput {
                names: missing.join(", "),
                first: first.clone(),
            }));
        }
        let mut ast = engine
            .compile(&text)
            .map_err(|e| Diagnostic::from_rhai(&rhai::EvalAltResult::ErrorParsing(*e.0, e.1), &name, None))?;
        ast.set_source(name.as_str());
        engine.run_ast(&ast).map_err(|e| Diagnostic::from_rhai(&e, &name, Some(&bridge)))?;
        // Only a run that got to its end prunes: a failed or interrupted one
        // may not have applied what it still wants.
        bridge
            .run(crate::applyset::finish(&session))
            .map_err(|e| Diagnostic::from_rhai(&e, &name, Some(&bridge)))
    })();

    files.extend(imported.lock().expect("files lock").iter().cloned());
    files.extend(session.files_read.lock().expect("files lock").iter().cloned());
    let (steps, changed, elapsed) = session.reporter.totals();
    if let Err(d) = &result {
        let at = d.location();
        session.reporter.emit(Event::Error {
            kind: d.error.kind().to_string(),
            message: d.render(&sources),
            file: at.map(|f| f.source.clone()),
            line: at.map(|f| f.line),
            column: at.map(|f| f.column),
        });
    }
    session.reporter.emit(Event::Summary {
        ok: result.is_ok(),
        steps,
        changed,
        duration_ms: elapsed.as_millis(),
    });
    RunOutcome { result, files }
}

/// The playbook's absolute path (symlinks resolved), as the ApplySet records it.
fn playbook_path(playbook: &Path) -> String {
    std::fs::canonicalize(playbook)
        .or_else(|_| std::path::absolute(playbook))
        .unwrap_or_else(|_| playbook.to_path_buf())
        .display()
        .to_string()
}

/// `mesh-run check`: compile a playbook and every module it imports, with
/// no cluster access (imports are followed by reading, not running).
pub fn check(playbook: &Path) -> Result<usize, String> {
    let engine = crate::engine::bare();
    let sources = Sources::default();
    let base_dir = playbook
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut pending = vec![(
        playbook.display().to_string(),
        std::fs::read_to_string(playbook).map_err(|e| format!("{}: {e}", playbook.display()))?,
    )];
    let mut seen = Vec::new();
    while let Some((name, text)) = pending.pop() {
        if seen.contains(&name) {
            continue;
        }
        sources.insert(&name, &text);
        engine
            .compile(&text)
            .map_err(|e| Diagnostic::from_rhai(&rhai::EvalAltResult::ErrorParsing(*e.0, e.1), &name, None).render(&sources))?;
        for import in imports(&text) {
            let module =
                crate::modules::locate_for_check(&base_dir, Some(&name), &import).map_err(|e| format!("error[script]: {name}: {e}"))?;
            pending.push(module);
        }
        seen.push(name);
    }
    Ok(seen.len())
}

/// Static import paths (`import "mesh/istio" as istio;`) of a script.
/// A textual scan: Rhai's AST is not public API.
fn imports(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split("//").next()?.trim().strip_prefix("import"))
        .filter_map(|rest| {
            let rest = rest.trim_start().strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}
