//! `MESH_RUN_TRACE=http`: every API request on stderr, never a body.

use super::{kubectl, sandbox};
use crate::support::Test;

#[test]
fn the_http_trace_names_each_request_and_no_secret_value() {
    let playbook = r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prim-trace");
cp.apply(#{ apiVersion: "v1", kind: "Secret", metadata: #{ name: "traced", namespace: "prim-trace" },
            stringData: #{ token: "do-not-print-me" } });
cp.wait("secret/traced", #{ namespace: "prim-trace", "for": "create" });
"#;
    let out = Test::new()
        .kubeconfig(sandbox().kubeconfig())
        .env("MESH_RUN_TRACE", "http")
        .playbook("p.rhai", playbook)
        .args(["p.rhai"])
        .own_set()
        .run();
    out.status(0)
        .stderr_contains("control-plane GET /api/v1/namespaces/prim-trace ")
        .stderr_contains("control-plane PATCH /api/v1/namespaces/prim-trace/secrets/traced?fieldManager=mesh-run&force=false 201 ")
        // The wait's list and watch, traced like the rest.
        .stderr_contains("control-plane GET /api/v1/namespaces/prim-trace/secrets?fieldSelector=metadata.name%3Dtraced")
        .stderr_lacks("do-not-print-me")
        .stdout_lacks("[http]");
    // Without the variable, no trace.
    let quiet = Test::new()
        .kubeconfig(sandbox().kubeconfig())
        .playbook("p.rhai", playbook)
        .args(["p.rhai"])
        .own_set()
        .run();
    quiet.status(0).stderr_lacks("[http]");
    assert_eq!(
        kubectl(
            "control-plane",
            &["get", "secret", "traced", "-n", "prim-trace", "-o", "jsonpath={.type}"]
        ),
        "Opaque"
    );
}
