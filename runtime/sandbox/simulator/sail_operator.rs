//! The simulated Sail Operator. What it installs is real: for each `Istio`
//! an `IstioRevision` as Sail creates it, and for each revision the istiod
//! chart (and `base` for the revision `default`) rendered by Helm's engine
//! from the Istio snapshot, applied server-side with Sail's post-render
//! (owner, `managed-by` label); for each `IstioCNI` the CNI chart. What is
//! simulated is the reconcile loop and its rules (see `istio_status`): a
//! local revision is Ready when its istiod Deployment is; a `remote` one when
//! Sail's readiness probe (`readiness_probe`) reached its istiod through the
//! published address. Without a network namespace (no real istiod can run)
//! the stand-in of earlier versions decides instead: a remote secret on
//! another cluster that authenticates to this one.
//!
//! Level-triggered: watchers (one set per cluster) keep in-memory stores and
//! signal "something changed"; after `delay` one round recomputes every
//! object from the stores and writes only what differs.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::SimulatedCluster;
use super::charts::{Chart, Charts};
use super::cluster_facts::{cni_daemonset, istiod_deployment, remote_probe_verdict, remote_reachable, revision_counts};
use super::helm_release::{Installer, ObjectKey, owner_reference, post_render};
use super::istio_status::{self, Condition, Facts};
use super::istio_values;
use super::readiness_probe;
use super::remote_access::{RETRY_AFTER, RemoteAccess};
use super::watched_cluster::{ClusterState, sail_resource, watch_cluster};

const SAIL_API_VERSION: &str = "sailoperator.io/v1";

/// What one owner (an IstioRevision or IstioCNI, by uid) has installed.
struct Release {
    generation: i64,
    objects: BTreeSet<ObjectKey>,
    result: Result<(), String>,
    /// Helm's render errors repeat for the same generation; apply errors may pass.
    retry: bool,
}

/// One operator, for one cluster.
struct Operator {
    installer: Installer,
    releases: HashMap<String, Release>,
    access: RemoteAccess,
    /// The server's version, for the charts' capability checks.
    kube_version: String,
    nodes: bool,
    /// `spec.version`s already logged as rendered from the snapshot.
    logged_versions: HashSet<String>,
    /// `spec.values` of the IstioRevision CRD: what Sail's typed values can hold.
    values_schema: Arc<Value>,
}

/// Runs until `cancel` fires.
pub async fn run(clusters: Vec<SimulatedCluster>, charts: Arc<Charts>, delay: Duration, cancel: CancellationToken) {
    let (changed, mut on_change) = watch::channel(());
    let mut watchers = JoinSet::new();
    let states: Vec<ClusterState> = clusters
        .into_iter()
        .map(|view| watch_cluster(view, &changed, &mut watchers))
        .collect();
    let schema = tokio::task::spawn_blocking(|| {
        istio_values::values_schema(include_str!("../../../stdlib/manifests/crds/sailoperator.io_istiorevisions.yaml"))
    });
    let values_schema = Arc::new(schema.await.ok().flatten().unwrap_or(Value::Null));
    let mut operators = Vec::new();
    for state in &states {
        tokio::select! { _ = state.wait_until_ready() => {}, _ = cancel.cancelled() => return }
        operators.push(Operator::new(&state.view, values_schema.clone()).await);
        if charts.contained() {
            let revisions = state.revisions.clone();
            let is_remote = move |name: &str| {
                revisions
                    .state()
                    .iter()
                    .any(|r| r.name_any() == name && istio_status::is_remote(r.data.get("spec").unwrap_or(&Value::Null)))
            };
            let rule = charts.clone();
            let may_dial = move |ip| rule.may_dial(ip);
            let probe = readiness_probe::run(
                state.view.name.clone(),
                state.view.client.clone(),
                is_remote,
                may_dial,
                cancel.clone(),
            );
            watchers.spawn(probe);
        }
    }
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        // Events that arrived during the delay are handled by this round.
        on_change.borrow_and_update();
        // One operator per cluster, as in reality: each reconciles on its own, concurrently.
        let rounds = states
            .iter()
            .zip(operators.iter_mut())
            .map(|(state, operator)| operator.reconcile(state, &states, &charts));
        futures::future::join_all(rounds).await;
        // Every operator ends its round (no short-circuit): each forgets the secrets it no longer uses.
        let retries: Vec<bool> = operators.iter_mut().map(|o| o.end_round()).collect();
        let retry = retries.contains(&true);
        tokio::select! {
            _ = cancel.cancelled() => break,
            result = on_change.changed() => if result.is_err() { break },
            _ = tokio::time::sleep(RETRY_AFTER), if retry => {}
        }
    }
    watchers.abort_all();
}

