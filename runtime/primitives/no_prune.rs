//! `no_prune()`: the playbook operates on a mesh another playbook owns.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rhai::Engine;

use super::Primitive;
use crate::session::Session;

pub const PRIMITIVE: Primitive = Primitive {
    options: &[],
    name: "no_prune",
    signatures: &["no_prune()"],
    doc: r#"
Declares a day-2 operation: the playbook changes objects an install playbook owns (a remote secret,
a revision), and what it creates one run (a token Secret for `cluster2`) is not wanted again by its
next run (which rotates `cluster1`). Its ApplySet still records what it created, but a successful
run prunes nothing, silently, as `--no-prune` does with a warning; `--prune` overrides it. The
shipped rotate, add/remove data plane and upgrade playbooks call it first.

```rhai
no_prune();
```
"#,
    register,
};

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    engine.register_fn("no_prune", move || s.applysets.operation.store(true, Ordering::Relaxed));
}
