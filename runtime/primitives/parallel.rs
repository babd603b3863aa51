//! `parallel([|| ..., || ...])`: run independent steps at the same time.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, NativeCallContext};

use super::Primitive;
use crate::bridge::to_rhai;
use crate::error::Error;
use crate::session::Session;

pub const PRIMITIVE: Primitive = Primitive {
    name: "parallel",
    signatures: &["parallel([closure, ...]) -> array"],
    doc: r#"
Runs closures at the same time — e.g. the same steps on several independent clusters — and returns
their results in order. Every closure runs to its end; then the first error (in the array's order)
is raised, so a failure on one cluster does not leave the others half-done unreported. Closures
share what they capture read-only; each reports its steps as usual.

```rhai
let results = parallel(data_planes.map(|dp| || external::cni(dp, mesh)));
parallel([|| cp.wait("istio/external-istiod"), || dp.wait("istio/external-istiod")]);
```
"#,
    options: &[],
    register,
};

fn register(engine: &mut Engine, _session: &Arc<Session>) {
    engine.register_fn(
        "parallel",
        |ctx: NativeCallContext, closures: Array| -> Result<Array, Box<EvalAltResult>> {
            let closures: Vec<FnPtr> = closures
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let type_name = c.type_name();
                    c.try_cast::<FnPtr>().ok_or_else(|| {
                        to_rhai(Error::usage(format!(
                            "parallel takes an array of closures (|| ...); item {i} is {type_name}"
                        )))
                    })
                })
                .collect::<Result<_, _>>()?;
            // Captured variables are shared cells that Rhai locks on every use:
            // two threads using the same captured `cp` would collide ("data race").
            // Each closure gets its own snapshot instead (hence read-only).
            let closures: Vec<FnPtr> = closures
                .into_iter()
                .map(|mut f| {
                    let snapshot: Vec<Dynamic> = f.iter_curry().map(Dynamic::flatten_clone).collect();
                    f.set_curry(snapshot);
                    f
                })
                .collect();
            // Threads, not tasks: Rhai is synchronous, and each primitive blocks
            // on the shared async runtime through the bridge.
            let results: Vec<Result<Dynamic, Box<EvalAltResult>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = closures
                    .iter()
                    .map(|f| {
                        let thread = std::thread::Builder::new().stack_size(crate::engine::PLAYBOOK_STACK);
                        thread.spawn_scoped(scope, || f.call_within_context::<Dynamic>(&ctx, ()))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        let Ok(h) = h else {
                            return Err(to_rhai(Error::Thrown {
                                message: "cannot start a thread for a parallel closure".into(),
                            }));
                        };
                        h.join().unwrap_or_else(|_| {
                            Err(to_rhai(Error::Thrown {
                                message: "a parallel closure panicked".into(),
                            }))
                        })
                    })
                    .collect()
            });
            results.into_iter().collect()
        },
    );
}
