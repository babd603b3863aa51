//! Istio's routing for TLS PASSTHROUGH gateways, on one cluster's objects:
//! which LoadBalancer ports have a route (the gateway listens there) and
//! where one connection goes, from its port and SNI.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::DynamicObject;
use serde::Deserialize;

/// The cluster domain of every sandbox cluster.
const SERVICE_SUFFIXES: &[&str] = &[".svc.cluster.local", ".svc"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    #[serde(default)]
    pub servers: Vec<Server>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    pub port: Number,
    #[serde(default)]
    pub hosts: Vec<String>,
    pub tls: Option<ServerTls>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Number {
    pub number: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerTls {
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct VirtualServiceSpec {
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub gateways: Vec<String>,
    #[serde(default)]
    pub tls: Vec<TlsRoute>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TlsRoute {
    #[serde(default, rename = "match")]
    pub matches: Vec<TlsMatch>,
    #[serde(default)]
    pub route: Vec<RouteDestination>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsMatch {
    pub port: Option<u32>,
    #[serde(default)]
    pub sni_hosts: Vec<String>,
    #[serde(default)]
    pub gateways: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RouteDestination {
    pub destination: Destination,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Destination {
    pub host: String,
    pub port: Option<Number>,
}

/// An Istio object of kind `Spec`, parsed from the watched DynamicObject.
#[derive(Debug, Clone)]
pub struct Parsed<Spec> {
    pub namespace: String,
    pub name: String,
    created: Option<Time>,
    pub spec: Spec,
}

impl<Spec: serde::de::DeserializeOwned + Default> Parsed<Spec> {
    pub fn from_object(object: &DynamicObject) -> Result<Self, String> {
        let spec = match object.data.get("spec") {
            Some(spec) => serde_json::from_value(spec.clone()).map_err(|e| e.to_string())?,
            None => Spec::default(),
        };
        Ok(Parsed {
            namespace: object.namespace().unwrap_or_default(),
            name: object.name_any(),
            created: object.metadata.creation_timestamp.clone(),
            spec,
        })
    }
}

pub type Gateway = Parsed<GatewaySpec>;
pub type VirtualService = Parsed<VirtualServiceSpec>;

/// Where a routed connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `namespace/name:port`, for the log.
    pub service: String,
    /// Ready endpoints, in EndpointSlice order.
    pub endpoints: Vec<SocketAddrV4>,
}

/// One cluster's objects, taken from the stores at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub services: Vec<Arc<Service>>,
    pub slices: Vec<Arc<EndpointSlice>>,
    pub gateways: Vec<Gateway>,
    /// Oldest first: Istio gives the older VirtualService precedence.
    pub virtual_services: Vec<VirtualService>,
}

impl Snapshot {
    pub fn new(
        services: Vec<Arc<Service>>,
        slices: Vec<Arc<EndpointSlice>>,
        gateways: Vec<Gateway>,
        mut virtual_services: Vec<VirtualService>,
    ) -> Snapshot {
        virtual_services.sort_by(|a, b| {
            let key = |v: &VirtualService| (v.created.as_ref().map(|t| t.0), v.namespace.clone(), v.name.clone());
            key(a).cmp(&key(b))
        });
        Snapshot {
            services,
            slices,
            gateways,
            virtual_services,
        }
    }

    /// `<LoadBalancer address>:<port>` for every port that a PASSTHROUGH
    /// server of a Gateway selecting the Service exposes and that a bound
    /// VirtualService has a TLS route for. Without such a route Istio builds
    /// no listener for the server, so nothing answers that port.
    pub fn listeners(&self) -> BTreeSet<SocketAddrV4> {
        let mut listeners = BTreeSet::new();
        for service in &self.services {
            let Some(ip) = load_balancer_ip(service) else { continue };
            for port in service_ports(service).filter_map(|p| u16::try_from(p.port).ok()) {
                let routed = self
                    .servers(service, port)
                    .any(|(gateway, _)| self.tls_routes(gateway, port).next().is_some());
                if routed {
                    listeners.insert(SocketAddrV4::new(ip, port));
                }
            }
        }
        listeners
    }

    /// The destination of a connection to `local` whose ClientHello named `sni`.
    pub fn route(&self, local: SocketAddrV4, sni: Option<&str>) -> Result<Upstream, String> {
        let (ip, port) = (*local.ip(), local.port());
        let service = (self.services.iter())
            .find(|s| load_balancer_ip(s) == Some(ip))
            .ok_or_else(|| format!("no LoadBalancer Service has {ip}"))?;
        for (gateway, server) in self.servers(service, port) {
            if !server.hosts.iter().any(|h| host_matches(h.rsplit('/').next().unwrap_or(h), sni)) {
                continue;
            }
            for (virtual_service, route, matched) in self.tls_routes(gateway, port) {
                let sni_hosts = if matched.sni_hosts.is_empty() {
                    &virtual_service.spec.hosts
                } else {
                    &matched.sni_hosts
                };
                if sni_hosts.iter().any(|h| host_matches(h, sni)) {
                    return self.upstream(virtual_service, route);
                }
            }
        }
        Err(format!(
            "no TLS route for port {port} and SNI {} on Service {}/{}",
            sni.unwrap_or("(none)"),
            service.namespace().unwrap_or_default(),
            service.name_any()
        ))
    }

    /// PASSTHROUGH servers on `port` of the Gateways selecting `service`'s
    /// pods (in any namespace: PILOT_SCOPE_GATEWAY_TO_NAMESPACE=false). Istio
    /// listens on the targetPort of the Service port numbered like the server;
    /// the sandbox forwards Service ports, so a server port must be one.
    fn servers<'a>(&'a self, service: &'a Service, port: u16) -> impl Iterator<Item = (&'a Gateway, &'a Server)> + 'a {
        let selector = service.spec.as_ref().and_then(|s| s.selector.as_ref());
        let exposed = service_ports(service).any(|p| p.port == i32::from(port));
        self.gateways
            .iter()
            .filter(move |g| exposed && selector.is_some_and(|s| !s.is_empty() && selects(&g.spec.selector, s)))
            .flat_map(|g| g.spec.servers.iter().map(move |server| (g, server)))
            .filter(move |(_, server)| server.port.number == Some(u32::from(port)) && is_passthrough(server))
    }

    /// TLS routes of VirtualServices bound to `gateway`, matching `port`.
    fn tls_routes<'a>(
        &'a self,
        gateway: &'a Gateway,
        port: u16,
    ) -> impl Iterator<Item = (&'a VirtualService, &'a TlsRoute, &'a TlsMatch)> + 'a {
        self.virtual_services.iter().flat_map(move |vs| {
            vs.spec.tls.iter().flat_map(move |route| {
                route.matches.iter().filter_map(move |m| {
                    let gateways = if m.gateways.is_empty() { &vs.spec.gateways } else { &m.gateways };
                    let bound = gateways.iter().any(|g| refers_to(g, &vs.namespace, gateway));
                    (bound && m.port.is_none_or(|p| p == u32::from(port))).then_some((vs, route, m))
                })
            })
        })
    }

    /// The first destination of `route`: its Service, port and ready endpoints.
    fn upstream(&self, virtual_service: &VirtualService, route: &TlsRoute) -> Result<Upstream, String> {
        let context = || format!("VirtualService {}/{}", virtual_service.namespace, virtual_service.name);
        let destination = &route
            .route
            .first()
            .ok_or_else(|| format!("{}: a TLS route without destination", context()))?
            .destination;
        let (namespace, name) = service_of(&destination.host, &virtual_service.namespace)
            .ok_or_else(|| format!("{}: {} is not a Service of this cluster", context(), destination.host))?;
        let service = (self.services.iter())
            .find(|s| s.namespace().as_deref() == Some(namespace) && s.name_any() == name)
            .ok_or_else(|| format!("{}: Service {namespace}/{name} does not exist", context()))?;
        let wanted = destination.port.as_ref().and_then(|p| p.number);
        let port = match wanted {
            Some(number) => service_ports(service).find(|p| i64::from(p.port) == i64::from(number)),
            None => service_ports(service).next(),
        };
        let port = port.ok_or_else(|| format!("{}: Service {namespace}/{name} has no port {}", context(), wanted.unwrap_or(0)))?;
        let endpoints = self.endpoints(namespace, name, port);
        let label = format!("{namespace}/{name}:{}", port.port);
        if endpoints.is_empty() {
            return Err(format!("Service {label} has no ready endpoint"));
        }
        Ok(Upstream { service: label, endpoints })
    }

    /// Ready IPv4 endpoints of Service `namespace/name`, on the slice port
    /// named like `port` (or else its numeric targetPort).
    fn endpoints(&self, namespace: &str, name: &str, port: &ServicePort) -> Vec<SocketAddrV4> {
        let slices = self.slices.iter().filter(|slice| {
            slice.namespace().as_deref() == Some(namespace)
                && slice.labels().get("kubernetes.io/service-name").map(String::as_str) == Some(name)
                && slice.address_type == "IPv4"
        });
        let mut endpoints = Vec::new();
        for slice in slices {
            let ports = slice.ports.iter().flatten();
            let named = ports
                .clone()
                .find(|p| p.name.as_deref().unwrap_or("") == port.name.as_deref().unwrap_or(""));
            let number = match (named.and_then(|p| p.port), &port.target_port) {
                (Some(number), _) => number,
                (None, Some(IntOrString::Int(number))) => *number,
                _ => continue,
            };
            let Ok(number) = u16::try_from(number) else { continue };
            let ready = slice
                .endpoints
                .iter()
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false));
            let addresses = ready.flat_map(|e| e.addresses.iter()).filter_map(|a| a.parse::<Ipv4Addr>().ok());
            endpoints.extend(addresses.map(|ip| SocketAddrV4::new(ip, number)));
        }
        endpoints
    }
}

/// `status.loadBalancer.ingress[0].ip` of a Service of type LoadBalancer.
pub fn load_balancer_ip(service: &Service) -> Option<Ipv4Addr> {
    if service.spec.as_ref()?.type_.as_deref() != Some("LoadBalancer") {
        return None;
    }
    let ingress = service.status.as_ref()?.load_balancer.as_ref()?.ingress.as_ref()?.first()?;
    ingress.ip.as_deref()?.parse().ok()
}

fn service_ports(service: &Service) -> impl Iterator<Item = &ServicePort> {
    service.spec.as_ref().and_then(|s| s.ports.as_ref()).into_iter().flatten()
}

fn is_passthrough(server: &Server) -> bool {
    server.tls.as_ref().and_then(|t| t.mode.as_deref()) == Some("PASSTHROUGH")
}

/// A Gateway's selector picks the pods of a Service whose selector has all its labels.
fn selects(gateway: &BTreeMap<String, String>, service: &BTreeMap<String, String>) -> bool {
    gateway.iter().all(|(key, value)| service.get(key) == Some(value))
}

/// A VirtualService's `gateways` entry: `name` (the VirtualService's namespace) or `namespace/name`.
fn refers_to(reference: &str, namespace: &str, gateway: &Gateway) -> bool {
    let (ns, name) = reference.split_once('/').unwrap_or((namespace, reference));
    ns == gateway.namespace && name == gateway.name
}

/// `*` matches everything (also no SNI), `*.example.com` its subdomains, anything else itself.
pub fn host_matches(pattern: &str, sni: Option<&str>) -> bool {
    if pattern == "*" {
        return true;
    }
    let Some(sni) = sni else { return false };
    match pattern.strip_prefix('*') {
        Some(suffix) => {
            suffix.starts_with('.') && sni.len() > suffix.len() && sni.to_ascii_lowercase().ends_with(&suffix.to_ascii_lowercase())
        }
        None => pattern.eq_ignore_ascii_case(sni),
    }
}

/// `(namespace, name)` of a destination host: `<svc>.<ns>.svc.cluster.local`,
/// `<svc>.<ns>.svc`, `<svc>.<ns>` or `<svc>` (in `namespace`).
fn service_of<'a>(host: &'a str, namespace: &'a str) -> Option<(&'a str, &'a str)> {
    let short = SERVICE_SUFFIXES.iter().find_map(|s| host.strip_suffix(s)).unwrap_or(host);
    match short.split('.').collect::<Vec<_>>()[..] {
        [name] if !name.is_empty() => Some((namespace, name)),
        [name, ns] if !name.is_empty() && !ns.is_empty() => Some((ns, name)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
