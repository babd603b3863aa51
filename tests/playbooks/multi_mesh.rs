//! external-multi-mesh.rhai: two meshes, each with its own external control
//! plane, revision, ingress address and data plane, on one control plane.

use std::time::Instant;

use kube::api::Api;
use serde_json::json;

use super::*;
use crate::support;

const CLUSTERS: &[&str] = &["cp", "dp1", "dp2"];
const INPUTS: &[(&str, &str)] = &[("CTX_CONTROL_PLANE_CLUSTER", "cp"), ("CTX_DATA_PLANE_CLUSTERS", "dp1,dp2")];

#[tokio::test]
async fn two_meshes_on_one_control_plane_then_teardown() {
    let sandbox = support::sandbox("multi-mesh", CLUSTERS);
    let started = Instant::now();
    run(sandbox, "external-multi-mesh.rhai", INPUTS, &[]).status(0);
    eprintln!("external-multi-mesh.rhai: {:?}", started.elapsed());

    let cp = sandbox.client("cp").await;
    let addresses = [
        ingress_address(&cp, "istio-system").await,
        ingress_address(&cp, "istio-system-m2").await,
    ];
    assert_ne!(addresses[0], addresses[1], "each mesh has its own ingress address");
    // One ingress Istio for the cluster, shared by both meshes' gateways.
    let default = sail_object(&cp, "Istio", "istios", "default").await;
    assert_eq!(default["spec"]["namespace"], "istio-system");

    let meshes = [
        ("external-istiod", "istio-system", "ingressgateway", "dp1", "cluster1", "mesh1"),
        (
            "external-istiod-m2",
            "istio-system-m2",
            "ingressgateway-m2",
            "dp2",
            "cluster2",
            "mesh2",
        ),
    ];
    for ((rev, gateway_ns, label, context, cluster, mesh_id), address) in meshes.into_iter().zip(&addresses) {
        let xds = format!("{address}:15012");
        let external = sail_object(&cp, "Istio", "istios", rev).await;
        let values = &external["spec"]["values"];
        assert_eq!(external["spec"]["namespace"], rev);
        assert_eq!(values["meshConfig"]["rootNamespace"], rev);
        assert_eq!(values["meshConfig"]["defaultConfig"]["discoveryAddress"], xds.as_str());
        assert_eq!(values["global"]["caAddress"], xds.as_str());
        assert_eq!(values["global"]["meshID"], mesh_id);
        assert_eq!(values["global"]["multiCluster"]["clusterName"], cluster);
        assert_eq!(values["pilot"]["env"]["CLUSTER_ID"], cluster);
        assert_eq!(
            values["pilot"]["env"]["INJECTION_WEBHOOK_CONFIG_NAME"],
            format!("istio-sidecar-injector-{rev}-{rev}")
        );
        assert_eq!(
            values["pilot"]["env"]["VALIDATION_WEBHOOK_CONFIG_NAME"],
            format!("istio-validator-{rev}-{rev}")
        );
        assert_eq!(values["pilot"]["volumes"][0]["configMap"]["name"], format!("istio-{rev}"));
        assert_eq!(
            values["pilot"]["volumes"][1]["configMap"]["name"],
            format!("istio-sidecar-injector-{rev}")
        );
        assert_eq!(ready(&external), "True", "{rev}");

        let gateway = networking_object(&cp, "Gateway", "gateways", rev, &format!("{rev}-gw")).await;
        assert_eq!(gateway["spec"]["selector"], json!({"istio": label}), "{rev}: its own ingress");
        let vs = networking_object(&cp, "VirtualService", "virtualservices", rev, &format!("{rev}-vs")).await;
        assert_eq!(vs["spec"]["gateways"], json!([format!("{rev}-gw")]));
        for route in vs["spec"]["tls"].as_array().unwrap() {
            assert_eq!(
                route["route"][0]["destination"]["host"],
                format!("istiod-{rev}.{rev}.svc.cluster.local")
            );
        }
        if gateway_ns != "istio-system" {
            let deployments = Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(cp.clone(), gateway_ns);
            let gw = deployments
                .get("istio-ingressgateway")
                .await
                .expect("the mesh's gateway Deployment");
            let labels = gw.spec.unwrap().template.metadata.unwrap().labels.unwrap();
            assert_eq!(labels.get("istio").map(String::as_str), Some(label));
        }

        let dp = sandbox.client(context).await;
        let remote = sail_object(&dp, "Istio", "istios", rev).await;
        assert_eq!(remote["spec"]["namespace"], rev);
        assert_eq!(remote["spec"]["values"]["global"]["remotePilotAddress"], address.as_str());
        assert_eq!(
            remote["spec"]["values"]["pilot"]["istiodRemote"]["injectionPath"],
            format!("/inject/cluster/{cluster}/net/network1")
        );
        assert_eq!(ready(&remote), "True", "{context}");
        assert_eq!(
            ready(&sail_object(&dp, "IstioCNI", "istiocnis", "default").await),
            "True",
            "{context}"
        );
        let mesh = rendered::Mesh {
            namespace: rev,
            revision: rev,
            cluster_id: cluster,
            network: "network1",
            address,
            account: &format!("istiod-{rev}"),
        };
        rendered::assert_data_plane(&dp, &mesh).await;
        rendered::assert_control_plane(&cp, &mesh).await;
        rendered::assert_istiod_leads(sandbox.dir(), "cp", &dp, &mesh).await;
        // Each istiod leads its own data plane only.
        let other = if context == "dp1" { "cluster2" } else { "cluster1" };
        let clusters = rendered::istiod_debug(sandbox.dir(), "cp", rev, "/debug/clusterz");
        assert!(
            !clusters.as_array().unwrap().iter().any(|c| c["id"] == other),
            "istiod {rev} knows {other}: {clusters}"
        );
        if gateway_ns == "istio-system" {
            rendered::assert_gateway_available(&cp, gateway_ns).await;
        } else {
            // The second mesh's gateway is injected by the real `default` istiod (stdlib/gateway.rhai).
            rendered::assert_gateway_available(&cp, gateway_ns).await;
        }
        assert_remote_secret(
            sandbox,
            &cp,
            (rev, "istio-kubeconfig", "config"),
            cluster,
            &sandbox.server(context),
            &format!("system:serviceaccount:{rev}:istiod-{rev}"),
        )
        .await;
    }

    let rerun = run(sandbox, "external-multi-mesh.rhai", INPUTS, &["--output", "json"]);
    rerun.status(0);
    let changed = changed_steps(&rerun);
    assert!(changed.is_empty(), "a rerun changed: {changed:#?}");

    assert_teardown_leaves_nothing(sandbox, CLUSTERS, INPUTS).await;
}
