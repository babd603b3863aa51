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
    /// `--stdlib DIR` / `$MESH_RUN_STDLIB`; None: the built-in stdlib only.
    pub stdlib: Option<PathBuf>,
    /// `--request-timeout`: the deadline of every API request (None: none).
    pub request_timeout: Option<Duration>,
}

pub struct RunOutcome {
    pub result: Result<(), Diagnostic>,
    /// The playbook, the modules it imported and the local files it applied.
    pub files: Vec<PathBuf>,
}

pub fn run(opts: &RunOptions, bridge: Bridge) -> RunOutcome {
    let mut files = vec![opts.playbook.clone()];
    let reporter = Arc::new(Reporter::new(opts.output).changes_only(opts.dry_run && !opts.verbose));
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
        clusters: Clusters::new(opts.kubeconfig.clone(), opts.request_timeout),
        reporter: reporter.clone(),
        dry_run: opts.dry_run,
        sets: opts.sets.clone(),
        base_dir: base_dir.clone(),
        stdlib_dir: opts.stdlib.clone(),
        files_read: Mutex::new(Vec::new()),
        applysets: ApplySets::new(set_name, playbook_path(&opts.playbook), opts.prune, opts.dry_run)
            .locked(bridge.clone(), reporter.clone()),
    });
    let resolver = Resolver::new(&base_dir, opts.stdlib.as_deref(), sources.clone());
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
        // Every mistake the playbook shows without running, before the first request.
        let settings = crate::check::Settings {
            sets: opts.sets.clone(),
            contexts: session.clusters.context_names().ok(),
            stdlib_dir: opts.stdlib.clone(),
        };
        let check_engine = crate::engine::for_check(bridge.clone());
        if let Err(mut found) = crate::check::check(&check_engine, &name, &text, &base_dir, &sources, &settings) {
            let first = found.remove(0);
            if found.is_empty() {
                return Err(first);
            }
            return Err(Diagnostic {
                error: std::sync::Arc::new(Error::Noted {
                    source: first.error,
                    note: format!("and {} more: `mesh-run check {name}` lists them", found.len()),
                }),
                frames: first.frames,
            });
        }
        let mut ast = engine
            .compile(&text)
            .map_err(|e| crate::check::syntax::diagnose(*e.0, e.1, &name, &text))?;
        ast.set_source(name.as_str());
        engine.run_ast(&ast).map_err(|e| Diagnostic::from_rhai(&e, &name, Some(&bridge)))?;
        // Only a run that got to its end prunes: a failed or interrupted one
        // may not have applied what it still wants.
        bridge
            .run(crate::applyset::finish(&session))
            .map_err(|e| Diagnostic::from_rhai(&e, &name, Some(&bridge)))
    })();

    // However the run ended (failed, interrupted, stopped for a rerun): its
    // sets are free for the next run at once, not 30 s later.
    let within = crate::applyset::lock::RELEASE_WITHIN;
    if bridge.finally(within, session.applysets.release()).is_none() {
        session.warn(
            "-",
            &format!("ApplySet {}", session.applysets.name),
            format!(
                "its Leases were not released within {}s (a server did not answer); they free the set {} s after their last renewal",
                within.as_secs(),
                crate::applyset::lease::DURATION_SECS
            ),
        );
    }

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

/// A playbook's name and text, and the engine that reads it without running
/// it (with the runtime its bridge needs: keep it alive while the engine is).
fn read_for_check(playbook: &Path) -> Result<(String, String, tokio::runtime::Runtime, rhai::Engine), String> {
    let name = playbook.display().to_string();
    let text = std::fs::read_to_string(playbook).map_err(|e| format!("error[usage]: cannot read playbook {name}: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| format!("error: cannot start the async runtime: {e}"))?;
    let engine = crate::engine::for_check(Bridge::new(runtime.handle().clone()));
    Ok((name, text, runtime, engine))
}

/// `mesh-run check`: compile a playbook and every module it imports, and
/// look for the mistakes `crate::check` finds, with no cluster access
/// (imports are followed by reading, not running). `sets` are checked
/// against the playbook's inputs; contexts against `kubeconfig` if it exists.
pub fn check(playbook: &Path, sets: &HashMap<String, String>, kubeconfig: &Path, stdlib_dir: Option<&Path>) -> Result<usize, String> {
    let (name, text, _runtime, engine) = read_for_check(playbook)?;
    let sources = Sources::default();
    let settings = crate::check::Settings {
        sets: sets.clone(),
        contexts: Clusters::new(kubeconfig.to_path_buf(), None).context_names().ok(),
        stdlib_dir: stdlib_dir.map(Path::to_path_buf),
    };
    crate::check::check(&engine, &name, &text, &base_dir_of(playbook), &sources, &settings)
        .map_err(|ds| ds.iter().map(|d| d.render(&sources)).collect::<Vec<_>>().join("\n\n"))
}

/// `mesh-run inputs`: every input of a playbook and its modules, with its
/// default and the comment above it, as text for a terminal.
pub fn inputs(playbook: &Path) -> Result<String, String> {
    let (name, text, _runtime, engine) = read_for_check(playbook)?;
    let sources = Sources::default();
    let scripts = crate::check::load(&engine, &name, &text, &base_dir_of(playbook), None, &sources).map_err(|d| d.render(&sources))?;
    let mut out = format!("Inputs of {name} (--set NAME=VALUE, else the environment variable NAME):\n");
    let mut seen = Vec::new();
    for script in &scripts {
        for input in crate::inputs::list(&script.text) {
            if seen.contains(&input.name) {
                continue;
            }
            let default = match &input.default {
                Some(d) => format!("default {d}"),
                None => "required".to_string(),
            };
            let from = if script.name == name {
                String::new()
            } else {
                format!(" (read in {})", script.name)
            };
            out.push_str(&format!("\n  {}  {default}{from}\n", input.name));
            if !input.doc.is_empty() {
                out.push_str(&format!("      {}\n", input.doc));
            }
            seen.push(input.name);
        }
    }
    if seen.is_empty() {
        out.push_str("\n  (none)\n");
    }
    Ok(out)
}

fn base_dir_of(playbook: &Path) -> PathBuf {
    playbook
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}
