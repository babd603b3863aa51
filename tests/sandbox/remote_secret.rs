//! The cross-cluster dependency the simulated Sail Operator enforces: a
//! `remote` Istio on the data plane becomes Ready only once the external
//! control plane's namespace holds a remote secret whose kubeconfig really
//! authenticates to the data-plane API server. Own sandbox: other tests'
//! secrets must not make this one pass.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::{condition, istio_api, state_is};
use crate::support::{self, wait_for};

const NS: &str = "external-istiod";

async fn apply<K>(api: &Api<K>, object: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("test object");
    api.create(&PostParams::default(), &object).await.expect("create");
}

/// A kubeconfig for the data plane as `istioctl create-remote-secret` writes it, with `token`.
fn remote_kubeconfig(server: &str, ca_data: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca_data}\n    server: {server}\n  name: dp\n\
         contexts:\n- context:\n    cluster: dp\n    user: dp\n  name: dp\ncurrent-context: dp\n\
         users:\n- name: dp\n  user:\n    token: {token}\n"
    )
}

fn remote_secret(kubeconfig: &str) -> Value {
    json!({"metadata": {"name": "istio-remote-secret-dp", "namespace": NS,
        "labels": {"istio/multiCluster": "true"}, "annotations": {"networking.istio.io/cluster": "dp"}},
        "stringData": {"dp": kubeconfig}})
}

#[tokio::test]
async fn a_remote_istio_waits_for_a_remote_secret_that_authenticates() {
    let sandbox = support::sandbox("remote-secret", &["cp", "dp"]);
    let (cp, dp) = (sandbox.client("cp").await, sandbox.client("dp").await);
    for client in [&cp, &dp] {
        apply(&Api::<Namespace>::all(client.clone()), json!({"metadata": {"name": NS}})).await;
    }
    let dp_istios = istio_api(dp.clone());
    apply(
        &dp_istios,
        json!({"apiVersion": "sailoperator.io/v1", "kind": "Istio", "metadata": {"name": NS},
        "spec": {"namespace": NS, "version": "v1.30.3", "profile": "remote",
                 "values": {"global": {"configCluster": true, "remotePilotAddress": "172.18.1.1"}}}}),
    )
    .await;

    // The chart's ServiceAccount appears; the Istio waits for its control plane.
    let accounts: Api<ServiceAccount> = Api::namespaced(dp.clone(), NS);
    wait_for(
        accounts,
        "istiod-external-istiod",
        |sa: Option<&ServiceAccount>| sa.is_some(),
        Duration::from_secs(30),
    )
    .await;
    let waiting = wait_for(dp_istios.clone(), NS, state_is("RemoteIstiodNotReady"), Duration::from_secs(30)).await;
    assert_eq!(condition(&waiting, "Ready")["message"], "readiness probe on remote istiod failed");

    // The external control plane: Ready by itself (no version: the CRD default applies).
    let cp_istios = istio_api(cp.clone());
    apply(
        &cp_istios,
        json!({"apiVersion": "sailoperator.io/v1", "kind": "Istio", "metadata": {"name": NS},
        "spec": {"namespace": NS, "profile": "empty",
                 "values": {"pilot": {"env": {"EXTERNAL_ISTIOD": "true"}}}}}),
    )
    .await;
    wait_for(cp_istios, NS, state_is("Healthy"), Duration::from_secs(30)).await;

    // A token of the data plane's istiod ServiceAccount.
    let dp_secrets: Api<Secret> = Api::namespaced(dp.clone(), NS);
    apply(
        &dp_secrets,
        json!({"metadata": {"name": "istiod-token",
        "annotations": {"kubernetes.io/service-account.name": "istiod-external-istiod"}},
        "type": "kubernetes.io/service-account-token"}),
    )
    .await;
    let has_token = |s: Option<&Secret>| s.and_then(|s| s.data.as_ref()).is_some_and(|d| d.contains_key("token"));
    let token_secret = wait_for(dp_secrets, "istiod-token", has_token, Duration::from_secs(30)).await;
    let token = String::from_utf8(token_secret.data.unwrap()["token"].0.clone()).unwrap();

    let kubeconfig = kube::config::Kubeconfig::read_from(sandbox.kubeconfig()).unwrap();
    let dp_cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == "dp")
        .and_then(|c| c.cluster.clone())
        .unwrap();
    let (server, ca) = (dp_cluster.server.unwrap(), dp_cluster.certificate_authority_data.unwrap());

    // A secret with a wrong token: the simulated operator connects, is refused, and keeps waiting.
    let cp_secrets: Api<Secret> = Api::namespaced(cp.clone(), NS);
    apply(&cp_secrets, remote_secret(&remote_kubeconfig(&server, &ca, "not-a-valid-token"))).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = dp_istios.get(NS).await.unwrap();
    assert_eq!(
        still.data["status"]["state"], "RemoteIstiodNotReady",
        "a wrong token must not make it ready"
    );

    // The right token: now the data plane's Istio becomes Ready.
    let fixed = remote_secret(&remote_kubeconfig(&server, &ca, &token));
    cp_secrets
        .patch("istio-remote-secret-dp", &PatchParams::default(), &Patch::Merge(&fixed))
        .await
        .unwrap();
    let ready: DynamicObject = wait_for(dp_istios, NS, state_is("Healthy"), Duration::from_secs(30)).await;
    assert_eq!(condition(&ready, "Ready")["reason"], "Ready");
}
