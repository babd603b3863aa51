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

/// An engine with no cluster access: for `mesh-run check`.
pub fn bare() -> Engine {
    let mut engine = Engine::new();
    limits(&mut engine);
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
