//! `input(name)` / `input(name, default)`: values from `--set` or the environment.

use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult};

use super::Primitive;
use crate::bridge::to_rhai;
use crate::error::Error;
use crate::session::Session;

pub const PRIMITIVE: Primitive = Primitive {
    name: "input",
    signatures: &["input(name) -> string", "input(name, default) -> string"],
    doc: r#"
An input of the playbook: `--set NAME=VALUE` first, then the environment variable `NAME`, then
`default`. An input without a default is required: every missing required input is reported before
any cluster is touched (mesh-run reads the playbook's `input("...")` calls first).

```rhai
let version = input("ISTIO_VERSION", "1.24.3");
let cp = cluster(input("CTX_CONTROL_PLANE_CLUSTER"));
```
"#,
    options: &[],
    register,
};

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    engine.register_fn("input", move |name: &str| -> Result<String, Box<EvalAltResult>> {
        s.input(name).ok_or_else(|| {
            to_rhai(Error::MissingInput {
                names: name.to_string(),
                first: name.to_string(),
            })
        })
    });
    let s = session.clone();
    engine.register_fn("input", move |name: &str, default: Dynamic| -> Dynamic {
        match s.input(name) {
            Some(v) => v.into(),
            None => default,
        }
    });
}
