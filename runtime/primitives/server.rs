//! `cp.server()`: the API server URL of the context.

use std::sync::Arc;

use rhai::Engine;

use super::Primitive;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "server",
    signatures: &["cp.server() -> string"],
    doc: r#"
The API server URL of the cluster's kubeconfig context, e.g. `https://127.0.0.1:6443`. The seed
procedure's `DATA_PLANE_API_SERVER` defaults to this.

```rhai
let url = input("DATA_PLANE_API_SERVER", dp.server());
```
"#,
    options: &[],
    register,
};

fn register(engine: &mut Engine, _session: &Arc<Session>) {
    engine.register_fn("server", |c: &mut ClusterHandle| c.0.url.clone());
}
