//! Why a data plane is (or would be) `RemoteIstiodNotReady`, step by step in
//! the order the chain breaks: a control plane holds a secret for it → its
//! injection webhook exists → istiod patched the caBundle → the Service's
//! EndpointSlice points at the gateway's current address → Sail's readiness
//! probe passed → the cluster IDs agree → the namespace names istiod's
//! cluster as its control plane (further data planes only).

use serde_json::Value;

use super::graph::{self, istiod_service, text};
use super::model::{Check, Cluster, DataPlane, Istiod};
use super::read::Objects;

const PROBE_STATUS: &str = "sailoperator.io/readinessProbe.status";
const PROBE_REASON: &str = "sailoperator.io/readinessProbe.reason";
const CONTROL_PLANE_CLUSTERS: &str = "topology.istio.io/controlPlaneClusters";

/// The checks of one data plane `dp` on `cluster` (whose objects are
/// `objects`); `clusters` is the whole graph (to find its istiod and gateway).
pub fn checks(dp: &DataPlane, cluster: &Cluster, objects: &Objects, clusters: &[Cluster]) -> Vec<Check> {
    let ctx = cluster.context.as_str();
    let subject = dp.id.as_str();
    let mut out = Vec::new();
    let istiod = dp
        .istiod
        .as_deref()
        .and_then(|id| clusters.iter().flat_map(|c| c.istiods.iter()).find(|i| i.id == id));
    let secret = istiod.and_then(|i| i.remote_secrets.iter().find(|s| s.context.as_deref() == Some(ctx)));
    match (istiod, secret) {
        (Some(i), Some(s)) => out.push(Check::pass(
            "remote-istiod.control-plane",
            ctx,
            subject,
            format!("served by istiod {} through remote secret {}", i.id, s.name),
        )),
        _ => out.push(Check::fail(
            "remote-istiod.control-plane",
            ctx,
            subject,
            format!(
                "no control plane holds a remote secret for {ctx} ({}) among the contexts read: no istiod reads this cluster",
                cluster.server
            ),
            format!(
                "apply a remote secret to the external istiod's namespace: cp.apply(dp.create_remote_secret(#{{ type: \"remote\", name: \"{}\", namespace: \"{}\" }})), or rerun the install playbook (or add the control plane's context to --context)",
                dp.cluster_id, dp.namespace
            ),
        )),
    }

    // 1. The webhook configuration.
    let webhook = objects.webhooks.iter().find(|w| text(w, "/metadata/name") == dp.webhook);
    let Some(webhook) = webhook else {
        out.push(Check::fail(
            "remote-istiod.webhook",
            ctx,
            subject,
            format!("MutatingWebhookConfiguration {} not found", dp.webhook),
            format!(
                "the Sail Operator renders it from Istio {}: check that Istio's Reconciled condition",
                dp.name
            ),
        ));
        return out;
    };
    out.push(Check::pass(
        "remote-istiod.webhook",
        ctx,
        subject,
        format!("MutatingWebhookConfiguration {} present", dp.webhook),
    ));

    // 2. caBundle, patched in by the external istiod once it reaches this cluster.
    let hooks = webhook.get("webhooks").and_then(Value::as_array).cloned().unwrap_or_default();
    let unset: Vec<String> = hooks
        .iter()
        .filter(|h| text(h, "/clientConfig/caBundle").is_empty())
        .map(|h| text(h, "/name"))
        .collect();
    let leads = leadership(dp, objects, istiod);
    if unset.is_empty() && !hooks.is_empty() {
        out.push(Check::pass("remote-istiod.ca-bundle", ctx, subject, "caBundle set by istiod"));
    } else {
        let advice = match (&leads, istiod) {
            (Some(fail), _) => fail.advice.clone().unwrap_or_default(),
            (None, Some(i)) => format!(
                "istiod {} has not patched it: check its remote secret's credentials and its /debug/clusterz (below)",
                i.id
            ),
            (None, None) => "no istiod reads this cluster: apply its remote secret (see remote-istiod.control-plane)".into(),
        };
        out.push(Check::fail(
            "remote-istiod.ca-bundle",
            ctx,
            subject,
            format!(
                "caBundle not set on {} ({}): no istiod has taken this cluster on",
                dp.webhook,
                unset.join(", ")
            ),
            advice,
        ));
    }

    // 3. The address the webhook and the sidecars dial = the gateway's current one.
    out.push(address_check(dp, cluster, objects, istiod, clusters));

    // 4. Sail's readiness probe.
    let annotations = webhook.pointer("/metadata/annotations");
    let probe = annotations
        .map(|a| text(a, &format!("/{}", PROBE_STATUS.replace('/', "~1"))))
        .unwrap_or_default();
    let reason = annotations
        .map(|a| text(a, &format!("/{}", PROBE_REASON.replace('/', "~1"))))
        .unwrap_or_default();
    let probe_url = format!("https://{}.{}.svc:443/ready", istiod_service(&dp.revision), dp.namespace);
    out.push(match probe.as_str() {
        "true" => Check::pass("remote-istiod.probe", ctx, subject, format!("Sail's probe of {probe_url} passed")),
        "false" => Check::fail(
            "remote-istiod.probe",
            ctx,
            subject,
            format!("Sail's probe of {probe_url} failed: {}", if reason.is_empty() { "no reason given" } else { &reason }),
            "the probe reaches istiod through the control plane's gateway: check the Gateway/VirtualService in the istiod's namespace and that istiod is ready",
        ),
        _ => Check::fail(
            "remote-istiod.probe",
            ctx,
            subject,
            format!("no probe result on {} (annotation {PROBE_STATUS} missing)", dp.webhook),
            "Sail probes once the caBundle is set: fix the steps above, and check that the Sail Operator runs",
        ),
    });

    // 5. One cluster ID everywhere.
    if let (Some(i), Some(s)) = (istiod, secret) {
        let config_cluster = s.name == "istio-kubeconfig";
        let mut disagree = Vec::new();
        if s.cluster_name != dp.cluster_id {
            disagree.push(format!("remote secret {} says {}", s.name, s.cluster_name));
        }
        if config_cluster && i.cluster_id != dp.cluster_id {
            disagree.push(format!("istiod's CLUSTER_ID is {}", i.cluster_id));
        }
        out.push(if disagree.is_empty() {
            Check::pass("remote-istiod.cluster-id", ctx, subject, format!("cluster ID {} agrees", dp.cluster_id))
        } else {
            Check::fail(
                "remote-istiod.cluster-id",
                ctx,
                subject,
                format!("injection path {} names cluster {}, but {}", dp.injection_path, dp.cluster_id, disagree.join(" and ")),
                "use one name for the injection path, the remote secret's key/annotation and (config cluster) istiod's CLUSTER_ID: rerun the install playbook with consistent DATA_PLANE_CLUSTER_NAMES",
            )
        });
    }
    // 6. Leadership of a further data plane.
    if let Some(fail) = leads {
        out.push(fail);
    } else if istiod.is_some_and(|i| i.cluster_id != dp.cluster_id) {
        out.push(Check::pass(
            "remote-istiod.leadership",
            ctx,
            subject,
            format!("namespace {} names istiod's cluster in {CONTROL_PLANE_CLUSTERS}", dp.namespace),
        ));
    }
    out
}

