//! Two meshes on one control-plane cluster (external-multi-mesh.rhai): each
//! data plane served by its own istiod through its own gateway, no
//! collision; then a shared mesh ID made on purpose is named.

use std::path::PathBuf;

use mesh_run::status::model::Verdict;

use super::{failed, status_json};
use crate::support::{self, Test};

#[test]
fn two_meshes_on_one_control_plane() {
    let sandbox = support::sandbox("status-meshes", &["cp", "dp1", "dp2"]);
    let playbook = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("playbooks/external-multi-mesh.rhai");
    Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .args(["run", &playbook.display().to_string()])
        .args(["--set", "CTX_CONTROL_PLANE_CLUSTER=cp", "--set", "CTX_DATA_PLANE_CLUSTERS=dp1,dp2"])
        .run()
        .status(0);
    let kubeconfig = sandbox.kubeconfig();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        let (out, status) = status_json(&kubeconfig, &[]);
        if out.code == Some(0) || std::time::Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let failures: Vec<_> = status.failed().collect();
    assert!(status.healthy, "{failures:#?}");

    let cp = &status.clusters[0];
    let mut external: Vec<_> = cp.istiods.iter().filter(|i| i.external).collect();
    external.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    let shape: Vec<(&str, &str, &str, Option<&str>)> = external
        .iter()
        .map(|i| {
            (
                i.namespace.as_str(),
                i.mesh_id.as_str(),
                i.cluster_id.as_str(),
                i.gateway.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("external-istiod", "mesh1", "cluster1", Some("istio-system/istio-ingressgateway")),
            (
                "external-istiod-m2",
                "mesh2",
                "cluster2",
                Some("istio-system-m2/istio-ingressgateway")
            ),
        ]
    );
    for (k, istiod) in external.iter().enumerate() {
        let dp = &status.clusters[k + 1].data_planes[0];
        assert_eq!(dp.istiod.as_deref(), Some(istiod.id.as_str()), "{} served by its own istiod", dp.id);
    }
    let collision = status
        .checks
        .iter()
        .find(|c| c.check == "mesh.collision")
        .expect("a collision check on cp");
    assert_eq!(collision.verdict, Verdict::Pass, "{collision:?}");
    assert!(collision.message.starts_with("2 istiods, 2 gateways"), "{collision:?}");

    // The second mesh takes the first one's mesh ID: named, with advice. Status reads the
    // spec, so the check fails at once; the patch is undone right after.
    let patch = |mesh: &str| {
        let body = format!(r#"{{"spec":{{"values":{{"global":{{"meshID":"{mesh}"}}}}}}}}"#);
        let out = std::process::Command::new(sandbox.kubectl())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "--context",
                "cp",
                "patch",
                "istio",
                "external-istiod-m2",
                "--type=merge",
                "-p",
                &body,
            ])
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    patch("mesh1");
    let (out, status) = status_json(&kubeconfig, &[]);
    patch("mesh2");
    out.status(1);
    let check = failed(&status, "mesh.collision", "cp");
    assert!(
        check
            .message
            .contains("mesh ID mesh1 in namespaces external-istiod, external-istiod-m2"),
        "{check:?}"
    );
    assert!(
        check.advice.as_deref().unwrap().contains("its own namespace/revision, meshID"),
        "{check:?}"
    );
}
