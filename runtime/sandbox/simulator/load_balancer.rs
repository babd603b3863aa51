//! The simulated LoadBalancer provider: every Service of type LoadBalancer
//! gets `status.loadBalancer.ingress[0].ip`, as a cloud provider or MetalLB
//! would assign. The addresses are only data: nothing listens on them.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The fake address of the `sequence`-th Service (from 1) on the
/// `cluster_index`-th cluster: `172.18.<index + 1>.<sequence>`, so addresses
/// differ across clusters (past 254 Services they run into the next block).
pub fn fake_ip(cluster_index: usize, sequence: u32) -> Ipv4Addr {
    let base = u32::from(Ipv4Addr::new(172, 18, 0, 0));
    Ipv4Addr::from(base + ((cluster_index as u32 + 1) << 8) + sequence)
}

/// Runs until `cancel` fires.
pub async fn run(cluster: String, client: Client, cluster_index: usize, delay: Duration, cancel: CancellationToken) {
    let services: Api<Service> = Api::all(client.clone());
    let mut stream = watcher(services, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    // Keyed by uid: a Service seen again before its status lands keeps its address.
    let mut assigned: HashMap<String, Ipv4Addr> = HashMap::new();
    loop {
        let service = tokio::select! {
            _ = cancel.cancelled() => return,
            next = stream.next() => match next {
                Some(Ok(service)) => service,
                Some(Err(e)) => { eprintln!("simulated load-balancer: {cluster}: watching Services: {e}"); continue }
                None => return,
            },
        };
        let wants_address = service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
        let has_address = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .is_some_and(|ingress| !ingress.is_empty());
        if !wants_address || has_address {
            continue;
        }
        let uid = service.uid().unwrap_or_default();
        let next = assigned.len() as u32 + 1;
        let ip = *assigned.entry(uid).or_insert_with(|| fake_ip(cluster_index, next));
        let (namespace, name) = (service.namespace().unwrap_or_default(), service.name_any());
        let (client, cluster, cancel) = (client.clone(), cluster.clone(), cancel.clone());
        tokio::spawn(async move {
            tokio::select! { _ = cancel.cancelled() => return, _ = tokio::time::sleep(delay) => {} }
            let api: Api<Service> = Api::namespaced(client, &namespace);
            let patch = Patch::Merge(json!({"status": {"loadBalancer": {"ingress": [{"ip": ip.to_string()}]}}}));
            match api.patch_status(&name, &PatchParams::default(), &patch).await {
                Ok(_) => eprintln!("simulated load-balancer: {cluster}: Service {namespace}/{name} gets {ip}"),
                Err(e) => {
                    eprintln!("simulated load-balancer: {cluster}: Service {namespace}/{name}: {e}")
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_differ_per_cluster_and_service() {
        assert_eq!(fake_ip(0, 1), Ipv4Addr::new(172, 18, 1, 1));
        assert_eq!(fake_ip(1, 1), Ipv4Addr::new(172, 18, 2, 1));
        assert_ne!(fake_ip(0, 2), fake_ip(0, 1));
    }
}
