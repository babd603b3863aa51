//! Sail's readiness probe of a remote istiod, as the simulated operator runs
//! it: a `remote` Istio on a data plane stays RemoteIstiodNotReady, and the
//! annotations on its injection webhook configuration say why — no caBundle
//! yet (no istiod reached this cluster), then the address that does not
//! answer. Own sandbox: other tests' Istios must not interfere.

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use super::{condition, istio_api, state_is};
use crate::support::{self, wait_for};

const NS: &str = "external-istiod";
const WEBHOOK: &str = "istio-sidecar-injector-external-istiod-external-istiod";

async fn create<K>(api: &Api<K>, object: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("test object");
    api.create(&PostParams::default(), &object).await.expect("create")
}

fn probe_reason(webhook: Option<&MutatingWebhookConfiguration>, part: &str) -> bool {
    webhook.is_some_and(|w| {
        let annotations = w.metadata.annotations.clone().unwrap_or_default();
        annotations.get("sailoperator.io/readinessProbe.status").map(String::as_str) == Some("false")
            && annotations
                .get("sailoperator.io/readinessProbe.reason")
                .is_some_and(|r| r.contains(part))
    })
}

#[tokio::test]
async fn a_remote_istio_is_ready_only_through_the_probe_and_the_annotations_say_why() {
    let sandbox = support::sandbox("readiness-probe", &["cp", "dp"]);
    let dp = sandbox.client("dp").await;
    create(&Api::<Namespace>::all(dp.clone()), json!({"metadata": {"name": NS}})).await;

    // An address of the sandbox's own network where nothing listens: a LoadBalancer's.
    let services: Api<Service> = Api::namespaced(dp.clone(), NS);
    create(
        &services,
        json!({"metadata": {"name": "nobody"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 15017, "protocol": "TCP"}]}}),
    )
    .await;
    let has_ip = |s: Option<&Service>| {
        s.and_then(|s| s.status.as_ref()?.load_balancer.as_ref()?.ingress.as_ref()?.first()?.ip.clone())
            .is_some()
    };
    let lb = wait_for(services, "nobody", has_ip, Duration::from_secs(30)).await;
    let address = lb.status.unwrap().load_balancer.unwrap().ingress.unwrap()[0].ip.clone().unwrap();

    let istios = istio_api(dp.clone());
    create(
        &istios,
        json!({"apiVersion": "sailoperator.io/v1", "kind": "Istio", "metadata": {"name": NS},
        "spec": {"namespace": NS, "version": "v1.24.3", "profile": "remote",
                 "values": {"global": {"configCluster": true, "remotePilotAddress": address}}}}),
    )
    .await;
    let waiting = wait_for(istios.clone(), NS, state_is("RemoteIstiodNotReady"), Duration::from_secs(60)).await;
    assert_eq!(condition(&waiting, "Ready")["reason"], "RemoteIstiodNotReady");

    // No istiod patched the caBundle: the probe says so on the webhook configuration.
    let webhooks: Api<MutatingWebhookConfiguration> = Api::all(dp.clone());
    let no_ca = |w: Option<&MutatingWebhookConfiguration>| probe_reason(w, "check if the remote istiod can access this cluster");
    wait_for(webhooks.clone(), WEBHOOK, no_ca, Duration::from_secs(30)).await;
    let probe_failed = |istio: Option<&kube::api::DynamicObject>| {
        istio.is_some_and(|i| condition(i, "Ready")["message"] == "readiness probe on remote istiod failed")
    };
    let waiting = wait_for(istios.clone(), NS, probe_failed, Duration::from_secs(30)).await;
    assert_eq!(condition(&waiting, "Ready")["reason"], "RemoteIstiodNotReady");

    // A caBundle (any CA): the probe now calls the EndpointSlice address, which refuses.
    let ca = rcgen::generate_simple_self_signed(vec!["istiod-external-istiod.external-istiod.svc".to_string()]).unwrap();
    let mut webhook = webhooks.get(WEBHOOK).await.unwrap();
    for hook in webhook.webhooks.iter_mut().flatten() {
        hook.client_config.ca_bundle = Some(k8s_openapi::ByteString(ca.cert.pem().into_bytes()));
    }
    webhooks.replace(WEBHOOK, &PostParams::default(), &webhook).await.unwrap();
    let refused = |w: Option<&MutatingWebhookConfiguration>| probe_reason(w, &format!("{address}:15017"));
    wait_for(webhooks, WEBHOOK, refused, Duration::from_secs(30)).await;
    assert_eq!(istios.get(NS).await.unwrap().data["status"]["state"], "RemoteIstiodNotReady");
}
