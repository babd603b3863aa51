//! The command lines of one sandbox cluster's processes, and the ports they
//! listen on. Flags are chosen per Kubernetes version where they differ.

use std::path::Path;

use super::assets::Capabilities;
use crate::error::{Error, Result};

/// Ports reserved for one cluster.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub etcd_client: u16,
    pub etcd_peer: u16,
    pub apiserver: u16,
}

/// Free loopback ports for `count` clusters, all taken before any is released
/// so concurrent clusters never get the same one.
pub fn free_ports(count: usize) -> Result<Vec<Ports>> {
    let listeners = (0..count * 3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::Sandbox {
            message: format!("no free loopback port: {e}"),
        })?;
    let ports: Vec<u16> = listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.port()).collect();
    Ok(ports
        .chunks(3)
        .map(|p| Ports {
            etcd_client: p[0],
            etcd_peer: p[1],
            apiserver: p[2],
        })
        .collect())
}

/// The controllers a cluster with (kwok) Nodes and Pods needs: service-account
/// tokens and `default` accounts, namespace deletion, garbage collection,
/// Deployments, DaemonSets and StatefulSets down to Pods, EndpointSlices for Services,
/// PodDisruptionBudgets and HPAs (as Istio's charts render them; without a
/// metrics API an HPA keeps its replicas), Pod garbage collection, and Node
/// health from kwok's leases; ConfigMap `kube-root-ca.crt` in every namespace
/// (a Pod's service-account volume mounts it as `ca.crt`). No taint-eviction
/// controller (split out of the node lifecycle in 1.29): Pods are not evicted
/// from a NotReady Node. The names are the pre-1.28 ones, which 1.37 still
/// accepts as aliases.
const CONTROLLERS: &str = "serviceaccount-token,serviceaccount,namespace,garbagecollector,deployment,replicaset,\
daemonset,statefulset,endpointslice,endpointslicemirroring,disruption,horizontalpodautoscaling,podgc,nodelifecycle,\
root-ca-cert-publisher";

/// The first minor whose API server finds a Service's endpoints in its
/// EndpointSlices when it calls a webhook there (`--enable-aggregator-routing`,
/// which the sandbox needs without kube-proxy); before 1.34 it reads the
/// Service's `Endpoints`. Also used by the simulated Sail Operator
/// (`simulator/endpoints_twin.rs`) for the selectorless Services of charts.
pub const ROUTES_BY_ENDPOINT_SLICES: u32 = 34;

/// [`CONTROLLERS`], plus the Endpoints controller where the API server routes by `Endpoints`.
fn controllers(minor: u32) -> String {
    if minor < ROUTES_BY_ENDPOINT_SLICES {
        format!("{CONTROLLERS},endpoint")
    } else {
        CONTROLLERS.to_string()
    }
}

/// etcd on loopback, TLS only, with client certificates of its own CA
/// (`etcd-ca.crt`): on a shared machine any local user can reach a loopback
/// port, and etcd holds every Secret in clear. These flags mean the same in
/// etcd 3.4 (Kubernetes 1.20) through 3.7.
pub fn etcd_args(dir: &Path, ports: Ports, caps: Capabilities) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    let client = format!("https://127.0.0.1:{}", ports.etcd_client);
    let peer = format!("https://127.0.0.1:{}", ports.etcd_peer);
    let mut args = vec![
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=default={peer}"),
        format!("--cert-file={}", file("etcd-server.crt")),
        format!("--key-file={}", file("etcd-server.key")),
        format!("--trusted-ca-file={}", file("etcd-ca.crt")),
        "--client-cert-auth=true".into(),
        format!("--peer-cert-file={}", file("etcd-server.crt")),
        format!("--peer-key-file={}", file("etcd-server.key")),
        format!("--peer-trusted-ca-file={}", file("etcd-ca.crt")),
        "--peer-client-cert-auth=true".into(),
    ];
    if caps.etcd_unsafe_no_fsync {
        // A throwaway store: skipping fsync saves seconds of startup on slow disks.
        args.push("--unsafe-no-fsync=true".into());
    }
    args
}

