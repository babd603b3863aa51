//! `get_raw`: polling a raw path never shows a Secret's values.

use super::sandbox;
use crate::support::Test;

#[test]
fn waiting_on_a_secrets_raw_path_never_shows_its_values() {
    // "raw-secret-value" in base64, as the server answers it.
    let (decoded, encoded) = ("raw-secret-value", "cmF3LXNlY3JldC12YWx1ZQ==");
    let setup = r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prim-raw-secret");
cp.apply(#{ apiVersion: "v1", kind: "Secret", metadata: #{ name: "held", namespace: "prim-raw-secret" },
            stringData: #{ token: "raw-secret-value" } });
"#;
    // One Secret, then the list of them: neither condition ever holds.
    for (path, named) in [
        (
            "/api/v1/namespaces/prim-raw-secret/secrets/held",
            "Secret prim-raw-secret/held (contents hidden",
        ),
        (
            "/api/v1/namespaces/prim-raw-secret/secrets",
            "SecretList of 1 item (contents hidden",
        ),
    ] {
        let playbook = format!("{setup}cp.get_raw(\"{path}\", #{{ wait_for: `jsonpath={{.metadata.labels.never}}`, timeout: \"2s\" }});\n");
        // With every output on: verbose, and the HTTP trace.
        let out = Test::new()
            .kubeconfig(sandbox().kubeconfig())
            .env("MESH_RUN_TRACE", "http")
            .playbook("p.rhai", &playbook)
            .args(["p.rhai", "-v"])
            .own_set()
            .run();
        for value in [decoded, encoded] {
            out.stdout_lacks(value).stderr_lacks(value);
        }
        out.status(1)
            .stderr_contains(&format!("error[timeout]: timed out after 2s waiting for {path} on control-plane"))
            .stderr_contains(&format!("last: answered {named}"));
    }
}
