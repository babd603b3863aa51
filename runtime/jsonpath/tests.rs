//! Table tests of the dialect on realistic objects, and the same table run
//! through a real kubectl. Every expected string below was printed by kubectl
//! (`kubectl patch --local -f OBJECT --type merge -p '{}' -o jsonpath=TEMPLATE`,
//! kubectl 1.32); `None` means kubectl rejects the template or fails to execute it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::{evaluate, render};

const SERVICE: &str = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"istio-ingressgateway","namespace":"istio-system","labels":{"app":"istio-ingressgateway","istio":"ingressgateway"},"annotations":{"note":"a<b>&c"}},"spec":{"type":"LoadBalancer","clusterIP":"10.96.12.7","ports":[{"name":"status-port","port":15021,"protocol":"TCP","targetPort":15021},{"name":"http2","port":80,"protocol":"TCP","targetPort":8080,"nodePort":31380},{"name":"https","port":443,"protocol":"TCP","targetPort":8443}],"selector":{"app":"istio-ingressgateway"}},"status":{"loadBalancer":{"ingress":[{"ip":"172.18.255.200"}]}}}"#;
const SECRET: &str = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"istio-remote-secret-cluster2","namespace":"istio-system","annotations":{"networking.istio.io/cluster":"cluster2","kubernetes.io/description":"remote secret"},"labels":{"istio/multiCluster":"true"}},"type":"Opaque","data":{"cluster2":"YXBpVmVyc2lvbjogdjEK","ca.crt":"LS0tLS1CRUdJTg=="}}"#;
const ISTIO: &str = r#"{"apiVersion":"sailoperator.io/v1","kind":"Istio","metadata":{"name":"default","generation":3},"spec":{"version":"v1.27.0","namespace":"istio-system","values":{"global":{"meshID":"mesh1","multiCluster":{"clusterName":"cluster1"},"network":"network1"},"pilot":{"resources":{"requests":{"cpu":"500m","memory":"2Gi"}}}}},"status":{"observedGeneration":3,"state":"Healthy","revisions":{"total":1,"ready":1,"inUse":1},"conditions":[{"type":"Reconciled","status":"True","lastTransitionTime":"2025-06-01T10:00:00Z"},{"type":"Ready","status":"True","lastTransitionTime":"2025-06-01T10:00:05Z"},{"type":"RevisionsReady","status":"False","reason":"RevisionNotReady","message":"revision default is <not> ready & waiting"}]}}"#;
const VALUES: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"values"},"status":{"ratio":0.25,"big":1e21,"small":1e-7,"million":1000000.0,"neg":-2.5,"flag":true,"nothing":null,"empty":"","emptyList":[],"emptyMap":{},"nested":[[1,2],[3]],"mixed":[1,"two",true,null,{"a":1}],"text":"tab\there \u2028 \u0001 é"}}"#;

