//! `cp.get_jsonpath(resource, template, #{namespace})`: `kubectl get -o jsonpath=`.

use std::sync::Arc;
use std::time::Instant;

use rhai::{Engine, EvalAltResult, Map};

use super::Primitive;
use super::get::{GetOpts, KEYS, fetch_planned};
use crate::error::Error;
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
A missing field gives an empty string, as in kubectl. In a `--dry-run`, a value that is not there yet
(the object would be created by this run, or filled by an operator) is a named placeholder such as
`<svc/istio-ingressgateway .status.loadBalancer.ingress[0].ip>`, which flows into later manifests.

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
            let out = match fetch_planned(&s2, &c, &resource, &opts).await {
                Ok(object) => crate::jsonpath::render(&template, &object)?,
                Err(Error::NotFound { .. }) if s2.dry_run => String::new(),
                Err(e) => return Err(e),
            };
            // What only an apply or an operator would fill in has no value in
            // a dry run: a named placeholder flows into later manifests instead.
            let (out, detail) = if s2.dry_run && out.is_empty() {
                let placeholder = placeholder(&resource, &template);
                (placeholder.clone(), Some(format!("not there yet: {placeholder} stands for it")))
            } else {
                (out, None)
            };
            s2.step(&c.0.name, "get", &format!("{resource} {template}"), "ok", started, detail);
            Ok(out)
        })
    };
    let f2 = f.clone();
    engine.register_fn("get_jsonpath", move |c: &mut ClusterHandle, r: &str, t: &str| f(c, r, t, None));
    engine.register_fn("get_jsonpath", move |c: &mut ClusterHandle, r: &str, t: &str, o: Map| {
        f2(c, r, t, Some(o))
    });
}

/// `<svc/istio-ingressgateway .status.loadBalancer.ingress[0].ip>`: the value a dry run cannot know.
fn placeholder(resource: &str, template: &str) -> String {
    let path = template.trim().trim_start_matches('{').trim_end_matches('}');
    format!("<{resource} {path}>")
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_name_the_value() {
        assert_eq!(
            super::placeholder("svc/istio-ingressgateway", "{.status.loadBalancer.ingress[0].ip}"),
            "<svc/istio-ingressgateway .status.loadBalancer.ingress[0].ip>"
        );
    }
}
