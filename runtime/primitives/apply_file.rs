//! `cp.apply_file(path_or_bundled_name, #{...})`: apply a manifest file.

use std::path::PathBuf;
use std::sync::Arc;

use rhai::{Array, Engine, EvalAltResult, Map};

use super::Primitive;
use super::apply::{ApplyOpts, OPTION_KEYS, apply_and_report};
use crate::error::{Error, Result};
use crate::session::{ClusterHandle, Session};
use crate::stdlib;

pub const PRIMITIVE: Primitive = Primitive {
    name: "apply_file",
    signatures: &[
        "cp.apply_file(path_or_name) -> array",
        "cp.apply_file(path_or_name, #{namespace, selector, force}) -> array",
    ],
    doc: r#"
`apply` for a file: a path (relative to the playbook's folder), or the name of a manifest bundled
in mesh-run's stdlib — the files the procedure fetches by URL: `controlplane-gateway.yaml`,
`ingress-gateway.yaml`, `helloworld.yaml`, `helloworld-gateway.yaml`, `sleep.yaml` (built into the
binary; `--stdlib DIR` reads `DIR/manifests/` first). A file beside the playbook wins over a bundled
name. Same options and result as `apply`. Local files are watched by `mesh-run watch`.

```rhai
cp.apply_file("controlplane-gateway.yaml");
dp.apply_file("helloworld.yaml", #{ namespace: "sample", selector: "version=v1" });
```
"#,
    options: OPTION_KEYS,
    register,
};

fn register(engine: &mut Engine, session: &Arc<Session>) {
    for with_opts in [false, true] {
        let s = session.clone();
        let f = move |c: &mut ClusterHandle, path: &str, opts: Option<Map>| -> std::result::Result<Array, Box<EvalAltResult>> {
            let (s2, c, path) = (s.clone(), c.clone(), path.to_string());
            s.bridge.run(async move {
                let opts = PRIMITIVE.parse_options::<ApplyOpts>(opts)?.into_options(s2.dry_run)?;
                let (text, name) = read(&s2, &path)?;
                let objects = crate::manifest::parse(&text, &name)?;
                apply_and_report(&s2, &c, objects, &opts).await
            })
        };
        if with_opts {
            engine.register_fn("apply_file", move |c: &mut ClusterHandle, p: &str, o: Map| f(c, p, Some(o)));
        } else {
            engine.register_fn("apply_file", move |c: &mut ClusterHandle, p: &str| f(c, p, None));
        }
    }
}

/// The file's text and a name for messages; a local file is recorded for watch mode.
fn read(session: &Session, path: &str) -> Result<(String, String)> {
    let local = {
        let p = PathBuf::from(path);
        if p.is_absolute() { p } else { session.base_dir.join(p) }
    };
    if local.is_file() {
        let text = std::fs::read_to_string(&local).map_err(|e| Error::io(&local, e))?;
        session.record_file(local.clone());
        return Ok((text, path.to_string()));
    }
    match stdlib::find(session.stdlib_dir.as_deref(), &format!("manifests/{path}"), stdlib::MANIFESTS, path) {
        Some(stdlib::Source::File(p)) => {
            let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
            session.record_file(p);
            Ok((text, format!("stdlib/manifests/{path}")))
        }
        Some(stdlib::Source::Embedded(text)) => Ok((text.to_string(), format!("stdlib/manifests/{path}"))),
        None => Err(Error::io(
            local,
            format!(
                "no such file, and no bundled manifest of that name (bundled: {})",
                stdlib::manifest_names().join(", ")
            ),
        )),
    }
}
