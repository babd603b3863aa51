//! Builds the Rhai engine of a run: sandbox limits, the module resolver,
//! the error type, and every primitive from the one registry.

use std::sync::Arc;

use rhai::Engine;

use crate::modules::Resolver;
use crate::report::Event;
use crate::session::Session;

/// Per-value limits: Rhai counts a value with everything inside it (an array
/// of maps holds the entries of all its maps), so a primitive whose result
/// would exceed them checks that before it changes anything.
pub const MAX_STRING_SIZE: usize = 16 * 1024 * 1024;
pub const MAX_ARRAY_SIZE: usize = 100_000;
pub const MAX_MAP_SIZE: usize = 100_000;

/// The stack of threads that run playbook code. Rhai and serde recurse once
/// per level of a nested value, and within the limits above a script can
/// nest 200,000 levels (found by fuzzing: 1,000 overflowed the default
/// 2 MB). Only the pages used are ever committed.
pub const PLAYBOOK_STACK: usize = 256 << 20;

/// Limits that stop a runaway script without getting in the way of a real
/// playbook (the seed procedure uses a few thousand operations).
pub fn limits(engine: &mut Engine) {
    engine.set_max_operations(10_000_000);
    engine.set_max_call_levels(64);
    engine.set_max_expr_depths(128, 64);
    engine.set_max_string_size(MAX_STRING_SIZE);
    engine.set_max_array_size(MAX_ARRAY_SIZE);
    engine.set_max_map_size(MAX_MAP_SIZE);
    engine.set_max_modules(256);
    // No code from strings: a playbook is what it says.
    engine.disable_symbol("eval");
}

/// An engine with a run's limits and nothing registered (tests and fuzzing
/// use it to see what the limits let through).
pub fn bare() -> Engine {
    let mut engine = Engine::new();
    limits(&mut engine);
    engine
}

/// The engine `mesh-run check` (and every run, before its first request)
/// reads scripts with: it knows every function a run's engine knows, and
/// compiles without optimisation, so the AST is the script as written
/// (option maps stay maps). Nothing is evaluated: no cluster is reached.
pub fn for_check(bridge: crate::bridge::Bridge) -> Engine {
    let session = Arc::new(Session {
        bridge,
        clusters: crate::kube::Clusters::new(Default::default(), None),
        reporter: Arc::new(crate::report::Reporter::new(crate::report::Format::Text)),
        dry_run: false,
        sets: Default::default(),
        base_dir: Default::default(),
        files_read: Default::default(),
        stdlib_dir: None,
        // Never used: the check engine evaluates nothing.
        applysets: crate::applyset::ApplySets::new("check".into(), String::new(), Some(false), true),
    });
    let mut engine = build(&session, Resolver::new(std::path::Path::new("."), None, Default::default()));
    engine.set_optimization_level(rhai::OptimizationLevel::None);
    engine
}

pub fn build(session: &Arc<Session>, resolver: Resolver) -> Engine {
    let mut engine = Engine::new();
    limits(&mut engine);
    engine.set_module_resolver(resolver);
    crate::bridge::register(&mut engine);
    crate::sensitive::register(&mut engine);
    crate::primitives::register_all(&mut engine, session);
    let s = session.clone();
    engine.on_print(move |text| s.reporter.emit(Event::Log { message: text.to_string() }));
    let s = session.clone();
    engine.on_debug(move |text, source, pos| {
        let at = source.map(|src| format!("{src}:{pos}")).unwrap_or_else(|| pos.to_string());
        s.reporter.emit(Event::Log {
            message: format!("[debug {at}] {text}"),
        })
    });
    // Script code between primitives also stops on Ctrl-C / rerun, and
    // when the run's heap passes its cap (crate::memory).
    let bridge = session.bridge.clone();
    let cap = crate::memory::limit();
    engine.on_progress(move |_| {
        if crate::memory::in_use() > cap {
            bridge.stop(crate::bridge::StopReason::MemoryLimit);
        }
        bridge.cancel.is_cancelled().then_some(rhai::Dynamic::UNIT)
    });
    engine
}
