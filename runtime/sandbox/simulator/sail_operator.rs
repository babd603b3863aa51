//! The simulated Sail Operator: writes the status the real operator writes on
//! `Istio` and `IstioCNI` (via the status subresource), creates the
//! ServiceAccount a `remote` config cluster gets, and holds a `remote` Istio
//! not-ready until an external control plane on another sandbox cluster holds
//! a remote secret that really authenticates to this cluster.
//!
//! Level-triggered: watchers (one set per cluster) keep in-memory stores and
//! signal "something changed"; after `delay` one round recomputes every
//! status from the stores and writes only what differs.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::SimulatedCluster;
use super::istio_status::{self, Facts};
use super::remote_access::{RETRY_AFTER, RemoteAccess, SecretSource};
use super::watched_cluster::{ClusterState, sail_resource, watch_cluster};

/// Runs until `cancel` fires.
pub async fn run(clusters: Vec<SimulatedCluster>, delay: Duration, cancel: CancellationToken) {
    let (changed, mut on_change) = watch::channel(());
    let mut watchers = JoinSet::new();
    let states: Vec<ClusterState> = clusters
        .into_iter()
        .map(|view| watch_cluster(view, &changed, &mut watchers))
        .collect();
    for state in &states {
        let ready = async {
            let _ = tokio::join!(
                state.istios.wait_until_ready(),
                state.cnis.wait_until_ready(),
                state.namespaces.wait_until_ready(),
                state.remote_secrets.wait_until_ready()
            );
        };
        tokio::select! { _ = ready => {}, _ = cancel.cancelled() => return }
    }
    // One operator per cluster, as in reality: each reconciles (and checks
    // remote access) on its own, concurrently with the others.
    let mut access: Vec<RemoteAccess> = states.iter().map(|_| RemoteAccess::default()).collect();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        // Events that arrived during the delay are handled by this round.
        on_change.borrow_and_update();
        let rounds = states
            .iter()
            .zip(access.iter_mut())
            .map(|(state, access)| reconcile(state, &states, access));
        futures::future::join_all(rounds).await;
        // Every operator ends its round (no short-circuit): each forgets the secrets it no longer uses.
        let retries: Vec<bool> = access.iter_mut().map(RemoteAccess::end_round).collect();
        let retry = retries.contains(&true);
        tokio::select! {
            _ = cancel.cancelled() => break,
            result = on_change.changed() => if result.is_err() { break },
            _ = tokio::time::sleep(RETRY_AFTER), if retry => {}
        }
    }
    watchers.abort_all();
}

/// One round for one cluster: every Istio and IstioCNI gets its status.
async fn reconcile(state: &ClusterState, all: &[ClusterState], access: &mut RemoteAccess) {
    let mut facts = Facts {
        namespaces: state
            .namespaces
            .state()
            .iter()
            .map(|ns| (ns.name_any(), ns.labels().clone().into_iter().collect::<BTreeMap<_, _>>()))
            .collect(),
        cni_default_state: state
            .cnis
            .state()
            .iter()
            .find(|c| c.name_any() == "default")
            .map(|c| c.data.pointer("/status/state").and_then(Value::as_str).map(str::to_string)),
        remote_istiod_ready: false,
    };
    for istio in state.istios.state() {
        let spec = istio.data.get("spec").cloned().unwrap_or(Value::Null);
        facts.remote_istiod_ready = istio_status::is_remote(&spec) && remote_reachable(state, all, access).await;
        let (conditions, extra) = istio_status::istio(&istio.name_any(), &spec, &facts);
        write_status(state, &istio, "Istio", &conditions, extra).await;
        if istio_status::renders_config_cluster_account(&spec) && conditions[0].status == "True" {
            ensure_service_account(state, &istio.name_any(), &spec).await;
        }
    }
    for cni in state.cnis.state() {
        let spec = cni.data.get("spec").cloned().unwrap_or(Value::Null);
        let (conditions, extra) = istio_status::istio_cni(&spec, &facts);
        write_status(state, &cni, "IstioCNI", &conditions, extra).await;
    }
}

