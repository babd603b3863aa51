//! external-multi-dataplane.rhai: one control plane, three data planes; the
//! first is the config cluster, the others are added as in section B; the
//! third on a network of its own (DATA_PLANE_NETWORKS), with east-west
//! gateways the real istiod finds, then moved back (gateways pruned).

use std::time::Instant;

use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use kube::api::Api;
use mesh_run::status::model::{Status, Verdict};
use serde_json::json;

use super::*;
use crate::support;

const CLUSTERS: &[&str] = &["cp", "dp1", "dp2", "dp3"];
const INPUTS: &[(&str, &str)] = &[("CTX_CONTROL_PLANE_CLUSTER", "cp"), ("CTX_DATA_PLANE_CLUSTERS", "dp1,dp2,dp3")];
const NETWORKS: (&str, &str) = ("DATA_PLANE_NETWORKS", "network1,network1,network2");

#[tokio::test]
async fn one_control_plane_three_data_planes_then_teardown() {
    let sandbox = support::sandbox("multi-dp", CLUSTERS);
    let started = Instant::now();
    let install = [INPUTS, &[NETWORKS]].concat();
    run(sandbox, "external-multi-dataplane.rhai", &install, &[]).status(0);
    eprintln!("external-multi-dataplane.rhai: {:?}", started.elapsed());

    let cp = sandbox.client("cp").await;
    let address = ingress_address(&cp, "istio-system").await;
    let external = sail_object(&cp, "Istio", "istios", "external-istiod").await;
    // The external istiod keeps the config cluster's ID.
    assert_eq!(external["spec"]["values"]["pilot"]["env"]["CLUSTER_ID"], "cluster1");
    assert_eq!(ready(&external), "True");

    // The config cluster: as in external.rhai.
    let dp1 = sandbox.client("dp1").await;
    let config = sail_object(&dp1, "Istio", "istios", "external-istiod").await;
    assert_eq!(config["spec"]["values"]["global"]["configCluster"], true);
    assert_eq!(ready(&config), "True");
    let mesh = |cluster_id, account| rendered::Mesh {
        namespace: "external-istiod",
        revision: "external-istiod",
        cluster_id,
        network: if cluster_id == "cluster3" { "network2" } else { "network1" },
        address: &address,
        account,
    };
    rendered::assert_data_plane(&dp1, &mesh("cluster1", "istiod-external-istiod")).await;
    rendered::assert_control_plane(&cp, &mesh("cluster1", "istiod-external-istiod")).await;
    rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp1, &mesh("cluster1", "istiod-external-istiod")).await;
    assert_remote_secret(
        sandbox,
        &cp,
        ("external-istiod", "istio-kubeconfig", "config"),
        "cluster1",
        &sandbox.server("dp1"),
        "system:serviceaccount:external-istiod:istiod-external-istiod",
    )
    .await;

    for (context, name) in [("dp2", "cluster2"), ("dp3", "cluster3")] {
        let dp = sandbox.client(context).await;
        let ns = Api::<Namespace>::all(dp.clone()).get("external-istiod").await.unwrap();
        let annotations = ns.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations.get("topology.istio.io/controlPlaneClusters").map(String::as_str),
            Some("cluster1"),
            "{context}"
        );
        // dp3 is on network2: istiod reads it from the namespace's label, the chart from values.
        let labels = ns.metadata.labels.unwrap_or_default();
        let network = labels.get("topology.istio.io/network").map(String::as_str);
        assert_eq!(network, (context == "dp3").then_some("network2"), "{context}: {labels:?}");
        let remote = sail_object(&dp, "Istio", "istios", "external-istiod").await;
        assert_eq!(remote["spec"]["profile"], "remote", "{context}");
        assert_eq!(remote["spec"]["namespace"], "external-istiod", "{context}");
        assert_eq!(remote["spec"]["version"], "v1.24.3", "{context}");
        assert_eq!(
            remote["spec"]["values"],
            remote_values(&address, name, network),
            "{context}: no configCluster, no pilot.configMap, its own injection path"
        );
        assert_eq!(ready(&remote), "True", "{context}");
        rendered::assert_data_plane(&dp, &mesh(name, "istio-reader-service-account")).await;
        rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp, &mesh(name, "istio-reader-service-account")).await;
        let cni = sail_object(&dp, "IstioCNI", "istiocnis", "default").await;
        assert_eq!(ready(&cni), "True", "{context}");
        Api::<ServiceAccount>::namespaced(dp.clone(), "external-istiod")
            .get("istio-reader-service-account")
            .await
            .expect("the reader account the remote secret uses");
        let secret_name = format!("istio-remote-secret-{name}");
        assert_remote_secret(
            sandbox,
            &cp,
            ("external-istiod", &secret_name, name),
            name,
            &sandbox.server(context),
            "system:serviceaccount:external-istiod:istio-reader-service-account",
        )
        .await;
    }

    let rerun = run(sandbox, "external-multi-dataplane.rhai", &install, &["--output", "json"]);
    rerun.status(0);
    let changed = changed_steps(&rerun);
    assert!(changed.is_empty(), "a rerun changed: {changed:#?}");

    // The real istiod's webhook injects dp3's pods with its cluster ID and network.
    let verify = [("CTX_DATA_PLANE_CLUSTER", "dp3"), ("POD_TIMEOUT", "60s")];
    run(sandbox, "verify.rhai", &verify, &[]).status(0);
    let dp3 = sandbox.client("dp3").await;
    for env in rendered::proxy_envs(&dp3, "app=helloworld").await {
        assert_eq!(env.get("ISTIO_META_CLUSTER_ID").map(String::as_str), Some("cluster3"), "{env:?}");
        assert_eq!(env.get("ISTIO_META_NETWORK").map(String::as_str), Some("network2"), "{env:?}");
    }

    // Two networks: an east-west gateway on dp1 (network1) and dp3 (network2), each known to the real istiod.
    let gateways = rendered::istiod_debug(sandbox.dir(), "cp", "external-istiod", "/debug/networkz");
    for (network, context) in [("network1", "dp1"), ("network2", "dp3")] {
        let client = sandbox.client(context).await;
        let service = Api::<Service>::namespaced(client, "external-istiod")
            .get("istio-eastwestgateway")
            .await
            .unwrap();
        let labels = service.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("topology.istio.io/network").map(String::as_str),
            Some(network),
            "{context}"
        );
        let address = service
            .status
            .and_then(|s| s.load_balancer?.ingress?.first()?.ip.clone())
            .unwrap_or_default();
        let known = gateways
            .as_array()
            .into_iter()
            .flatten()
            .any(|g| g["Network"] == network && g["Addr"] == address.as_str() && g["Port"] == 15443);
        assert!(known, "istiod knows {network}'s gateway at {address}: {gateways}");
    }
    assert!(
        east_west_of(&sandbox.client("dp2").await).await.is_none(),
        "one gateway per network: dp2 shares dp1's"
    );

    // `mesh-run status` sees dp3 on network2, consistently, with its east-west gateway.
    let (verdict, message) = network_check(sandbox, "network.consistency", "dp3");
    assert_eq!(verdict, Verdict::Pass, "{message}");
    assert!(message.starts_with("network network2: "), "{message}");
    assert_eq!(network_check(sandbox, "network.east-west", "dp3").0, Verdict::Pass);
    // Without it, status warns that the networks are not joined.
    Api::<Service>::namespaced(dp3.clone(), "external-istiod")
        .delete("istio-eastwestgateway", &Default::default())
        .await
        .unwrap();
    let (verdict, message) = network_check(sandbox, "network.east-west", "dp3");
    assert_eq!(verdict, Verdict::Warn, "{message}");
    assert!(message.contains("istiod's is network1"), "{message}");
    // A label changed by hand is named.
    let patch = json!({"metadata": {"labels": {"topology.istio.io/network": "network3"}}});
    Api::<Namespace>::all(dp3.clone())
        .patch(
            "external-istiod",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let (verdict, message) = network_check(sandbox, "network.consistency", "dp3");
    assert_eq!(verdict, Verdict::Fail, "{message}");
    assert!(message.contains("topology.istio.io/network label is network3"), "{message}");

    // Without DATA_PLANE_NETWORKS dp3 converges back to the mesh's network: label pruned, values rewritten.
    run(sandbox, "external-multi-dataplane.rhai", INPUTS, &[]).status(0);
    let ns = Api::<Namespace>::all(dp3.clone()).get("external-istiod").await.unwrap();
    let labels = ns.metadata.labels.unwrap_or_default();
    assert!(!labels.contains_key("topology.istio.io/network"), "{labels:?}");
    let remote = sail_object(&dp3, "Istio", "istios", "external-istiod").await;
    assert_eq!(remote["spec"]["values"], remote_values(&address, "cluster3", None));
    assert_eq!(network_check(sandbox, "network.consistency", "dp3").0, Verdict::Pass);
    for context in ["dp1", "dp3"] {
        assert!(
            east_west_of(&sandbox.client(context).await).await.is_none(),
            "{context}: east-west gateway pruned"
        );
    }
    assert_eq!(
        network_check(sandbox, "network.east-west", "dp3").0,
        Verdict::Pass,
        "no warning: one network"
    );

    assert_teardown_leaves_nothing(sandbox, CLUSTERS, INPUTS).await;
}

