//! The watched state of one sandbox cluster, for the simulated Sail Operator:
//! in-memory stores fed by watchers (no polling); every event pokes one
//! "something changed" channel.

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::SimulatedCluster;

pub fn sail_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("sailoperator.io", "v1", kind), plural)
}

/// The watched state of one cluster.
pub struct ClusterState {
    pub view: SimulatedCluster,
    pub istios: Store<DynamicObject>,
    pub revisions: Store<DynamicObject>,
    pub cnis: Store<DynamicObject>,
    pub namespaces: Store<Namespace>,
    /// Secrets labelled `istio/multiCluster=true`, all namespaces.
    pub remote_secrets: Store<Secret>,
    /// istiod Deployments (`app=istiod`), for a local revision's readiness.
    pub deployments: Store<Deployment>,
    /// CNI DaemonSets (`k8s-app=istio-cni-node`), for an IstioCNI's readiness.
    pub daemonsets: Store<DaemonSet>,
    /// Injection webhook configurations the operator installed (`managed-by=sail-operator`):
    /// their readiness-probe annotations are a remote revision's Ready.
    pub webhooks: Store<MutatingWebhookConfiguration>,
}

impl ClusterState {
    /// Every store has had its first list.
    pub async fn wait_until_ready(&self) {
        let _ = tokio::join!(
            self.istios.wait_until_ready(),
            self.revisions.wait_until_ready(),
            self.cnis.wait_until_ready(),
            self.namespaces.wait_until_ready(),
            self.remote_secrets.wait_until_ready(),
            self.deployments.wait_until_ready(),
            self.daemonsets.wait_until_ready(),
            self.webhooks.wait_until_ready()
        );
    }
}

/// Starts the watchers of one cluster; each event pokes `changed`.
pub fn watch_cluster(view: SimulatedCluster, changed: &watch::Sender<()>, tasks: &mut JoinSet<()>) -> ClusterState {
    let client = &view.client;
    let istio = sail_resource("Istio", "istios");
    let cni = sail_resource("IstioCNI", "istiocnis");
    let revision = sail_resource("IstioRevision", "istiorevisions");
    let revision_writer = reflector::store::Writer::new(revision.clone());
    let revisions = revision_writer.as_reader();
    let (deployments, deployment_writer) = reflector::store();
    let (daemonsets, daemonset_writer) = reflector::store();
    let (webhooks, webhook_writer) = reflector::store();
    let istio_writer = reflector::store::Writer::new(istio.clone());
    let cni_writer = reflector::store::Writer::new(cni.clone());
    let (istios, cnis) = (istio_writer.as_reader(), cni_writer.as_reader());
    let (namespaces, ns_writer) = reflector::store();
    let (remote_secrets, secret_writer) = reflector::store();
    let config = watcher::Config::default();
    let labelled = watcher::Config::default().labels("istio/multiCluster=true");
    let name = view.name.clone();
    let drive = |stream: futures::stream::BoxStream<'static, Result<(), watcher::Error>>, what: &'static str| {
        let (changed, name) = (changed.clone(), name.clone());
        async move {
            let mut stream = stream;
            while let Some(event) = stream.next().await {
                match event {
                    Ok(()) => changed.send_replace(()),
                    // Recoverable: the watcher backs off and resumes by itself.
                    Err(e) => eprintln!("simulated sail-operator: {name}: watching {what}: {e}"),
                }
            }
        }
    };
    let istio_api = Api::<DynamicObject>::all_with(client.clone(), &istio);
    let cni_api = Api::<DynamicObject>::all_with(client.clone(), &cni);
    let ns_api = Api::<Namespace>::all(client.clone());
    let secret_api = Api::<Secret>::all(client.clone());
    let revision_api = Api::<DynamicObject>::all_with(client.clone(), &revision);
    let deployment_api = Api::<Deployment>::all(client.clone());
    let daemonset_api = Api::<DaemonSet>::all(client.clone());
    tasks.spawn(drive(
        reflector::reflector(revision_writer, watcher(revision_api, config.clone()).default_backoff())
            .map(unit)
            .boxed(),
        "IstioRevision",
    ));
    let istiods = watcher::Config::default().labels("app=istiod");
    tasks.spawn(drive(
        reflector::reflector(deployment_writer, watcher(deployment_api, istiods).default_backoff())
            .map(unit)
            .boxed(),
        "Deployment",
    ));
    let managed = watcher::Config::default().labels("managed-by=sail-operator");
    tasks.spawn(drive(
        reflector::reflector(
            webhook_writer,
            watcher(Api::<MutatingWebhookConfiguration>::all(client.clone()), managed).default_backoff(),
        )
        .map(unit)
        .boxed(),
        "MutatingWebhookConfiguration",
    ));
    let cni_nodes = watcher::Config::default().labels("k8s-app=istio-cni-node");
    tasks.spawn(drive(
        reflector::reflector(daemonset_writer, watcher(daemonset_api, cni_nodes).default_backoff())
            .map(unit)
            .boxed(),
        "DaemonSet",
    ));
    tasks.spawn(drive(
        reflector::reflector(istio_writer, watcher(istio_api, config.clone()).default_backoff())
            .map(unit)
            .boxed(),
        "Istio",
    ));
    tasks.spawn(drive(
        reflector::reflector(cni_writer, watcher(cni_api, config.clone()).default_backoff())
            .map(unit)
            .boxed(),
        "IstioCNI",
    ));
    tasks.spawn(drive(
        reflector::reflector(ns_writer, watcher(ns_api, config).default_backoff())
            .map(unit)
            .boxed(),
        "Namespace",
    ));
    tasks.spawn(drive(
        reflector::reflector(secret_writer, watcher(secret_api, labelled).default_backoff())
            .map(unit)
            .boxed(),
        "Secret",
    ));
    ClusterState {
        view,
        istios,
        revisions,
        cnis,
        namespaces,
        remote_secrets,
        deployments,
        daemonsets,
        webhooks,
    }
}

/// Events only say "changed": the stores hold the objects.
fn unit<T>(event: Result<T, watcher::Error>) -> Result<(), watcher::Error> {
    event.map(|_| ())
}