/// (object, template, what kubectl prints). Templates whose kubectl output depends
/// on Go's random map order (`.*` on a map, `..` across several keys) are left out.
const CASES: &[(&str, &str, Option<&str>)] = &[
    (SERVICE, "{.metadata.name}", Some("istio-ingressgateway")),
    (SERVICE, "{.spec.ports[*].name}", Some("status-port http2 https")),
    (SERVICE, "{.spec.ports[*].port}", Some("15021 80 443")),
    (
        SERVICE,
        "{.spec.ports[0]}",
        Some(r#"{"name":"status-port","port":15021,"protocol":"TCP","targetPort":15021}"#),
    ),
    (SERVICE, "{.spec.ports[-1].name}", Some("https")),
    (SERVICE, "{.spec.ports[1:3].name}", Some("http2 https")),
    (SERVICE, "{.spec.ports[::2].name}", Some("status-port https")),
    (SERVICE, "{.spec.ports[1:1]}", Some("")),
    (SERVICE, "{.spec.ports[0,2].name}", Some("status-port https")),
    (SERVICE, r#"{.spec.ports[?(@.name=="http2")].port}"#, Some("80")),
    (SERVICE, "{.spec.ports[?(@.name=='https')].targetPort}", Some("8443")),
    (SERVICE, "{.spec.ports[?(@.port>100)].name}", Some("status-port https")),
    (SERVICE, "{.spec.ports[?(@.port <= 80)].name}", Some("http2")),
    (SERVICE, r#"{.spec.ports[?(@.name!="http2")].name}"#, Some("status-port https")),
    (SERVICE, "{.spec.ports[?(@.nodePort)].name}", Some("http2")),
    (
        SERVICE,
        "{.spec.ports[?(@.port==80)]}",
        Some(r#"{"name":"http2","nodePort":31380,"port":80,"protocol":"TCP","targetPort":8080}"#),
    ),
    (SERVICE, "{.spec.ports[?(@.port==80)]['name','nodePort']}", Some("http2 31380")),
    (
        SERVICE,
        r#"{range .spec.ports[*]}{.name}{"\t"}{.port}{"\n"}{end}"#,
        Some("status-port\t15021\nhttp2\t80\nhttps\t443\n"),
    ),
    (SERVICE, "{range .spec.ports[*]}{.name}{' '}", Some("status-port http2 https  ")),
    (
        SERVICE,
        "{.metadata.labels}",
        Some(r#"{"app":"istio-ingressgateway","istio":"ingressgateway"}"#),
    ),
    (SERVICE, "{.metadata.annotations.note}", Some("a<b>&c")),
    (SERVICE, "{.metadata.annotations}", Some(r#"{"note":"a\u003cb\u003e\u0026c"}"#)),
    (SERVICE, "{..ip}", Some("172.18.255.200")),
    (SERVICE, "{.status.loadBalancer.ingress[0].ip}", Some("172.18.255.200")),
    (SERVICE, "{.kind}/{.metadata.name}", Some("Service/istio-ingressgateway")),
    (SERVICE, "{.nope}", Some("")),
    (SERVICE, "{.kind}{.nope.deeper}{.kind}", Some("ServiceService")),
    (SERVICE, "{@.kind} {$.kind}", Some("Service Service")),
    (
        SERVICE,
        "{.spec.ports}",
        Some(
            r#"[{"name":"status-port","port":15021,"protocol":"TCP","targetPort":15021},{"name":"http2","nodePort":31380,"port":80,"protocol":"TCP","targetPort":8080},{"name":"https","port":443,"protocol":"TCP","targetPort":8443}]"#,
        ),
    ),
    (SERVICE, r#"{.spec.clusterIP}{"\n"}"#, Some("10.96.12.7\n")),
    (SERVICE, ".metadata.name", Some(".metadata.name")),
    (
        SERVICE,
        "{.metadata['name','namespace']}",
        Some("istio-ingressgateway istio-system"),
    ),
    (SERVICE, "{.metadata['name']}", Some("istio-ingressgateway")),
    (SERVICE, r#"{'\t'}x"#, Some("\tx")),
    (SERVICE, "a}b{.kind}", Some("a}bService")),
    (
        SERVICE,
        r#"{.spec.ports[?(@.name=="http2")].port}:{.spec.ports[?(@.name=="https")].port}"#,
        Some("80:443"),
    ),
    (SECRET, r#"{.metadata.annotations.networking\.istio\.io/cluster}"#, Some("cluster2")),
    (SECRET, "{.metadata.annotations['networking.istio.io/cluster']}", Some("")),
    (SECRET, "{.metadata.labels.istio/multiCluster}", Some("true")),
    (SECRET, r#"{.data.ca\.crt}"#, Some("LS0tLS1CRUdJTg==")),
    (SECRET, "{.data.cluster2}", Some("YXBpVmVyc2lvbjogdjEK")),
    (
        SECRET,
        "{.data}",
        Some(r#"{"ca.crt":"LS0tLS1CRUdJTg==","cluster2":"YXBpVmVyc2lvbjogdjEK"}"#),
    ),
    (
        SECRET,
        r#"{.metadata.annotations.kubernetes\.io/description}"#,
        Some("remote secret"),
    ),
    (ISTIO, r#"{.status.conditions[?(@.type=="Ready")].status}"#, Some("True")),
    (
        ISTIO,
        r#"{range .status.conditions[*]}{.type}={.status}{"\n"}{end}"#,
        Some("Reconciled=True\nReady=True\nRevisionsReady=False\n"),
    ),
    (
        ISTIO,
        r#"{.status.conditions[?(@.status=="False")].message}"#,
        Some("revision default is <not> ready & waiting"),
    ),
    (
        ISTIO,
        "{.status.conditions[2]}",
        Some(
            r#"{"message":"revision default is \u003cnot\u003e ready \u0026 waiting","reason":"RevisionNotReady","status":"False","type":"RevisionsReady"}"#,
        ),
    ),
    (ISTIO, "{.status.revisions.ready}/{.status.revisions.total}", Some("1/1")),
    (ISTIO, "{.status.observedGeneration} {.metadata.generation}", Some("3 3")),
    (ISTIO, "{.status.conditions[?(@.reason)].type}", Some("RevisionsReady")),
    (ISTIO, "{.spec.values.global.multiCluster.clusterName}", Some("cluster1")),
    (
        ISTIO,
        "{.spec.values.pilot.resources}",
        Some(r#"{"requests":{"cpu":"500m","memory":"2Gi"}}"#),
    ),
    (ISTIO, "{..clusterName}", Some("cluster1")),
    (ISTIO, "{.status.conditions[*].type}", Some("Reconciled Ready RevisionsReady")),
    (
        ISTIO,
        "{range .status.conditions[*]}[{range .status.conditions[*]}{.type}{end}]{end}",
        Some("[][][]"),
    ),
    (
        ISTIO,
        "{range .status.conditions[*]}{.type}:{range @}{.status}{end};{end}",
        Some("Reconciled:True;Ready:True;RevisionsReady:False;"),
    ),
    (
        ISTIO,
        r#"{.status.conditions[?(@.type<"RevisionsReady")].type}"#,
        Some("Reconciled Ready"),
    ),
    (
        ISTIO,
        r#"{.status.conditions[?(@.lastTransitionTime>="2025-06-01T10:00:05Z")].type}"#,
        Some("Ready"),
    ),
    (ISTIO, "{.status.conditions[-2:].type}", Some("Ready RevisionsReady")),
    (
        VALUES,
        "{.status.ratio} {.status.big} {.status.small} {.status.million} {.status.neg}",
        Some("0.25 1e+21 1e-07 1000000 -2.5"),
    ),
    (
        VALUES,
        "{.status.flag} {.status.nothing} [{.status.empty}] {.status.emptyList} {.status.emptyMap}",
        Some("true null [] [] {}"),
    ),
    (VALUES, "{.status.nested} {.status.nested[*][0]}", Some("[[1,2],[3]] 1 3")),
    (VALUES, "{.status.mixed}", Some(r#"[1,"two",true,null,{"a":1}]"#)),
    (VALUES, "{.status.mixed[*]}", Some(r#"1 two true null {"a":1}"#)),
    (VALUES, "{.status.mixed[?(@.a==1)]}", Some(r#"{"a":1}"#)),
    (VALUES, "{.status.text}", Some("tab\there \u{2028} \u{1} é")),
    (
        VALUES,
        "{.status}",
        Some(
            r#"{"big":1e+21,"empty":"","emptyList":[],"emptyMap":{},"flag":true,"million":1000000,"mixed":[1,"two",true,null,{"a":1}],"neg":-2.5,"nested":[[1,2],[3]],"nothing":null,"ratio":0.25,"small":1e-7,"text":"tab\there \u2028 \u0001 é"}"#,
        ),
    ),
    (VALUES, "{.metadata.name.*}", Some("118 97 108 117 101 115")),
    (VALUES, r#"{true} {1} {1.5} {"a"} {-3}"#, Some("true 1 1.5 a -3")),
    (VALUES, "{'it''s'}", Some("s")),
    (VALUES, "{.status.nothing.x}{.status.ratio.x}", Some("")),
    (
        VALUES,
        "{}",
        Some(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"values"},"status":{"big":1e+21,"empty":"","emptyList":[],"emptyMap":{},"flag":true,"million":1000000,"mixed":[1,"two",true,null,{"a":1}],"neg":-2.5,"nested":[[1,2],[3]],"nothing":null,"ratio":0.25,"small":1e-7,"text":"tab\there \u2028 \u0001 é"}}"#,
        ),
    ),
    (VALUES, "{range .status.emptyList[*]}{.x}{end}done", Some("done")),
    (VALUES, r#"{"\u00e9\x41\101"}"#, Some("éAA")),
    (VALUES, "{.status.nested..*}", None),
    (VALUES, "{.a", None),
    (VALUES, "{.status.mixed[a,b]}", None),
    (VALUES, "{.status.mixed[9]}", None),
    (VALUES, "{.status.mixed[2:1]}", None),
    (VALUES, "{.status.mixed[::0]}", None),
    (VALUES, "{foo}", None),
    (VALUES, "{end}", None),
    (VALUES, "{.status.nested[?(@[0]>1.5)]}", None),
    (VALUES, "{.status.flag[0]}", None),
    (VALUES, "{.status.nothing[?(@.a)]}", None),
    (VALUES, r#"{.status.mixed[?(@.a=="1")]}"#, None),
    (VALUES, "{.status.mixed[?(@.a}", None),
    (VALUES, r#"{"unterminated}"#, None),
    (SERVICE, "{.spec.ports[?(@.port==@.targetPort)].name}", Some("status-port")),
    (SERVICE, r#"{.spec.ports[?(@.name=="a)b")].name}"#, Some("")),
    (SERVICE, r#"{.spec.ports[?(@.port=="80")].name}"#, None),
    (SERVICE, "{.spec.ports[?(@.name==)].name}", None),
    (
        SERVICE,
        "{.spec.ports[-1:].name} {.spec.ports[:-1].name} {.spec.ports[3:]}",
        Some("https status-port http2 "),
    ),
    (SERVICE, "{.spec.ports[5:]}", None),
    (
        SERVICE,
        "{range .spec.ports[0:2]}[{.name}]{end}{.kind}",
        Some("[status-port][http2]Service"),
    ),
    (SERVICE, "{range .spec.ports[*]}{range .spec.ports[*]}x{end}y{end}", Some("yyy")),
    (SERVICE, "{...kind} {.metadata.} {.}", Some("Service  ")),
    (SERVICE, "{....kind}", None),
    (
        SERVICE,
        r#"{.kind "x"} {.nope "x"} {.nope 1} {.spec.ports[*] 1}"#,
        Some("x x  1 1 1"),
    ),
    (SERVICE, r#"{.kind\t}"#, Some("")),
    (SERVICE, "{.spec.ports[0]['name','nope']}", Some("status-port")),
    (
        VALUES,
        "{range .status.mixed[*]}<{@}>{end}",
        Some(r#"<1><two><true><<no value>><{"a":1}>"#),
    ),
    (
        VALUES,
        "{.status.nested[?(@[0]==3)]} {.status.nested[?(@[1])]}",
        Some("[3] [1,2] [3]"),
    ),
    (VALUES, "{1.0} {1000000.0} {-1.5} {-1.5e3}x", None),
    (VALUES, r#"{"\q"}"#, None),
    (VALUES, "{1.0} {1000000.0} {-1.5}", Some("1 1e+06 -1.5")),
];

fn object(json: &str) -> Value {
    serde_json::from_str(json).expect("test objects are valid JSON")
}

#[test]
fn renders_what_kubectl_prints() {
    for (json, template, expected) in CASES {
        let got = render(template, &object(json));
        match expected {
            Some(expected) => assert_eq!(got.as_ref().ok(), Some(&expected.to_string()), "template {template}: {got:?}"),
            None => assert!(got.is_err(), "template {template} should fail, rendered {got:?}"),
        }
    }
}

#[test]
fn wildcards_and_recursive_descent_visit_map_keys_in_sorted_order() {
    // kubectl's order here changes from run to run (Go map iteration); ours is sorted.
    let service = object(SERVICE);
    assert_eq!(
        render("{.metadata.labels.*}", &service).unwrap(),
        "istio-ingressgateway ingressgateway"
    );
    assert_eq!(
        render("{..name}", &service).unwrap(),
        "istio-ingressgateway status-port http2 https"
    );
}

#[test]
fn evaluate_relaxes_the_expression_like_kubectl_wait() {
    let istio = object(ISTIO);
    for expression in ["{.status.state}", ".status.state", "status.state", "{status.state}"] {
        assert_eq!(evaluate(expression, &istio).unwrap(), vec![json!("Healthy")], "{expression}");
    }
    let ready = r#"{.status.conditions[?(@.type=="Ready")].status}"#;
    assert_eq!(evaluate(ready, &istio).unwrap(), vec![json!("True")]);
    assert_eq!(
        evaluate("{.status.revisions}", &istio).unwrap(),
        vec![json!({"total": 1, "ready": 1, "inUse": 1})]
    );
    assert_eq!(
        evaluate("{.status.conditions[*].status}", &istio).unwrap(),
        vec![json!("True"), json!("True"), json!("False")]
    );
    assert_eq!(evaluate("{.status.missing}", &istio).unwrap(), Vec::<Value>::new());
    for rejected in ["", "{}", "{.a}{.b}", "{range .items[*]}{.x}{end}"] {
        let error = evaluate(rejected, &istio).unwrap_err();
        assert_eq!(error.kind(), "usage", "{rejected}: {error}");
    }
}

#[test]
fn parse_errors_name_the_position_and_what_was_expected() {
    let service = object(SERVICE);
    let error = render("{.spec.ports[0}", &service).unwrap_err().to_string();
    assert_eq!(
        error,
        "invalid JSONPath template: unterminated array (expected `]`) at column 16\n  {.spec.ports[0}\n                 ^"
    );
    let error = render("{.metadata.name", &service).unwrap_err().to_string();
    assert!(
        error.starts_with("invalid JSONPath template: unclosed action (expected `}`) at column 16"),
        "{error}"
    );
    let error = render("{.a,b}", &service).unwrap_err().to_string();
    assert!(
        error.contains("unrecognized character in action: U+002C ','") && error.contains("column 4"),
        "{error}"
    );
    let error = render("{.spec.ports[x]}", &service).unwrap_err().to_string();
    assert!(error.contains("invalid array index x") && error.contains("column 13"), "{error}");
    assert_eq!(render("", &service).unwrap_err().kind(), "usage");
}

#[test]
fn execution_errors_are_usage_errors_naming_the_cause() {
    let error = render("{.spec.ports[5]}", &object(SERVICE)).unwrap_err();
    assert_eq!(error.kind(), "usage");
    assert!(
        error.to_string().contains("array index out of bounds: index 5, length 3"),
        "{error}"
    );
}

/// The kubectl to compare against: `$MESH_RUN_KUBECTL`, then the one mesh-run
/// downloads into `~/.cache/mesh-run/kube/*/bin`, then `kubectl` on `PATH`.
fn find_kubectl() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MESH_RUN_KUBECTL") {
        return Some(PathBuf::from(path));
    }
    let home = PathBuf::from(std::env::var_os("HOME")?);
    let cached = std::fs::read_dir(home.join(".cache/mesh-run/kube")).into_iter().flatten().flatten();
    let mut candidates: Vec<PathBuf> = cached.map(|dir| dir.path().join("bin/kubectl")).filter(|p| p.is_file()).collect();
    candidates.sort();
    if let Some(newest) = candidates.pop() {
        return Some(newest);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("kubectl")).find(|p| p.is_file())
}

/// What kubectl prints for `template` on the object in `file`, or `None` if it fails.
/// `patch --local` with an empty merge patch renders without any API server.
fn kubectl_render(kubectl: &Path, file: &Path, template: &str) -> Option<String> {
    let output = Command::new(kubectl)
        .args(["patch", "--local", "--type", "merge", "-p", "{}", "-f"])
        .arg(file)
        .arg(format!("--output=jsonpath={template}"))
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", kubectl.display()));
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn matches_a_real_kubectl() {
    let kubectl = find_kubectl().expect(
        "no kubectl found to compare JSONPath output with: set MESH_RUN_KUBECTL, \
         install one into ~/.cache/mesh-run/kube/<version>/bin, or put kubectl on PATH",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let files: Vec<(&str, PathBuf)> = [SERVICE, SECRET, ISTIO, VALUES]
        .iter()
        .enumerate()
        .map(|(i, json)| {
            let file = dir.path().join(format!("object{i}.json"));
            std::fs::write(&file, json).expect("write test object");
            (*json, file)
        })
        .collect();
    let file_of = |json: &str| {
        files
            .iter()
            .find(|(j, _)| *j == json)
            .map(|(_, f)| f.clone())
            .expect("known object")
    };
    // Four kubectl processes at a time keep this test to a few seconds.
    let mismatches: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = CASES
            .chunks(CASES.len().div_ceil(4))
            .map(|chunk| {
                let (kubectl, file_of) = (&kubectl, &file_of);
                scope.spawn(move || {
                    let mut mismatches = Vec::new();
                    for (json, template, _) in chunk {
                        let theirs = kubectl_render(kubectl, &file_of(json), template);
                        let ours = render(template, &object(json)).ok();
                        if theirs != ours {
                            mismatches.push(format!("{template}\n  kubectl: {theirs:?}\n  ours:    {ours:?}"));
                        }
                    }
                    mismatches
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker panicked")).collect()
    });
    assert!(
        mismatches.is_empty(),
        "{} differs from mesh-run:\n{}",
        kubectl.display(),
        mismatches.join("\n")
    );
}
