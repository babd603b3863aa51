//! Unit tests of graph.rs.
use super::*;

#[test]
fn names_follow_the_chart() {
    assert_eq!(
        webhook_name("external-istiod", "external-istiod"),
        "istio-sidecar-injector-external-istiod-external-istiod"
    );
    assert_eq!(webhook_name("default", "istio-system"), "istio-sidecar-injector");
    assert_eq!(webhook_name("canary", "istio-system"), "istio-sidecar-injector-canary");
    assert_eq!(istiod_service("default"), "istiod");
    assert_eq!(istiod_service("r"), "istiod-r");
    assert_eq!(
        parse_injection_path("/inject/cluster/cluster2/net/network1"),
        ("cluster2".into(), "network1".into())
    );
    assert_eq!(parse_injection_path(""), (String::new(), String::new()));
}

fn snapshot(context: &str, server: &str, objects: Objects) -> Snapshot {
    Snapshot {
        context: context.into(),
        server: server.into(),
        ca: Some(b"CA".to_vec()),
        client: None,
        objects: Ok(objects),
    }
}

fn istio(name: &str, profile: &str, values: Value) -> Value {
    serde_json::json!({"metadata": {"name": name}, "spec": {"namespace": name, "profile": profile, "version": "v1.24.3", "values": values}})
}

fn remote_secret(namespace: &str, cluster: &str, server: &str) -> Value {
    use base64::Engine as _;
    let kubeconfig = crate::kube::remote_secret::kubeconfig(cluster, server, b"CA", "t");
    let data = base64::engine::general_purpose::STANDARD.encode(kubeconfig);
    serde_json::json!({"metadata": {"name": format!("istio-remote-secret-{cluster}"), "namespace": namespace,
        "annotations": {"networking.istio.io/cluster": cluster}}, "data": {cluster: data}})
}

/// Two meshes on one control plane: each data plane goes to the istiod
/// of its own namespace; a secret for an unknown server stays unmatched.
#[test]
fn data_planes_are_served_by_the_istiod_of_their_namespace() {
    let env = |id: &str| serde_json::json!({"pilot": {"env": {"EXTERNAL_ISTIOD": "true", "CLUSTER_ID": id}}});
    let cp = Objects {
        istios: vec![istio("mesh-a", "empty", env("a")), istio("mesh-b", "empty", env("b"))],
        remote_secrets: vec![
            remote_secret("mesh-a", "a", "https://dp:6443"),
            remote_secret("mesh-b", "b", "https://dp:6443/"),
            remote_secret("mesh-b", "x", "https://elsewhere:6443"),
        ],
        ..Default::default()
    };
    let remote = |name: &str, id: &str| {
        istio(
            name,
            "remote",
            serde_json::json!({"pilot": {"istiodRemote": {"injectionPath": format!("/inject/cluster/{id}/net/n1")}}}),
        )
    };
    let dp = Objects {
        istios: vec![remote("mesh-a", "a"), remote("mesh-b", "b")],
        ..Default::default()
    };
    let (clusters, edges) = build(&[snapshot("cp", "https://cp:6443", cp), snapshot("dp", "https://dp:6443", dp)]);
    let served: Vec<Option<&str>> = clusters[1].data_planes.iter().map(|d| d.istiod.as_deref()).collect();
    assert_eq!(served, vec![Some("cp/mesh-a/mesh-a"), Some("cp/mesh-b/mesh-b")]);
    assert_eq!(clusters[1].data_planes[0].cluster_id, "a");
    let secrets = &clusters[0].istiods[1].remote_secrets;
    assert_eq!(secrets[0].context.as_deref(), Some("dp"));
    assert_eq!(secrets[1].context, None, "no context reaches {}", secrets[1].server);
    let targets: Vec<(&str, &str)> = edges.iter().map(|e| (e.from.as_str(), e.to.as_str())).collect();
    assert!(targets.contains(&("cp/mesh-b/mesh-b", "https://elsewhere:6443")), "{targets:?}");
    assert!(targets.contains(&("dp/mesh-a/mesh-a", "cp/mesh-a/mesh-a")), "{targets:?}");
    assert_eq!(edges.len(), 5, "three secrets, two webhooks: {targets:?}");
}

#[test]
fn host_drops_the_port() {
    assert_eq!(host("10.0.0.1:15012"), "10.0.0.1");
    assert_eq!(host("10.0.0.1"), "10.0.0.1");
    assert_eq!(host("gw.example.com:15012"), "gw.example.com");
    assert_eq!(host("[fd00::1]:15012"), "fd00::1");
}
