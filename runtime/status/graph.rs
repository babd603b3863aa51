//! From the objects of every cluster to the graph: istiods and their remote
//! secrets, data planes and the istiod that serves each, gateways, workloads,
//! and the edges between them. Pure: no requests here.

use serde_json::Value;

use super::model::{Cluster, DataPlane, Edge, EdgeKind, Gateway, Istiod, RemoteSecret, Revision, Workloads};
use super::read::{Objects, Snapshot};
use super::secret;

/// The string at `pointer`, or "" (absent or not a string).
pub fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_string()
}

/// An `Istio` with profile `remote`: a data plane of an external istiod.
pub fn is_remote(istio: &Value) -> bool {
    text(istio, "/spec/profile") == "remote" || text(istio, "/spec/values/profile") == "remote"
}

pub fn istio_namespace(istio: &Value) -> String {
    let ns = text(istio, "/spec/namespace");
    if ns.is_empty() { "istio-system".into() } else { ns }
}

/// The active revision: Sail's `status.activeRevisionName`, else the name (InPlace).
pub fn istio_revision(istio: &Value) -> String {
    let active = text(istio, "/status/activeRevisionName");
    if active.is_empty() { text(istio, "/metadata/name") } else { active }
}

/// `istiod-<rev>`, `istiod` for the revision `default`.
pub fn istiod_service(revision: &str) -> String {
    if revision == "default" {
        "istiod".into()
    } else {
        format!("istiod-{revision}")
    }
}

/// The chart's injection webhook name: `istio-sidecar-injector[-<rev>][-<ns>]`.
pub fn webhook_name(revision: &str, namespace: &str) -> String {
    let mut name = "istio-sidecar-injector".to_string();
    if revision != "default" {
        name.push_str(&format!("-{revision}"));
    }
    if namespace != "istio-system" {
        name.push_str(&format!("-{namespace}"));
    }
    name
}

/// `(cluster ID, network)` of `/inject/cluster/<id>/net/<network>`.
pub fn parse_injection_path(path: &str) -> (String, String) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let after = |key: &str| {
        parts
            .iter()
            .position(|p| *p == key)
            .and_then(|i| parts.get(i + 1))
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    (after("cluster"), after("net"))
}

/// The host of `host:port` (or of a bare host / IPv6 `[addr]:port`).
pub fn host(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => address,
    }
}

/// Every cluster's nodes, data planes linked to the istiod holding a secret
/// for them, and the edges. Secrets are matched to contexts by server and CA.
pub fn build(snapshots: &[Snapshot]) -> (Vec<Cluster>, Vec<Edge>) {
    let mut clusters: Vec<Cluster> = snapshots.iter().map(cluster).collect();
    for c in clusters.iter_mut() {
        for istiod in c.istiods.iter_mut() {
            for s in istiod.remote_secrets.iter_mut() {
                s.context = context_of(
                    snapshots,
                    &s.server,
                    secret_ca(snapshots, &c.context, &istiod.namespace, &s.name).as_deref(),
                );
            }
        }
    }
    // Which istiod serves each data plane: one with a secret for its context,
    // preferably in the data plane's namespace (several meshes share a control plane).
    let serving: Vec<(String, String, String)> = clusters
        .iter()
        .flat_map(|c| c.istiods.iter())
        .flat_map(|i| {
            i.remote_secrets
                .iter()
                .filter_map(|s| s.context.clone().map(|ctx| (ctx, i.namespace.clone(), i.id.clone())))
        })
        .collect();
    for c in clusters.iter_mut() {
        for dp in c.data_planes.iter_mut() {
            let candidates: Vec<&(String, String, String)> = serving.iter().filter(|(ctx, _, _)| *ctx == c.context).collect();
            dp.istiod = candidates
                .iter()
                .find(|(_, ns, _)| *ns == dp.namespace)
                .or(candidates.first())
                .map(|(_, _, id)| id.clone());
        }
    }
    let mut edges = Vec::new();
    for c in &clusters {
        for istiod in &c.istiods {
            for s in &istiod.remote_secrets {
                let targets: Vec<String> = match &s.context {
                    Some(ctx) => {
                        let dps: Vec<String> = clusters
                            .iter()
                            .filter(|o| &o.context == ctx)
                            .flat_map(|o| o.data_planes.iter())
                            .filter(|d| d.istiod.as_deref() == Some(istiod.id.as_str()))
                            .map(|d| d.id.clone())
                            .collect();
                        if dps.is_empty() { vec![ctx.clone()] } else { dps }
                    }
                    None => vec![s.server.clone()],
                };
                for to in targets {
                    edges.push(Edge {
                        kind: EdgeKind::RemoteSecret,
                        from: istiod.id.clone(),
                        to,
                        label: s.name.clone(),
                        subject: secret_subject(&c.context, &istiod.namespace, &s.name),
                        ok: true,
                    });
                }
            }
        }
        for dp in &c.data_planes {
            if let Some(istiod) = &dp.istiod {
                edges.push(Edge {
                    kind: EdgeKind::Webhook,
                    from: dp.id.clone(),
                    to: istiod.clone(),
                    label: dp.webhook.clone(),
                    subject: dp.id.clone(),
                    ok: true,
                });
            }
        }
    }
    (clusters, edges)
}