pub fn apiserver_args(dir: &Path, ports: Ports) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    vec![
        format!("--etcd-servers=https://127.0.0.1:{}", ports.etcd_client),
        format!("--etcd-cafile={}", file("etcd-ca.crt")),
        format!("--etcd-certfile={}", file("apiserver-etcd-client.crt")),
        format!("--etcd-keyfile={}", file("apiserver-etcd-client.key")),
        format!("--secure-port={}", ports.apiserver),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        // The `kubernetes` Service's endpoints may not point at loopback; nothing here needs them.
        "--endpoint-reconciler-type=none".into(),
        format!("--cert-dir={}", dir.display()),
        format!("--tls-cert-file={}", file("apiserver.crt")),
        format!("--tls-private-key-file={}", file("apiserver.key")),
        format!("--client-ca-file={}", file("ca.crt")),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        format!("--service-account-key-file={}", file("sa.pub")),
        format!("--service-account-signing-key-file={}", file("sa.key")),
        "--authorization-mode=RBAC".into(),
        "--service-cluster-ip-range=10.96.0.0/12".into(),
        "--allow-privileged=true".into(),
        // Webhooks and aggregated APIs are called at their EndpointSlice addresses (the sandbox
        // network's), never at ClusterIPs: nothing routes those without kube-proxy.
        "--enable-aggregator-routing=true".into(),
        // exec/logs/port-forward dial the Node's InternalIP (in the sandbox's
        // network); the default tries its Hostname first, a DNS lookup that
        // would leave the machine.
        "--kubelet-preferred-address-types=InternalIP".into(),
        // Lean, still a real apiserver: no request queueing for a single user, no profiling endpoints.
        "--enable-priority-and-fairness=false".into(),
        "--profiling=false".into(),
    ]
}

pub fn controller_manager_args(dir: &Path, minor: u32) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    let mut args = vec![
        format!("--kubeconfig={}", file("kube-controller-manager.kubeconfig")),
        format!("--controllers={}", controllers(minor)),
        format!("--service-account-private-key-file={}", file("sa.key")),
        format!("--root-ca-file={}", file("ca.crt")),
        "--use-service-account-credentials=false".into(),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        // No HTTPS endpoint: nothing scrapes it, and several clusters would fight over 10257.
        "--secure-port=0".into(),
    ];
    if minor < 24 {
        // The insecure port (10252) was removed in 1.24; before that it must be switched off explicitly.
        args.push("--port=0".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_insecure_port_is_switched_off_only_where_it_exists() {
        let dir = Path::new("/d");
        assert!(controller_manager_args(dir, 20).contains(&"--port=0".to_string()));
        assert!(!controller_manager_args(dir, 37).iter().any(|a| a.starts_with("--port")));
    }

    #[test]
    fn etcd_is_reached_over_tls_with_client_certificates_only() {
        let dir = Path::new("/d");
        let ports = Ports {
            etcd_client: 2379,
            etcd_peer: 2380,
            apiserver: 6443,
        };
        let caps = Capabilities {
            apiserver_minor: 20,
            etcd_unsafe_no_fsync: false,
        };
        let etcd = etcd_args(dir, ports, caps);
        assert!(etcd.iter().all(|a| !a.contains("http://")), "{etcd:?}");
        for flag in [
            "--client-cert-auth=true",
            "--peer-client-cert-auth=true",
            "--trusted-ca-file=/d/etcd-ca.crt",
        ] {
            assert!(etcd.contains(&flag.to_string()), "{flag} missing from {etcd:?}");
        }
        let apiserver = apiserver_args(dir, ports);
        assert!(apiserver.contains(&"--etcd-servers=https://127.0.0.1:2379".to_string()));
        assert!(apiserver.contains(&"--etcd-certfile=/d/apiserver-etcd-client.crt".to_string()));
    }

    #[test]
    fn endpoints_are_maintained_where_the_api_server_routes_by_them() {
        let dir = Path::new("/d");
        let list = |minor| {
            controller_manager_args(dir, minor)
                .into_iter()
                .find(|a| a.starts_with("--controllers="))
                .unwrap()
        };
        assert!(list(30).split(',').any(|c| c == "endpoint"), "{}", list(30));
        assert!(!list(37).split(',').any(|c| c == "endpoint"), "{}", list(37));
        assert!(list(37).contains("endpointslice,"));
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(2).unwrap();
        let all: Vec<u16> = ports.iter().flat_map(|p| [p.etcd_client, p.etcd_peer, p.apiserver]).collect();
        let unique: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
    }
}