/// Some other cluster runs an external control plane (an Istio with
/// `EXTERNAL_ISTIOD=true`) whose namespace holds a remote secret that
/// authenticates to `target`.
async fn remote_reachable(target: &ClusterState, all: &[ClusterState], access: &mut RemoteAccess) -> bool {
    for other in all.iter().filter(|c| c.view.name != target.view.name) {
        let namespaces: Vec<String> = other
            .istios
            .state()
            .iter()
            .filter_map(|i| i.data.get("spec"))
            .filter(|spec| istio_status::is_external_control_plane(spec))
            .map(|spec| spec.get("namespace").and_then(Value::as_str).unwrap_or("istio-system").to_string())
            .collect();
        for secret in other.remote_secrets.state() {
            let namespace = secret.namespace().unwrap_or_default();
            if !namespaces.contains(&namespace) {
                continue;
            }
            for (key, value) in secret.data.iter().flatten() {
                let source = SecretSource {
                    cluster: &other.view.name,
                    namespace: &namespace,
                    name: &secret.name_any(),
                    uid: secret.meta().uid.as_deref().unwrap_or(""),
                    resource_version: secret.meta().resource_version.as_deref().unwrap_or(""),
                    key,
                };
                if access.authenticates(&target.view, &source, &value.0).await {
                    return true;
                }
            }
        }
    }
    false
}

/// Patches `status` when it differs from what the object carries.
async fn write_status(state: &ClusterState, object: &DynamicObject, kind: &str, conditions: &[istio_status::Condition], extra: Value) {
    let generation = object.metadata.generation.unwrap_or(0);
    let previous = object.data.get("status");
    let now = k8s_openapi::jiff::Timestamp::now();
    let now = k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string();
    let status = istio_status::finish(conditions, extra, generation, previous, &now);
    if previous == Some(&status) {
        return;
    }
    let resource = if kind == "Istio" {
        sail_resource("Istio", "istios")
    } else {
        sail_resource("IstioCNI", "istiocnis")
    };
    let api = Api::<DynamicObject>::all_with(state.view.client.clone(), &resource);
    let name = object.name_any();
    let patch = Patch::Merge(json!({ "status": status }));
    match api.patch_status(&name, &PatchParams::default(), &patch).await {
        Ok(_) => eprintln!(
            "simulated sail-operator: {}: {kind} {name} generation {generation}: {}",
            state.view.name,
            status["state"].as_str().unwrap_or("?")
        ),
        Err(e) => eprintln!(
            "simulated sail-operator: {}: cannot write status of {kind} {name}: {e}",
            state.view.name
        ),
    }
}

/// ServiceAccount `istiod-<revision>` in the Istio's namespace, labelled as the istiod chart labels it.
async fn ensure_service_account(state: &ClusterState, istio_name: &str, spec: &Value) {
    let Some(namespace) = spec.get("namespace").and_then(Value::as_str) else {
        return;
    };
    let revision = istio_status::revision_name(istio_name, spec);
    let name = format!("istiod-{revision}");
    let api = Api::<ServiceAccount>::namespaced(state.view.client.clone(), namespace);
    if matches!(api.get_opt(&name).await, Ok(Some(_))) {
        return;
    }
    let release = format!("{revision}-istiod");
    let labels = [
        ("app", "istiod"),
        ("app.kubernetes.io/name", "istiod"),
        ("app.kubernetes.io/instance", release.as_str()),
        ("app.kubernetes.io/managed-by", "Helm"),
        ("app.kubernetes.io/part-of", "istio"),
        ("istio.io/rev", revision.as_str()),
        ("managed-by", "sail-operator"),
        ("release", release.as_str()),
    ];
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &account).await {
        Ok(_) => eprintln!(
            "simulated sail-operator: {}: created ServiceAccount {namespace}/{name}",
            state.view.name
        ),
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => eprintln!(
            "simulated sail-operator: {}: cannot create ServiceAccount {namespace}/{name}: {e}",
            state.view.name
        ),
    }
}
