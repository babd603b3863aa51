//! The simulated LoadBalancer provider: every Service of type LoadBalancer
//! gets `status.loadBalancer.ingress[0].ip`, as a cloud provider or MetalLB
//! would assign, from the cluster's LoadBalancer addresses of the sandbox's
//! address plan. With a network namespace, that address is answered inside
//! it; without one, it is only data.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher::Event;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Addresses by Service uid: a Service keeps its address while it exists,
/// and a deleted Service's address goes back to the pool.
#[derive(Debug, Default)]
pub struct AddressPool {
    addresses: Vec<Ipv4Addr>,
    assigned: HashMap<String, Ipv4Addr>,
}

impl AddressPool {
    pub fn new(addresses: Vec<Ipv4Addr>) -> AddressPool {
        AddressPool {
            addresses,
            assigned: HashMap::new(),
        }
    }

    /// The address of `uid`: the one it has (`current`, if ours and not
    /// taken), the one it was given, or the lowest free one.
    pub fn address_for(&mut self, uid: &str, current: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
        let taken = |pool: &AddressPool, ip: &Ipv4Addr| pool.assigned.iter().any(|(other, a)| a == ip && other != uid);
        if let Some(ip) = current.filter(|ip| self.addresses.contains(ip) && !taken(self, ip)) {
            self.assigned.insert(uid.to_string(), ip);
        }
        if let Some(ip) = self.assigned.get(uid) {
            return Some(*ip);
        }
        let free = self.addresses.iter().copied().find(|ip| !taken(self, ip))?;
        self.assigned.insert(uid.to_string(), free);
        Some(free)
    }

    pub fn release(&mut self, uid: &str) {
        self.assigned.remove(uid);
    }

    /// After a full relist: Services not seen again are gone.
    pub fn retain(&mut self, present: &HashSet<String>) {
        self.assigned.retain(|uid, _| present.contains(uid));
    }
}

/// Runs until `cancel` fires.
pub async fn run(cluster: String, client: Client, addresses: Vec<Ipv4Addr>, delay: Duration, cancel: CancellationToken) {
    let services: Api<Service> = Api::all(client.clone());
    let mut stream = watcher(services, watcher::Config::default()).default_backoff().boxed();
    let mut pool = AddressPool::new(addresses);
    let mut relisted: HashSet<String> = HashSet::new();
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return,
            next = stream.next() => match next {
                Some(Ok(event)) => event,
                Some(Err(e)) => { eprintln!("simulated load-balancer: {cluster}: watching Services: {e}"); continue }
                None => return,
            },
        };
        let service = match event {
            Event::Init => {
                relisted.clear();
                continue;
            }
            Event::InitDone => {
                pool.retain(&relisted);
                continue;
            }
            Event::Delete(service) => {
                pool.release(&service.uid().unwrap_or_default());
                continue;
            }
            Event::InitApply(service) => {
                relisted.insert(service.uid().unwrap_or_default());
                service
            }
            Event::Apply(service) => service,
        };
        let uid = service.uid().unwrap_or_default();
        if service.spec.as_ref().and_then(|s| s.type_.as_deref()) != Some("LoadBalancer") {
            pool.release(&uid);
            continue;
        }
        let current = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .and_then(|ingress| ingress.first())
            .and_then(|ingress| ingress.ip.as_deref())
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
        let (namespace, name) = (service.namespace().unwrap_or_default(), service.name_any());
        let Some(ip) = pool.address_for(&uid, current) else {
            eprintln!("simulated load-balancer: {cluster}: Service {namespace}/{name}: every LoadBalancer address is in use");
            continue;
        };
        if current == Some(ip) {
            continue;
        }
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

    fn pool() -> AddressPool {
        AddressPool::new((1..=3).map(|n| Ipv4Addr::new(198, 18, 1, n)).collect())
    }

    #[test]
    fn a_service_keeps_its_address_and_a_deleted_ones_is_reused() {
        let mut pool = pool();
        let a = pool.address_for("a", None).unwrap();
        let b = pool.address_for("b", None).unwrap();
        assert_eq!(a, Ipv4Addr::new(198, 18, 1, 1));
        assert_ne!(a, b);
        assert_eq!(pool.address_for("a", None), Some(a));
        pool.release("a");
        assert_eq!(pool.address_for("c", None), Some(a));
    }

    #[test]
    fn an_address_already_in_the_status_is_kept_unless_another_service_has_it() {
        let mut pool = pool();
        let third = Ipv4Addr::new(198, 18, 1, 3);
        assert_eq!(pool.address_for("a", Some(third)), Some(third));
        assert_eq!(pool.address_for("b", Some(third)), Some(Ipv4Addr::new(198, 18, 1, 1)));
        // Not ours (the old 172.18 range): replaced.
        assert_eq!(
            pool.address_for("c", Some(Ipv4Addr::new(172, 18, 1, 1))),
            Some(Ipv4Addr::new(198, 18, 1, 2))
        );
        assert_eq!(pool.address_for("d", None), None);
        pool.retain(&HashSet::from(["a".to_string()]));
        assert_eq!(pool.address_for("d", None), Some(Ipv4Addr::new(198, 18, 1, 1)));
    }
}