/// How checks about a remote secret name it.
pub fn secret_subject(context: &str, namespace: &str, name: &str) -> String {
    format!("{context}/{namespace}/secret/{name}")
}

fn secret_ca(snapshots: &[Snapshot], context: &str, namespace: &str, name: &str) -> Option<Vec<u8>> {
    let objects = snapshots.iter().find(|s| s.context == context)?.objects.as_ref().ok()?;
    let raw = objects
        .remote_secrets
        .iter()
        .find(|s| text(s, "/metadata/namespace") == namespace && text(s, "/metadata/name") == name)?;
    secret::parse(raw).ca
}

fn context_of(snapshots: &[Snapshot], server: &str, ca: Option<&[u8]>) -> Option<String> {
    snapshots
        .iter()
        .find(|s| secret::same_server(&s.server, s.ca.as_deref(), server, ca))
        .map(|s| s.context.clone())
}

fn cluster(snapshot: &Snapshot) -> Cluster {
    let mut cluster = Cluster {
        context: snapshot.context.clone(),
        server: snapshot.server.clone(),
        ..Default::default()
    };
    let objects = match &snapshot.objects {
        Ok(o) => o,
        Err(e) => {
            cluster.error = Some(e.clone());
            return cluster;
        }
    };
    cluster.reachable = true;
    cluster.gateways = objects
        .services
        .iter()
        .filter(|s| text(s, "/spec/type") == "LoadBalancer")
        .map(gateway)
        .collect();
    for istio in &objects.istios {
        if is_remote(istio) {
            cluster.data_planes.push(data_plane(&snapshot.context, istio));
        } else {
            cluster.istiods.push(istiod(&snapshot.context, istio, objects));
        }
    }
    cluster.revisions = objects
        .revisions
        .iter()
        .map(|r| Revision {
            name: text(r, "/metadata/name"),
            namespace: text(r, "/spec/namespace"),
            version: text(r, "/spec/version"),
            state: text(r, "/status/state"),
            in_use: r
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| text(c, "/type") == "InUse" && text(c, "/status") == "True")),
        })
        .collect();
    let mut workloads: std::collections::BTreeMap<String, usize> = Default::default();
    for pod in &objects.pods {
        let injected = pod.pointer("/metadata/annotations/sidecar.istio.io~1status").is_some();
        let revision = text(pod, "/metadata/labels/istio.io~1rev");
        if injected && !revision.is_empty() {
            *workloads.entry(revision).or_default() += 1;
        }
    }
    cluster.workloads = workloads.into_iter().map(|(revision, pods)| Workloads { revision, pods }).collect();
    cluster
}

fn gateway(service: &Value) -> Gateway {
    let ingress = service.pointer("/status/loadBalancer/ingress/0");
    let address = ingress
        .map(|i| {
            let ip = text(i, "/ip");
            if ip.is_empty() { text(i, "/hostname") } else { ip }
        })
        .unwrap_or_default();
    let ports = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.get("port").and_then(Value::as_u64))
                .map(|p| p as u16)
                .collect()
        })
        .unwrap_or_default();
    Gateway {
        namespace: text(service, "/metadata/namespace"),
        name: text(service, "/metadata/name"),
        address,
        ports,
    }
}