impl Operator {
    async fn new(view: &SimulatedCluster, values_schema: Arc<Value>) -> Operator {
        let kube_version = match view.client.apiserver_version().await {
            Ok(info) => info.git_version.trim_start_matches('v').to_string(),
            Err(_) => crate::sandbox::assets::CURRENT_VERSION.to_string(),
        };
        Operator {
            installer: Installer::new(view.client.clone()),
            releases: HashMap::new(),
            access: RemoteAccess::default(),
            kube_version,
            nodes: view.nodes,
            logged_versions: HashSet::new(),
            values_schema,
        }
    }

    fn end_round(&mut self) -> bool {
        self.access.end_round() || self.releases.values().any(|r| r.retry)
    }

    /// One round for one cluster: every Istio gets its IstioRevision, every
    /// revision and IstioCNI its charts, and all of them their status.
    async fn reconcile(&mut self, state: &ClusterState, all: &[ClusterState], charts: &Charts) {
        let mut facts = self.facts(state);
        let mut live_owners = HashSet::new();
        for istio in state.istios.state() {
            let spec = istio.data.get("spec").cloned().unwrap_or(Value::Null);
            let revision_name = istio_status::revision_name(&istio.name_any(), &spec);
            let revision = match self.ensure_revision(state, &istio, &spec, &revision_name, charts).await {
                Ok(revision) => revision,
                Err(message) => {
                    let (conditions, extra) = istio_status::istio(&revision_name, Some(&message), &[], (0, 0, 0));
                    write_status(state, &istio, "Istio", &conditions, extra).await;
                    continue;
                }
            };
            live_owners.insert(revision.uid().unwrap_or_default());
            let revision_spec = revision.data.get("spec").cloned().unwrap_or(Value::Null);
            facts.remote_probe = if !istio_status::is_remote(&revision_spec) {
                Ok(())
            } else if charts.contained() {
                remote_probe_verdict(state, &revision_spec, &revision_name)
            } else if remote_reachable(state, all, &mut self.access).await {
                // No network namespace, no real istiod: today's stand-in for the probe.
                Ok(())
            } else {
                Err(istio_status::PROBE_FAILED.into())
            };
            facts.istiod = istiod_deployment(state, &revision_spec, &revision_name);
            let installed = self.install_revision(&revision, &revision_spec, &revision_name, charts).await;
            let conditions = istio_status::revision(&revision_name, &revision_spec, &facts, &installed);
            write_status(state, &revision, "IstioRevision", &conditions, json!({})).await;
            let counts = revision_counts(state, &istio, &revision_name, &conditions);
            let (conditions, extra) = istio_status::istio(&revision_name, None, &conditions, counts);
            write_status(state, &istio, "Istio", &conditions, extra).await;
        }
        for cni in state.cnis.state() {
            let spec = cni.data.get("spec").cloned().unwrap_or(Value::Null);
            live_owners.insert(cni.uid().unwrap_or_default());
            let installed = if istio_status::istio_spec_error(&spec).is_some() || istio_status::namespace_error(&spec, &facts).is_some() {
                Ok(())
            } else {
                self.install_cni(&cni, &spec, charts).await
            };
            facts.cni_daemonset = cni_daemonset(state, &spec);
            let (conditions, extra) = istio_status::istio_cni(&spec, &facts, &installed);
            write_status(state, &cni, "IstioCNI", &conditions, extra).await;
        }
        // Owners that are gone took their objects along (garbage collection).
        self.releases.retain(|uid, _| live_owners.contains(uid));
    }

    fn facts(&self, state: &ClusterState) -> Facts {
        Facts {
            namespaces: state
                .namespaces
                .state()
                .iter()
                .filter(|ns| ns.metadata.deletion_timestamp.is_none())
                .map(|ns| (ns.name_any(), ns.labels().clone().into_iter().collect::<BTreeMap<_, _>>()))
                .collect(),
            cni_default_state: state
                .cnis
                .state()
                .iter()
                .find(|c| c.name_any() == "default")
                .map(|c| c.data.pointer("/status/state").and_then(Value::as_str).map(str::to_string)),
            nodes: self.nodes,
            ..Facts::default()
        }
    }

    /// The IstioRevision of `istio`, created or updated server-side with the
    /// computed values; errors are the Istio's own (spec, profiles, the write).
    async fn ensure_revision(
        &mut self,
        state: &ClusterState,
        istio: &DynamicObject,
        spec: &Value,
        revision_name: &str,
        charts: &Charts,
    ) -> Result<DynamicObject, String> {
        if let Some(message) = istio_status::istio_spec_error(spec) {
            return Err(message);
        }
        let mut profiles = Vec::new();
        for name in istio_values::profile_names(spec) {
            profiles.push(charts.profile(&name).await.map_err(|e| format!("failed to apply profile: {e}"))?);
        }
        let mut values = istio_values::compute(&profiles, spec, revision_name);
        istio_values::prune_to_schema(&mut values, &self.values_schema);
        let desired = json!({
            "apiVersion": SAIL_API_VERSION,
            "kind": "IstioRevision",
            "metadata": {
                "name": revision_name,
                "ownerReferences": [owner_reference(istio, SAIL_API_VERSION, "Istio")],
            },
            "spec": {"version": spec["version"], "namespace": spec["namespace"], "values": values},
        });
        let revisions = sail_resource("IstioRevision", "istiorevisions");
        // Unchanged: no write. (Where the server pruned a values field the
        // specs never compare equal; the no-op apply that follows changes nothing.)
        if let Some(current) = state.revisions.state().into_iter().find(|r| r.name_any() == revision_name)
            && current.data.get("spec") == desired.get("spec")
            && current
                .owner_references()
                .iter()
                .any(|o| Some(&o.uid) == istio.metadata.uid.as_ref())
        {
            return Ok((*current).clone());
        }
        let api = Api::<DynamicObject>::all_with(state.view.client.clone(), &revisions);
        let params = PatchParams::apply("sail-operator").force();
        api.patch(revision_name, &params, &Patch::Apply(&desired))
            .await
            .map_err(|e| format!("failed to create or update IstioRevision {revision_name}: {e}"))
    }

