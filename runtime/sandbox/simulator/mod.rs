//! Simulated controllers, for what cannot run in a sandbox without nodes.
//! Every log line they print starts with "simulated".

pub mod charts;
pub mod cluster_facts;
pub mod endpoints_twin;
pub mod helm_release;
pub mod ingress_gateway;
pub mod istio_status;
pub mod istio_values;
pub mod load_balancer;
pub mod readiness_probe;
pub mod remote_access;
pub mod sail_operator;
pub mod watched_cluster;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::cluster::ClusterHandle;

/// What a simulator needs of one sandbox cluster.
#[derive(Clone)]
pub struct SimulatedCluster {
    pub name: String,
    pub client: kube::Client,
    /// The cluster CA (PEM): identifies the cluster a remote secret points at.
    pub ca_pem: String,
    /// `https://127.0.0.1:PORT`
    pub server: String,
    /// kwok nodes run this cluster's pods (else workloads never become ready).
    pub nodes: bool,
}

impl From<&ClusterHandle> for SimulatedCluster {
    fn from(cluster: &ClusterHandle) -> Self {
        SimulatedCluster {
            name: cluster.name.clone(),
            client: cluster.client.clone(),
            ca_pem: cluster.certs.ca.cert_pem.clone(),
            server: cluster.server.clone(),
            nodes: !cluster.nodes.is_empty(),
        }
    }
}

/// Runs every simulator on every cluster until `cancel` fires;
/// `load_balancers[i]` are the addresses cluster `i` hands out.
pub async fn run(
    clusters: Vec<SimulatedCluster>,
    load_balancers: Vec<Vec<Ipv4Addr>>,
    charts: Arc<charts::Charts>,
    delay: Duration,
    ingress: Option<ingress_gateway::Network>,
    cancel: CancellationToken,
) {
    eprintln!("sandbox: simulated sail-operator and simulated load-balancer running (delay {delay:?})");
    let mut tasks = tokio::task::JoinSet::new();
    for (cluster, addresses) in clusters.iter().zip(load_balancers) {
        let (name, client) = (cluster.name.clone(), cluster.client.clone());
        tasks.spawn(load_balancer::run(name, client, addresses, delay, cancel.clone()));
    }
    tasks.spawn(ingress_gateway::run(clusters.clone(), ingress, cancel.clone()));
    tasks.spawn(sail_operator::run(clusters, charts, delay, cancel.clone()));
    while tasks.join_next().await.is_some() {}
}
