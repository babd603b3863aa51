//! `dry_run()`: whether this run is a `--dry-run`.

use std::sync::Arc;

use rhai::Engine;

use super::Primitive;
use crate::session::Session;

pub const PRIMITIVE: Primitive = Primitive {
    options: &[],
    name: "dry_run",
    signatures: &["dry_run() -> bool"],
    doc: r#"
`true` in a `--dry-run`. Changes are only sent as server dry runs and waits are skipped there, so a
check of their outcome (pods restarted onto a new revision) can only fail: skip it.

```rhai
if !dry_run() { check_every_pod_moved(); }
```
"#,
    register,
};

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let dry_run = session.dry_run;
    engine.register_fn("dry_run", move || dry_run);
}