/// The values of a further data plane's remote Istio, on `network` when not the mesh's.
fn remote_values(address: &str, name: &str, network: Option<&str>) -> Value {
    let mut values = json!({"global": {"istioNamespace": "external-istiod", "remotePilotAddress": address},
        "pilot": {"istiodRemote": {"injectionPath": format!("/inject/cluster/{name}/net/{}", network.unwrap_or("network1"))}}});
    if let Some(network) = network {
        values["global"]["network"] = json!(network);
    }
    values
}

/// The verdict and message of check `name` about `context` in `mesh-run status`
/// (`Pass` with an empty message when the check is not reported at all).
fn network_check(sandbox: &SandboxHandle, name: &str, context: &str) -> (Verdict, String) {
    let out = crate::support::Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .args(["status", "--output", "json"])
        .run();
    let status: Status = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    let found = status.checks.iter().find(|c| c.check == name && c.cluster == context);
    found
        .map(|c| (c.verdict, c.message.clone()))
        .unwrap_or((Verdict::Pass, String::new()))
}

/// The east-west gateway's Service in the mesh's namespace, if any.
async fn east_west_of(client: &kube::Client) -> Option<Service> {
    Api::<Service>::namespaced(client.clone(), "external-istiod")
        .get_opt("istio-eastwestgateway")
        .await
        .unwrap()
}