fn istiod(context: &str, istio: &Value, objects: &Objects) -> Istiod {
    let namespace = istio_namespace(istio);
    let revision = istio_revision(istio);
    let values = istio.pointer("/spec/values").cloned().unwrap_or(Value::Null);
    let env = |key: &str| text(&values, &format!("/pilot/env/{key}"));
    let cluster_id = [env("CLUSTER_ID"), text(&values, "/global/multiCluster/clusterName")]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "Kubernetes".into());
    let pods = objects
        .pods
        .iter()
        .filter(|p| text(p, "/metadata/namespace") == namespace)
        .filter(|p| text(p, "/metadata/labels/app") == "istiod" && text(p, "/metadata/labels/istio.io~1rev") == revision)
        .map(|p| text(p, "/metadata/name"))
        .collect();
    let injection_webhook = {
        let configured = env("INJECTION_WEBHOOK_CONFIG_NAME");
        if configured.is_empty() {
            webhook_name(&revision, &namespace)
        } else {
            configured
        }
    };
    let remote_secrets = objects
        .remote_secrets
        .iter()
        .filter(|s| text(s, "/metadata/namespace") == namespace)
        .map(|raw| {
            let parsed = secret::parse(raw);
            RemoteSecret {
                name: parsed.name,
                cluster_name: parsed.cluster_name,
                server: parsed.server,
                ..Default::default()
            }
        })
        .collect();
    Istiod {
        id: format!("{context}/{namespace}/{revision}"),
        name: text(istio, "/metadata/name"),
        // Only an external istiod is reached through a gateway.
        gateway: (env("EXTERNAL_ISTIOD") == "true")
            .then(|| exposing_gateway(&namespace, objects))
            .flatten(),
        namespace,
        revision,
        version: text(istio, "/spec/version"),
        state: text(istio, "/status/state"),
        cluster_id,
        mesh_id: text(&values, "/global/meshID"),
        network: text(&values, "/global/network"),
        external: env("EXTERNAL_ISTIOD") == "true",
        ca_address: text(&values, "/global/caAddress"),
        discovery_address: text(&values, "/meshConfig/defaultConfig/discoveryAddress"),
        injection_webhook,
        pods,
        remote_secrets,
    }
}

/// The LoadBalancer Service whose selector matches a `networking.istio.io`
/// Gateway in the istiod's namespace; the only LoadBalancer if there is one.
fn exposing_gateway(namespace: &str, objects: &Objects) -> Option<String> {
    let lbs: Vec<&Value> = objects
        .services
        .iter()
        .filter(|s| text(s, "/spec/type") == "LoadBalancer")
        .collect();
    let id = |s: &Value| format!("{}/{}", text(s, "/metadata/namespace"), text(s, "/metadata/name"));
    for gw in objects.gateways.iter().filter(|g| text(g, "/metadata/namespace") == namespace) {
        let Some(wanted) = gw.pointer("/spec/selector").and_then(Value::as_object) else {
            continue;
        };
        let found = lbs.iter().find(|s| {
            let selector = s.pointer("/spec/selector").and_then(Value::as_object);
            selector.is_some_and(|sel| !wanted.is_empty() && wanted.iter().all(|(k, v)| sel.get(k) == Some(v)))
        });
        if let Some(s) = found {
            return Some(id(s));
        }
    }
    (lbs.len() == 1).then(|| id(lbs[0]))
}

fn data_plane(context: &str, istio: &Value) -> DataPlane {
    let namespace = istio_namespace(istio);
    let revision = istio_revision(istio);
    let injection_path = text(istio, "/spec/values/pilot/istiodRemote/injectionPath");
    let (cluster_id, network) = parse_injection_path(&injection_path);
    DataPlane {
        id: format!("{context}/{namespace}/{revision}"),
        name: text(istio, "/metadata/name"),
        webhook: webhook_name(&revision, &namespace),
        namespace,
        revision,
        version: text(istio, "/spec/version"),
        state: text(istio, "/status/state"),
        cluster_id,
        network,
        injection_path,
        remote_pilot_address: text(istio, "/spec/values/global/remotePilotAddress"),
        istiod: None,
    }
}

#[cfg(test)]
mod tests;
