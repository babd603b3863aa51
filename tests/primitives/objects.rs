//! Namespaces, service accounts, labels, annotations, delete, exec,
//! http_get, server: the rest of what the procedure needs.

use std::io::{Read, Write};

use super::{kubectl, mesh, sandbox};

#[test]
fn namespaces_and_service_accounts_are_rerunnable() {
    let playbook = r#"
let cp = cluster("control-plane");
print(`ns=${cp.ensure_namespace("prim-objects")}`);
print(`sa=${cp.create_service_account("prim-objects", "istiod-service-account")}`);
"#;
    mesh(playbook).status(0).stdout_contains("ns=created").stdout_contains("sa=created");
    mesh(playbook)
        .status(0)
        .stdout_contains("ns=unchanged")
        .stdout_contains("sa=unchanged");
    assert_eq!(
        kubectl(
            "control-plane",
            &[
                "get",
                "sa",
                "istiod-service-account",
                "-n",
                "prim-objects",
                "-o",
                "jsonpath={.metadata.name}"
            ]
        ),
        "istiod-service-account"
    );
}

#[test]
fn labels_and_annotations_are_set_idempotently() {
    let playbook = r#"
let dp = cluster("data-plane");
dp.ensure_namespace("prim-labels");
print(`label=${dp.label("namespace/prim-labels", #{ "istio.io/rev": "external-istiod" })}`);
print(`annotate=${dp.annotate("ns/prim-labels", #{ "topology.istio.io/controlPlaneClusters": "cluster1" })}`);
"#;
    mesh(playbook)
        .status(0)
        .stdout_contains("label=configured")
        .stdout_contains("annotate=configured");
    mesh(playbook)
        .status(0)
        .stdout_contains("label=unchanged")
        .stdout_contains("annotate=unchanged");
    assert_eq!(
        kubectl(
            "data-plane",
            &["get", "ns", "prim-labels", "-o", "jsonpath={.metadata.labels.istio\\.io/rev}"]
        ),
        "external-istiod"
    );
    assert_eq!(
        kubectl(
            "data-plane",
            &[
                "get",
                "ns",
                "prim-labels",
                "-o",
                "jsonpath={.metadata.annotations.topology\\.istio\\.io/controlPlaneClusters}"
            ]
        ),
        "cluster1"
    );
    mesh(r#"cluster("data-plane").label("namespace/prim-labels", #{ "istio.io/rev": () });"#).status(0);
    assert_eq!(
        kubectl(
            "data-plane",
            &["get", "ns", "prim-labels", "-o", "jsonpath={.metadata.labels.istio\\.io/rev}"]
        ),
        ""
    );
}

#[test]
fn delete_waits_until_the_object_is_gone() {
    let playbook = r#"
let cp = cluster("control-plane");
cp.ensure_namespace("prim-delete");
cp.apply(`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "doomed", "namespace": "prim-delete"}}`);
print(`first=${cp.delete("cm/doomed", #{ namespace: "prim-delete" })}`);
print(`second=${cp.delete("cm/doomed", #{ namespace: "prim-delete" })}`);
print(`ns=${cp.delete("namespace/prim-delete", #{ timeout: "60s" })}`);
"#;
    mesh(playbook)
        .status(0)
        .stdout_contains("first=deleted")
        .stdout_contains("second=absent")
        .stdout_contains("ns=deleted");
    let out = super::kubectl_raw("control-plane", &["get", "namespace", "prim-delete"]);
    assert!(!out.status.success(), "namespace still there after delete returned");
}

#[test]
fn exec_without_a_running_pod_explains_why() {
    mesh(
        r#"
let dp = cluster("data-plane");
dp.ensure_namespace("prim-exec");
// No Node matches: its pod stays Pending, whatever the load (kwok would run it).
dp.apply(`
apiVersion: apps/v1
kind: Deployment
metadata: { name: sleep, namespace: prim-exec }
spec:
  selector: { matchLabels: { app: sleep } }
  template:
    metadata: { labels: { app: sleep } }
    spec:
      nodeSelector: { mesh-run.test/none: "true" }
      containers: [{ name: sleep, image: curlimages/curl, command: ["/bin/sleep", "infinity"] }]
`);
dp.exec("deploy/sleep", ["curl", "-sS", "helloworld.sample:5000/hello"], #{ container: "sleep", namespace: "prim-exec" });
"#,
    )
    .status(1)
    .stderr_contains("error[remote]: exec in Deployment prim-exec/sleep on data-plane")
    .stderr_contains("no running pod")
    .stderr_contains("kubelets");
}

#[test]
fn http_get_returns_the_body() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /hello HTTP/1.1"));
        let body = "Hello version: v1, instance: helloworld-v1-6d65866976-jb6qc\n";
        write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    });
    mesh(&format!(r#"print(http_get("http://127.0.0.1:{port}/hello"));"#))
        .status(0)
        .stdout_contains("Hello version: v1");
    server.join().unwrap();
    mesh(r#"http_get("http://127.0.0.1:1/hello");"#)
        .status(1)
        .stderr_contains("error[remote]: GET http://127.0.0.1:1/hello");
}

#[test]
fn server_is_the_contexts_api_server_url() {
    let kubeconfig = std::fs::read_to_string(sandbox().kubeconfig()).unwrap();
    let out = mesh(r#"print(`server=${cluster("data-plane").server()}`);"#);
    out.status(0);
    let url = out.stdout.lines().find_map(|l| l.strip_prefix("server=")).unwrap().to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert!(kubeconfig.contains(&format!("server: {url}")), "{url} not in kubeconfig");
}

#[test]
fn parallel_runs_closures_together_and_reports_the_first_error() {
    let out = mesh(
        r#"
let cp = cluster("control-plane");
let dp = cluster("data-plane");
let r = parallel([|| cp.ensure_namespace("prim-par-a"), || dp.ensure_namespace("prim-par-b")]);
print(`results=${r}`);
parallel([
    || cp.wait("cm/prim-par-never", #{ namespace: "prim-par-a", timeout: "1s" }),
    || dp.create_service_account("prim-par-b", "still-done"),
]);
"#,
    );
    out.status(1)
        .stdout_contains(r#"results=["created", "created"]"#)
        .stderr_contains("error[timeout]");
    // The failing closure did not stop its sibling.
    assert_eq!(
        kubectl(
            "data-plane",
            &["get", "sa", "still-done", "-n", "prim-par-b", "-o", "jsonpath={.metadata.name}"]
        ),
        "still-done"
    );
}
