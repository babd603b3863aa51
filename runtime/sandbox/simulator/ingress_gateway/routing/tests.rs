//! Unit tests of the gateway's routing, kept apart to keep routing.rs short.

use super::*;
use serde_json::{Value, json};

const LB: Ipv4Addr = Ipv4Addr::new(198, 18, 5, 130);

fn object<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).unwrap()
}

fn gateway_service(selector: Value) -> Arc<Service> {
    Arc::new(object(json!({
        "metadata": {"name": "istio-ingressgateway", "namespace": "gw"},
        "spec": {"type": "LoadBalancer", "selector": selector, "ports": [
            {"name": "status-port", "port": 15021}, {"name": "tls-xds", "port": 15012}, {"name": "tls-webhook", "port": 15017}]},
        "status": {"loadBalancer": {"ingress": [{"ip": LB.to_string()}]}}})))
}

fn istiod() -> Vec<Arc<Service>> {
    vec![Arc::new(object(json!({
        "metadata": {"name": "istiod", "namespace": "ext"},
        "spec": {"selector": {"app": "istiod"}, "ports": [
            {"name": "grpc-xds", "port": 15012, "targetPort": 15012},
            {"name": "https-webhook", "port": 443, "targetPort": 15017}]}})))]
}

fn slice(addresses: &[(&str, Option<bool>)]) -> Arc<EndpointSlice> {
    let endpoints: Vec<Value> = (addresses.iter())
        .map(|(ip, ready)| json!({"addresses": [ip], "conditions": {"ready": ready}}))
        .collect();
    Arc::new(object(json!({
        "metadata": {"name": "istiod-x", "namespace": "ext", "labels": {"kubernetes.io/service-name": "istiod"}},
        "addressType": "IPv4", "endpoints": endpoints,
        "ports": [{"name": "grpc-xds", "port": 15012}, {"name": "https-webhook", "port": 15017}]})))
}

fn dynamic(namespace: &str, name: &str, spec: Value) -> DynamicObject {
    object(json!({"apiVersion": "networking.istio.io/v1", "kind": "X",
        "metadata": {"name": name, "namespace": namespace}, "spec": spec}))
}

/// The procedure's Gateway (external-istiod-gw.yaml), selecting `istio: ingressgateway`.
fn gateway(namespace: &str, ports: &[u32]) -> Gateway {
    let servers: Vec<Value> = (ports.iter())
        .map(|p| json!({"port": {"number": p, "protocol": "tls", "name": format!("tls-{p}")}, "tls": {"mode": "PASSTHROUGH"}, "hosts": ["*"]}))
        .collect();
    Gateway::from_object(&dynamic(
        namespace,
        "gw",
        json!({"selector": {"istio": "ingressgateway"}, "servers": servers}),
    ))
    .unwrap()
}

fn virtual_service(namespace: &str, gateways: Value, tls: Value) -> VirtualService {
    VirtualService::from_object(&dynamic(namespace, "vs", json!({"hosts": ["*"], "gateways": gateways, "tls": tls}))).unwrap()
}

fn route(port: u32, sni: Value, host: &str, to: Option<u32>) -> Value {
    let port_selector = to.map(|n| json!({"number": n}));
    json!({"match": [{"port": port, "sniHosts": sni}], "route": [{"destination": {"host": host, "port": port_selector}}]})
}

fn snapshot(gateways: Vec<Gateway>, virtual_services: Vec<VirtualService>) -> Snapshot {
    let mut services = istiod();
    services.push(gateway_service(json!({"app": "istio-ingressgateway", "istio": "ingressgateway"})));
    Snapshot::new(
        services,
        vec![slice(&[("198.18.5.9", Some(false)), ("198.18.5.10", None)])],
        gateways,
        virtual_services,
    )
}

fn at(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(LB, port)
}

#[test]
fn the_procedures_gateway_and_virtual_service_route_both_ports_to_istiod() {
    let vs = virtual_service(
        "ext",
        json!(["gw"]),
        json!([
            route(15012, json!(["*"]), "istiod.ext.svc.cluster.local", Some(15012)),
            route(15017, json!(["*"]), "istiod.ext.svc.cluster.local", Some(443))
        ]),
    );
    let world = snapshot(vec![gateway("ext", &[15012, 15017])], vec![vs]);
    assert_eq!(world.listeners(), BTreeSet::from([at(15012), at(15017)]));
    let webhook = world.route(at(15017), Some("istiod.ext.svc")).unwrap();
    assert_eq!(webhook.service, "ext/istiod:443");
    // The not-ready endpoint is left out; the slice port is the one named like the Service port.
    assert_eq!(webhook.endpoints, vec!["198.18.5.10:15017".parse().unwrap()]);
    assert_eq!(
        world.route(at(15012), None).unwrap().endpoints,
        vec!["198.18.5.10:15012".parse().unwrap()]
    );
    assert!(world.route(at(15021), None).is_err());
}

