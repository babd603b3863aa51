//! `cp.annotate(resource, map, #{namespace})`: set annotations, like `kubectl annotate --overwrite`.

use std::sync::Arc;

use rhai::Engine;

use super::Primitive;
use crate::session::Session;

pub const PRIMITIVE: Primitive = Primitive {
    name: "annotate",
    signatures: &[
        "cp.annotate(resource, map) -> string",
        "cp.annotate(resource, map, #{namespace}) -> string",
    ],
    doc: r#"
Sets annotations on an object (`TYPE/NAME`), like `kubectl annotate --overwrite`; a value of `()` removes the key.
Returns `configured`, or `unchanged` when the object already has them (reruns change nothing).
A key it sets is recorded in the run's ApplySet: once a run no longer sets it, it is removed.

```rhai
dp.annotate("namespace/external-istiod", #{ "topology.istio.io/controlPlaneClusters": "cluster1" });
```
"#,
    options: super::label::OPTION_KEYS,
    register,
};

fn register(engine: &mut Engine, session: &Arc<Session>) {
    super::label::register_for(engine, session, &PRIMITIVE, "annotations");
}