    /// Renders and installs the revision's charts when its generation is new.
    async fn install_revision(&mut self, revision: &DynamicObject, spec: &Value, name: &str, charts: &Charts) -> Result<(), String> {
        let Some(namespace) = spec.get("namespace").and_then(Value::as_str) else {
            return Ok(());
        };
        let mut releases = vec![(Chart::Istiod, format!("{name}-istiod"))];
        if name == "default" {
            releases.insert(0, (Chart::Base, "default-base".to_string()));
        }
        let owner = owner_reference(revision, SAIL_API_VERSION, "IstioRevision");
        self.install(revision, &owner, namespace, &releases, &spec["values"], spec, charts)
            .await
    }

    async fn install_cni(&mut self, cni: &DynamicObject, spec: &Value, charts: &Charts) -> Result<(), String> {
        let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or("istio-cni");
        let mut profiles = Vec::new();
        for name in istio_values::profile_names(spec) {
            profiles.push(charts.profile(&name).await.map_err(|e| format!("failed to apply profile: {e}"))?);
        }
        let values = istio_values::compute_cni(&profiles, spec);
        let owner = owner_reference(cni, SAIL_API_VERSION, "IstioCNI");
        self.install(
            cni,
            &owner,
            namespace,
            &[(Chart::Cni, "istio-cni".to_string())],
            &values,
            spec,
            charts,
        )
        .await
    }

    /// Helm install/upgrade of `releases` for `owner`, once per generation
    /// (again after an apply error); prunes what the previous render had.
    #[allow(clippy::too_many_arguments)]
    async fn install(
        &mut self,
        object: &DynamicObject,
        owner: &Value,
        namespace: &str,
        releases: &[(Chart, String)],
        values: &Value,
        spec: &Value,
        charts: &Charts,
    ) -> Result<(), String> {
        let uid = object.uid().unwrap_or_default();
        let generation = object.metadata.generation.unwrap_or(0);
        let previous = self.releases.get(&uid);
        if let Some(release) = previous
            && release.generation == generation
            && !release.retry
        {
            return release.result.clone();
        }
        let before = previous.map(|r| r.objects.clone()).unwrap_or_default();
        let version = spec.get("version").and_then(Value::as_str).unwrap_or("?").to_string();
        if self.logged_versions.insert(version.clone()) {
            eprintln!(
                "simulated sail-operator: rendering spec.version {version} with the charts of istio.io/istio {} (the only Istio the module proxy serves)",
                charts.snapshot
            );
        }
        let mut rendered = Vec::new();
        for (chart, release) in releases {
            match charts.render(*chart, release, namespace, &self.kube_version, values).await {
                Ok(objects) => rendered.extend(objects),
                Err(message) => {
                    let result = Err(message);
                    self.releases.insert(
                        uid,
                        Release {
                            generation,
                            objects: before,
                            result: result.clone(),
                            retry: false,
                        },
                    );
                    return result;
                }
            }
        }
        for object in &mut rendered {
            post_render(object, owner);
        }
        let count = rendered.len();
        let (objects, result, retry) = match self.installer.install(namespace, rendered, &before).await {
            Ok(objects) => (objects, Ok(()), false),
            Err(message) => (before, Err(message), true),
        };
        if result.is_ok() {
            let kind = object.types.as_ref().map(|t| t.kind.as_str()).unwrap_or("object");
            eprintln!(
                "simulated sail-operator: {kind} {} generation {generation}: {count} rendered objects applied in {namespace}",
                object.name_any()
            );
        }
        self.releases.insert(
            uid,
            Release {
                generation,
                objects,
                result: result.clone(),
                retry,
            },
        );
        result
    }
}

/// Patches `status` when it differs from what the object carries.
async fn write_status(state: &ClusterState, object: &DynamicObject, kind: &str, conditions: &[Condition], extra: Value) {
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
    let resource = match kind {
        "Istio" => sail_resource("Istio", "istios"),
        "IstioRevision" => sail_resource("IstioRevision", "istiorevisions"),
        _ => sail_resource("IstioCNI", "istiocnis"),
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
