//! `get_jsonpath` is byte-identical to `kubectl get -o jsonpath=` on the
//! same objects of a real server (kubectl of the version under test is the oracle).

use super::{kubectl, mesh};

const TEMPLATES: &[&str] = &[
    "{.status.loadBalancer.ingress[0].ip}",
    r#"{.spec.ports[?(@.name=="http2")].port}"#,
    "{.spec.ports[*].name}",
    r#"{range .spec.ports[*]}{.name}={.port}{"\n"}{end}"#,
    "{.metadata.labels}",
    "{.metadata.annotations.example\\.com/owner-team}",
    "{.spec.ports[0]}",
    "{.spec.ports[-1:].targetPort}",
    "{.spec.selector.app}",
    "{.spec.missing.field}",
    "{..port}",
    "{.metadata.name}{\"\\t\"}{.spec.type}",
];

#[test]
fn matches_kubectl_byte_for_byte() {
    kubectl("control-plane", &["create", "namespace", "prim-jsonpath"]);
    mesh(
        r#"
let cp = cluster("control-plane");
cp.apply(`
apiVersion: v1
kind: Service
metadata:
  name: gw
  namespace: prim-jsonpath
  labels: {app: istio-ingressgateway, istio: ingressgateway}
  annotations: {example.com/owner-team: mesh}
spec:
  type: LoadBalancer
  selector: {app: istio-ingressgateway}
  ports:
  - {name: status-port, port: 15021, targetPort: 15021}
  - {name: http2, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
`);
cp.wait("svc/gw", #{ namespace: "prim-jsonpath", "for": "jsonpath={.status.loadBalancer.ingress[0].ip}" });
"#,
    )
    .status(0);
    let mut playbook = String::from("let cp = cluster(\"control-plane\");\n");
    for (i, t) in TEMPLATES.iter().enumerate() {
        let quoted = serde_json::to_string(t).unwrap();
        playbook.push_str(&format!(
            "print(`<<{i}>>` + cp.get_jsonpath(\"svc/gw\", {quoted}, #{{ namespace: \"prim-jsonpath\" }}) + `<</{i}>>`);\n"
        ));
    }
    let out = mesh(&playbook);
    out.status(0);
    for (i, t) in TEMPLATES.iter().enumerate() {
        let start = out.stdout.find(&format!("<<{i}>>")).unwrap() + format!("<<{i}>>").len();
        let end = out.stdout.find(&format!("<</{i}>>")).unwrap();
        let ours = &out.stdout[start..end];
        let theirs = kubectl(
            "control-plane",
            &["get", "svc", "gw", "-n", "prim-jsonpath", "-o", &format!("jsonpath={t}")],
        );
        assert_eq!(ours, theirs, "template {t}");
    }
}

#[test]
fn get_returns_the_object_and_lists() {
    kubectl("data-plane", &["create", "namespace", "prim-get"]);
    kubectl(
        "data-plane",
        &["create", "configmap", "one", "-n", "prim-get", "--from-literal=k=v"],
    );
    mesh(
        r#"
let dp = cluster("data-plane");
let cm = dp.get("cm/one", #{ namespace: "prim-get" });
print(`k=${cm.data.k} kind=${cm.kind}`);
let list = dp.get("configmaps", #{ namespace: "prim-get" });
print(`items=${list.items.len()}`);
try { dp.get("cm/absent", #{ namespace: "prim-get" }); } catch (e) { print(`kind=${e.kind}`); }
"#,
    )
    .status(0)
    .stdout_contains("k=v kind=ConfigMap")
    .stdout_contains("kind=not_found");
}