#[test]
fn only_routed_passthrough_ports_that_the_service_exposes_are_listened_on() {
    let vs = |ports: &[u32]| {
        let routes: Vec<Value> = ports.iter().map(|p| route(*p, json!(["*"]), "istiod", None)).collect();
        virtual_service("ext", json!(["gw"]), Value::Array(routes))
    };
    // 15017 has no route; 15443 is served but not a port of the Service.
    let world = snapshot(vec![gateway("ext", &[15012, 15017, 15443])], vec![vs(&[15012, 15443])]);
    assert_eq!(world.listeners(), BTreeSet::from([at(15012)]));
    // No VirtualService: no listener at all.
    assert!(snapshot(vec![gateway("ext", &[15012])], vec![]).listeners().is_empty());
    // A SIMPLE (terminating) server is not simulated.
    let mut simple = gateway("ext", &[15012]);
    simple.spec.servers[0].tls = Some(ServerTls {
        mode: Some("SIMPLE".into()),
    });
    assert!(snapshot(vec![simple], vec![vs(&[15012])]).listeners().is_empty());
}

#[test]
fn a_gateway_selects_services_whose_selector_has_all_its_labels_in_any_namespace() {
    let vs = virtual_service("ext", json!(["gw-ns/gw"]), json!([route(15012, json!(["*"]), "istiod.ext", None)]));
    let world = snapshot(vec![gateway("gw-ns", &[15012])], vec![vs.clone()]);
    assert_eq!(world.listeners(), BTreeSet::from([at(15012)]));
    let mut other = gateway("gw-ns", &[15012]);
    other.spec.selector.insert("istio".into(), "other".into());
    assert!(snapshot(vec![other], vec![vs.clone()]).listeners().is_empty());
    // A bare name means the VirtualService's own namespace: not gw-ns.
    let elsewhere = virtual_service("ext", json!(["gw"]), json!([route(15012, json!(["*"]), "istiod", None)]));
    assert!(snapshot(vec![gateway("gw-ns", &[15012])], vec![elsewhere]).listeners().is_empty());
    assert!(selects(&BTreeMap::new(), &BTreeMap::from([("a".into(), "b".into())])));
}

#[test]
fn sni_hosts_choose_the_route_and_no_sni_only_matches_a_wildcard() {
    let vs = virtual_service(
        "ext",
        json!(["gw"]),
        json!([
            route(15017, json!(["a.example"]), "istiod", Some(443)),
            route(15017, json!(["*.b.example"]), "istiod", Some(15012))
        ]),
    );
    let world = snapshot(vec![gateway("ext", &[15017])], vec![vs]);
    assert_eq!(world.route(at(15017), Some("a.example")).unwrap().service, "ext/istiod:443");
    assert_eq!(world.route(at(15017), Some("x.b.example")).unwrap().service, "ext/istiod:15012");
    let refused = world.route(at(15017), Some("b.example")).unwrap_err();
    assert_eq!(
        refused,
        "no TLS route for port 15017 and SNI b.example on Service gw/istio-ingressgateway"
    );
    assert!(world.route(at(15017), None).is_err());
}

#[test]
fn hosts_match_exactly_by_suffix_or_all() {
    assert!(host_matches("*", None));
    assert!(host_matches("*", Some("x")));
    assert!(host_matches("A.example", Some("a.example")));
    assert!(!host_matches("a.example", None));
    assert!(host_matches("*.example.com", Some("x.y.example.com")));
    assert!(!host_matches("*.example.com", Some("example.com")));
    assert!(!host_matches("*.example.com", Some("xexample.com")));
}

#[test]
fn destination_hosts_name_a_service_in_short_or_long_form() {
    assert_eq!(service_of("istiod.ext.svc.cluster.local", "vs"), Some(("ext", "istiod")));
    assert_eq!(service_of("istiod.ext.svc", "vs"), Some(("ext", "istiod")));
    assert_eq!(service_of("istiod.ext", "vs"), Some(("ext", "istiod")));
    assert_eq!(service_of("istiod", "vs"), Some(("vs", "istiod")));
    assert_eq!(service_of("www.example.com", "vs"), None);
}

#[test]
fn a_missing_destination_or_endpoint_is_named() {
    let to = |host: &str, port: Option<u32>| {
        let vs = virtual_service("ext", json!(["gw"]), json!([route(15012, json!(["*"]), host, port)]));
        snapshot(vec![gateway("ext", &[15012])], vec![vs])
            .route(at(15012), None)
            .unwrap_err()
    };
    assert_eq!(to("nothing.ext", None), "VirtualService ext/vs: Service ext/nothing does not exist");
    assert_eq!(to("istiod", Some(9)), "VirtualService ext/vs: Service ext/istiod has no port 9");
    let vs = virtual_service("ext", json!(["gw"]), json!([route(15012, json!(["*"]), "istiod", None)]));
    let mut world = snapshot(vec![gateway("ext", &[15012])], vec![vs]);
    world.slices = vec![slice(&[("198.18.5.9", Some(false))])];
    assert_eq!(
        world.route(at(15012), None).unwrap_err(),
        "Service ext/istiod:15012 has no ready endpoint"
    );
}