/// A further data plane (not istiod's config cluster) is led by istiod only
/// if its namespace's `controlPlaneClusters` names istiod's cluster ID.
fn leadership(dp: &DataPlane, objects: &Objects, istiod: Option<&Istiod>) -> Option<Check> {
    let istiod = istiod?;
    if istiod.cluster_id == dp.cluster_id {
        return None;
    }
    let ns = objects.namespaces.iter().find(|n| text(n, "/metadata/name") == dp.namespace);
    let annotation = ns
        .map(|n| text(n, &format!("/metadata/annotations/{}", CONTROL_PLANE_CLUSTERS.replace('/', "~1"))))
        .unwrap_or_default();
    let named = annotation.split(',').map(str::trim).any(|c| c == istiod.cluster_id || c == "*");
    (!named).then(|| {
        let now = if annotation.is_empty() { "missing".to_string() } else { format!("\"{annotation}\"") };
        Check::fail(
            "remote-istiod.leadership",
            dp.id.split('/').next().unwrap_or_default(),
            &dp.id,
            format!(
                "namespace {} has {CONTROL_PLANE_CLUSTERS} {now}: istiod ({}) will not lead this cluster (no caBundle, no root certificate)",
                dp.namespace, istiod.cluster_id
            ),
            format!(
                "dp.annotate(\"namespace/{}\", #{{ \"{CONTROL_PLANE_CLUSTERS}\": \"{}\" }})",
                dp.namespace, istiod.cluster_id
            ),
        )
    })
}

fn address_check(dp: &DataPlane, cluster: &Cluster, objects: &Objects, istiod: Option<&Istiod>, clusters: &[Cluster]) -> Check {
    let ctx = cluster.context.as_str();
    let service = istiod_service(&dp.revision);
    let gateway = istiod.and_then(|i| {
        let owner = clusters.iter().find(|c| c.istiods.iter().any(|x| x.id == i.id))?;
        let id = i.gateway.as_ref()?;
        owner.gateways.iter().find(|g| &format!("{}/{}", g.namespace, g.name) == id)
    });
    let (expected, source) = match gateway {
        Some(g) if !g.address.is_empty() => (g.address.clone(), format!("gateway {}/{}", g.namespace, g.name)),
        _ => (dp.remote_pilot_address.clone(), "remotePilotAddress".to_string()),
    };
    let svc = objects
        .services
        .iter()
        .find(|s| text(s, "/metadata/namespace") == dp.namespace && text(s, "/metadata/name") == service);
    let external_name = svc.map(|s| text(s, "/spec/externalName")).unwrap_or_default();
    let addresses: Vec<String> = objects
        .endpoint_slices
        .iter()
        .filter(|s| text(s, "/metadata/namespace") == dp.namespace)
        .filter(|s| text(s, "/metadata/labels/kubernetes.io~1service-name") == service)
        .flat_map(|s| s.get("endpoints").and_then(Value::as_array).cloned().unwrap_or_default())
        .flat_map(|e| e.get("addresses").and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let rerender = format!(
        "rerun the install playbook: it renders remotePilotAddress (and the Service/EndpointSlice {service}) from the gateway's current address {expected}"
    );
    if svc.is_none() {
        return Check::fail(
            "remote-istiod.address",
            ctx,
            &dp.id,
            format!("Service {}/{service} not found", dp.namespace),
            format!("the Sail Operator renders it when remotePilotAddress is set: {rerender}"),
        );
    }
    let found = if external_name.is_empty() {
        addresses.join(", ")
    } else {
        external_name
    };
    let host = graph::host(&expected);
    if found.split(", ").any(|a| a == host) {
        Check::pass(
            "remote-istiod.address",
            ctx,
            &dp.id,
            format!("{service} points at {found} = {source}"),
        )
    } else {
        let found = if found.is_empty() { "nothing".to_string() } else { found };
        Check::fail(
            "remote-istiod.address",
            ctx,
            &dp.id,
            format!("{service} points at {found}, but {source} is at {expected}"),
            rerender,
        )
    }
}
