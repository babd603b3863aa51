//! `cluster(context)`: a handle bound to a kubeconfig context.

use std::sync::Arc;

use rhai::Engine;

use super::Primitive;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "cluster",
    signatures: &["cluster(context) -> Cluster", "cp.name -> string"],
    doc: r#"
A handle on the cluster of one kubeconfig context (`--kubeconfig`, else `KUBECONFIG`, else
`~/.kube/config`). No request is made until the handle is used; an unknown context fails at once
and lists the available ones. One client per context is shared by the whole run.

```rhai
let cp = cluster(input("CTX_CONTROL_PLANE_CLUSTER"));
print(cp.name);
```
"#,
    options: &[],
    register,
};

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    engine
        .register_type_with_name::<ClusterHandle>("Cluster")
        .register_get("name", |c: &mut ClusterHandle| c.0.name.clone())
        .register_fn("to_string", |c: &mut ClusterHandle| format!("cluster({})", c.0.name))
        .register_fn("to_debug", |c: &mut ClusterHandle| format!("cluster({})", c.0.name))
        .register_fn("cluster", move |context: &str| {
            let s2 = s.clone();
            s.bridge.run(async move { s2.clusters.get(context).await.map(ClusterHandle) })
        });
}
