//! `status([cp, dp, ...])`: what `mesh-run status` reports, as a map a playbook can assert on.

use std::sync::Arc;
use std::time::Instant;

use rhai::{Array, Dynamic, Engine, EvalAltResult};

use super::Primitive;
use crate::error::Error;
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    options: &[],
    name: "status",
    signatures: &["status([cluster, ...]) -> map"],
    doc: r#"
Reads the given clusters at the same time and returns what `mesh-run status --output json` prints
(schema version 1, README "mesh-run status"): `healthy` (no check failed), `clusters` (each with
`context`, `reachable`, `error`, `istiods`, `dataPlanes`, `gateways`, `revisions`, `workloads`), `edges`
(`kind` `remoteSecret`/`webhook`, `from`, `to`, `ok`) and `checks` (each `check`, `verdict`
`pass`/`warn`/`fail`, `cluster`, `subject`, `message`, `advice`). Remote secrets are tried live;
an unreachable cluster is a failed `cluster.reachable` check, not an error. Nothing is changed.

```rhai
let s = status([cp, dp]);
if !s.healthy {
    for c in s.checks.filter(|c| c.verdict == "fail") { print(`${c.check}: ${c.message} -> ${c.advice}`); }
    throw "the mesh is not healthy";
}
```
"#,
    register,
};

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    engine.register_fn("status", move |clusters: Array| -> Result<Dynamic, Box<EvalAltResult>> {
        let s2 = s.clone();
        s.bridge.run(async move {
            let started = Instant::now();
            let contexts = clusters
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let type_name = c.type_name();
                    c.try_cast::<ClusterHandle>().map(|h| h.0.name.clone()).ok_or_else(|| {
                        Error::usage(format!(
                            "status takes an array of clusters (cluster(\"ctx\")); item {i} is {type_name}"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if contexts.is_empty() {
                return Err(Error::usage("status needs at least one cluster: status([cp, dp])"));
            }
            let status = crate::status::collect(&s2.clusters, &contexts).await?;
            let outcome = if status.healthy { "ok" } else { "failed checks" };
            let failed = status.failed().count();
            s2.step(
                &contexts.join(","),
                "status",
                "mesh",
                outcome,
                started,
                (failed > 0).then(|| format!("{failed} check(s) failed")),
            );
            rhai::serde::to_dynamic(&status).map_err(|e| Error::usage(e.to_string()))
        })
    });
}
