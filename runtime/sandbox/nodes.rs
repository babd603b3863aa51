//! The Nodes of a sandbox cluster: two Node objects per cluster that kwok
//! keeps Ready (fake kubelets), and kube-scheduler binds Pods to. Their
//! addresses come from the sandbox's network namespace: the API server may
//! dial Pod and Node IPs (webhooks, exec, logs), so nothing else will do.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::try_join_all;
use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeStatus};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::wait::await_condition;

use super::assets::Assets;
use super::cluster::ClusterHandle;
use super::{kwok, scheduler};
use crate::error::{Error, Result};

/// The annotation kwok is told to manage Nodes by (`--manage-nodes-with-annotation-selector`).
pub const KWOK_ANNOTATION: (&str, &str) = ("kwok.x-k8s.io/node", "fake");

/// Where one cluster's Pods and Nodes get their IPs: inside the sandbox's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddresses {
    /// kwok hands out Pod IPs from here, e.g. `198.18.4.0/24`.
    pub pod_cidr: String,
    /// One InternalIP per Node.
    pub node_ips: Vec<Ipv4Addr>,
}

/// What one cluster needs to get Nodes: the binaries and its addresses.
#[derive(Debug, Clone)]
pub struct NodeSetup {
    pub kube_scheduler: PathBuf,
    pub kwok: kwok::KwokAssets,
    pub addresses: NodeAddresses,
}

/// Per cluster, what it needs for Nodes; or `None` for every cluster, with
/// one stderr line saying why (no kube-scheduler in this Kubernetes, no
/// kwok built, no network namespace to take addresses from).
pub fn plan(assets: &Assets, addresses: Vec<Option<NodeAddresses>>) -> Vec<Option<NodeSetup>> {
    let none = |why: String| {
        eprintln!("sandbox: {why}: clusters run without kube-scheduler, kwok and Nodes (Pods stay Pending)");
        addresses.iter().map(|_| None).collect()
    };
    let Some(kube_scheduler) = assets.kube_scheduler.clone() else {
        return none(format!("no kube-scheduler in {}", assets.bin_dir().display()));
    };
    let kwok = match kwok::KwokAssets::locate() {
        Ok(kwok) => kwok,
        Err(e) => return none(e.to_string()),
    };
    if addresses.iter().any(Option::is_none) {
        return none("no network namespace to take Pod and Node addresses from".into());
    }
    addresses
        .into_iter()
        .map(|addresses| {
            addresses.map(|addresses| NodeSetup {
                kube_scheduler: kube_scheduler.clone(),
                kwok: kwok.clone(),
                addresses,
            })
        })
        .collect()
}

/// `kwok-node-1`, `kwok-node-2`, ...: one Node per address.
pub fn node_names(addresses: &NodeAddresses) -> Vec<String> {
    (1..=addresses.node_ips.len()).map(|i| format!("kwok-node-{i}")).collect()
}

/// Starts kube-scheduler and kwok for `cluster` and creates its Nodes;
/// `wait_ready` then says when they are Ready.
pub async fn start(cluster: &mut ClusterHandle, setup: &NodeSetup, apiserver_minor: u32) -> Result<()> {
    let scheduler = scheduler::start(cluster, &setup.kube_scheduler, apiserver_minor)?;
    cluster.processes.push(scheduler);
    let kwok = kwok::start(cluster, &setup.kwok, &setup.addresses)?;
    cluster.processes.push(kwok);
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let names = node_names(&setup.addresses);
    for (name, ip) in names.iter().zip(&setup.addresses.node_ips) {
        match nodes.create(&PostParams::default(), &node(name, *ip)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => {
                return Err(Error::Sandbox {
                    message: format!("cluster {}: cannot create Node {name}: {e}", cluster.name),
                });
            }
        }
    }
    cluster.nodes = names;
    Ok(())
}

/// Waits until every Node of `cluster` is Ready (kwok has taken it over).
pub async fn wait_ready(cluster: &ClusterHandle) -> Result<()> {
    const TIMEOUT: Duration = Duration::from_secs(60);
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let ready = try_join_all(
        cluster
            .nodes
            .iter()
            .map(|name| await_condition(nodes.clone(), name, |n: Option<&Node>| n.is_some_and(is_ready))),
    );
    match tokio::time::timeout(TIMEOUT, ready).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::Sandbox {
            message: format!("waiting for Nodes {}: {e}", cluster.nodes.join(", ")),
        }),
        Err(_) => Err(Error::Sandbox {
            message: format!(
                "Nodes {} not Ready after {TIMEOUT:?}; see {}",
                cluster.nodes.join(", "),
                cluster.dir.join("kwok.log").display()
            ),
        }),
    }
}

pub fn is_ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A Node as a kubelet would register it: capacity, addresses and the
/// well-known labels (DaemonSets such as istio-cni select `kubernetes.io/os`).
/// A Node's status may be set on create; kwok fills in the conditions.
pub fn node(name: &str, ip: Ipv4Addr) -> Node {
    let resources: BTreeMap<String, Quantity> = [("cpu", "32"), ("memory", "256Gi"), ("pods", "110")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect();
    let labels = [
        ("type", "kwok"),
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", go_arch()),
    ];
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            annotations: Some(BTreeMap::from([(KWOK_ANNOTATION.0.to_string(), KWOK_ANNOTATION.1.to_string())])),
            labels: Some(labels.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        },
        status: Some(NodeStatus {
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: ip.to_string(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: name.to_string(),
                },
            ]),
            capacity: Some(resources.clone()),
            allocatable: Some(resources),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// This machine's architecture as Kubernetes labels it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_managed_by_kwok_and_has_capacity_and_its_address() {
        let node = node("kwok-node-1", Ipv4Addr::new(198, 19, 0, 1));
        let value = serde_json::to_value(&node).unwrap();
        assert_eq!(value["metadata"]["annotations"]["kwok.x-k8s.io/node"], "fake");
        assert_eq!(value["metadata"]["labels"]["type"], "kwok");
        assert_eq!(value["metadata"]["labels"]["kubernetes.io/os"], "linux");
        for field in ["capacity", "allocatable"] {
            assert_eq!(
                value["status"][field],
                serde_json::json!({"cpu": "32", "memory": "256Gi", "pods": "110"})
            );
        }
        assert_eq!(
            value["status"]["addresses"][0],
            serde_json::json!({"type": "InternalIP", "address": "198.19.0.1"})
        );
        assert!(!is_ready(&node), "kwok, not the sandbox, makes a Node Ready");
    }

    #[test]
    fn one_node_per_address() {
        let addresses = NodeAddresses {
            pod_cidr: "198.18.0.0/24".into(),
            node_ips: vec![Ipv4Addr::new(198, 19, 0, 1), Ipv4Addr::new(198, 19, 0, 2)],
        };
        assert_eq!(node_names(&addresses), ["kwok-node-1", "kwok-node-2"]);
    }

    #[test]
    fn without_addresses_no_cluster_gets_nodes() {
        let assets = Assets {
            version: "x".into(),
            etcd: "/b/etcd".into(),
            kube_apiserver: "/b/kube-apiserver".into(),
            kube_controller_manager: None,
            kube_scheduler: None,
            kubectl: None,
        };
        let plans = plan(&assets, vec![None, None]);
        assert_eq!(plans.len(), 2);
        assert!(plans.iter().all(Option::is_none));
    }
}
