//! `cp.get_jsonpath(resource, template, #{namespace})`: `kubectl get -o jsonpath=`.

use std::sync::Arc;
use std::time::Instant;

use rhai::{Engine, EvalAltResult, Map};

use super::Primitive;
use super::get::{GetOpts, KEYS, fetch};
use crate::session::{ClusterHandle, Session};

pub const PRIMITIVE: Primitive = Primitive {
    name: "get_jsonpath",
    signatures: &[
        "cp.get_jsonpath(resource, template) -> string",
        "cp.get_jsonpath(resource, template, #{namespace, selector}) -> string",
    ],
    doc: r#"
The output of `kubectl get RESOURCE -o jsonpath=TEMPLATE`, byte for byte, in kubectl's dialect:
`{.a.b[0].c}`, filters `{.spec.ports[?(@.name=="http2")].port}`, `{range .items[*]}...{end}`,
literals `{"\n"}`, keys with `-` and escaped dots (`{.metadata.annotations.networking\.istio\.io/cluster}`).
A missing field gives an empty string, as in kubectl.

```rhai
let addr = cp.get_jsonpath("svc/istio-ingressgateway", "{.status.loadBalancer.ingress[0].ip}",
    #{ namespace: "istio-system" });
```
"#,
    options: KEYS,
    register,
};

fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    let f = move |c: &mut ClusterHandle, resource: &str, template: &str, opts: Option<Map>| -> Result<String, Box<EvalAltResult>> {
        let (c, resource, template) = (c.clone(), resource.to_string(), template.to_string());
        let s2 = s.clone();
        s.bridge.run(async move {
            let started = Instant::now();
            let opts: GetOpts = PRIMITIVE.parse_options(opts)?;
            let object = fetch(&c, &resource, &opts).await?;
            let out = crate::jsonpath::render(&template, &object)?;
            s2.step(&c.0.name, "get", &format!("{resource} {template}"), "ok", started, None);
            Ok(out)
        })
    };
    let f2 = f.clone();
    engine.register_fn("get_jsonpath", move |c: &mut ClusterHandle, r: &str, t: &str| f(c, r, t, None));
    engine.register_fn("get_jsonpath", move |c: &mut ClusterHandle, r: &str, t: &str, o: Map| {
        f2(c, r, t, Some(o))
    });
}
