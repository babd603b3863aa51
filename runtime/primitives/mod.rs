//! THE list of primitives. Every function a playbook can call is registered
//! here, in one place; `mesh-run doc` and the README reference are generated
//! from this list (a test keeps the README in sync).

use std::sync::Arc;

use rhai::Engine;

use crate::session::Session;

mod annotate;
mod apply;
mod apply_file;
mod cluster;
mod create_service_account;
mod delete;
mod ensure_namespace;
mod exec;
mod get;
mod get_jsonpath;
mod http_get;
mod input;
mod label;
mod server;
mod wait;

/// One primitive: its documentation and how it is registered.
pub struct Primitive {
    pub name: &'static str,
    /// Rhai call forms, e.g. `cp.wait(resource, #{for, timeout, namespace, fail_if})`.
    pub signatures: &'static [&'static str],
    /// What it does, its options and an example (Markdown).
    pub doc: &'static str,
    pub register: fn(&mut Engine, &Arc<Session>),
}

pub const ALL: &[&Primitive] = &[
    &cluster::PRIMITIVE,
    &server::PRIMITIVE,
    &input::PRIMITIVE,
    &apply::PRIMITIVE,
    &apply_file::PRIMITIVE,
    &wait::PRIMITIVE,
    &get::PRIMITIVE,
    &get_jsonpath::PRIMITIVE,
    &ensure_namespace::PRIMITIVE,
    &create_service_account::PRIMITIVE,
    &label::PRIMITIVE,
    &annotate::PRIMITIVE,
    &delete::PRIMITIVE,
    &exec::PRIMITIVE,
    &http_get::PRIMITIVE,
];

pub fn register_all(engine: &mut Engine, session: &Arc<Session>) {
    for p in ALL {
        (p.register)(engine, session);
    }
}

/// The reference of every primitive, as printed by `mesh-run doc` and
/// embedded in the README between the reference markers.
pub fn reference() -> String {
    let mut out = String::new();
    for p in ALL {
        out.push_str(&format!("### `{}`\n\n", p.name));
        for s in p.signatures {
            out.push_str(&format!("    {s}\n"));
        }
        out.push('\n');
        out.push_str(p.doc.trim());
        out.push_str("\n\n");
    }
    out
}
