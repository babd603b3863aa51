//! `mesh-run status` and the `status(clusters)` primitive: every context
//! read at once, one graph of control planes, remote secrets, data planes and
//! gateways, and the checks that say what is broken and what to do.
//!
//! read.rs fetches (one cluster, concurrently), graph.rs builds the model
//! (model.rs), the check groups judge it (credentials, remote_istiod, drift,
//! collisions, clusterz), and text/dot/svg draw it; JSON is the model itself.

pub mod clusterz;
pub mod collisions;
pub mod command;
pub mod credentials;
pub mod dot;
pub mod drift;
pub mod graph;
pub mod model;
pub mod network;
pub mod read;
pub mod remote_istiod;
pub mod secret;
pub mod svg;
pub mod text;
pub mod watch;

use std::collections::HashMap;

use futures::future::join_all;

pub use model::{Check, Status, Verdict};
use read::Snapshot;

use crate::error::Result;
use crate::kube::Clusters;

type Learned = HashMap<(String, String, String), (Option<String>, Option<String>)>;

/// Reads `contexts` of `clusters` concurrently and judges them. Only a
/// context missing from the kubeconfig is an error; an unreachable one is
/// a failed `cluster.reachable` check.
pub async fn collect(clusters: &Clusters, contexts: &[String]) -> Result<Status> {
    let mut reads = Vec::new();
    for context in contexts {
        let (server, ca) = clusters.server_and_ca(context)?;
        let client = clusters.get(context).await;
        if let Err(e @ crate::error::Error::UnknownContext { .. }) = client {
            return Err(e);
        }
        reads.push(read::read(context.clone(), server, ca, client));
    }
    let snapshots = join_all(reads).await;
    Ok(evaluate(&snapshots).await)
}

/// The graph and every check, from what was read; the live checks (remote
/// secrets' credentials, istiod's clusterz) run concurrently.
pub async fn evaluate(snapshots: &[Snapshot]) -> Status {
    let (mut clusters, mut edges) = graph::build(snapshots);
    let mut checks = Vec::new();
    for c in &clusters {
        checks.push(match &c.error {
            None => Check::pass("cluster.reachable", &c.context, &c.context, format!("{} answered", c.server)),
            Some(e) => Check::fail(
                "cluster.reachable",
                &c.context,
                &c.context,
                format!("cannot read {}: {e}", c.context),
                format!(
                    "check the context's server and credentials (kubectl --context {} get ns); the other clusters are reported without it",
                    c.context
                ),
            ),
        });
    }

    // Live checks: every remote secret tried, every external istiod asked.
    let mut probes = Vec::new();
    let mut asks = Vec::new();
    for (snapshot, cluster) in snapshots.iter().zip(&clusters) {
        let Ok(objects) = &snapshot.objects else { continue };
        for istiod in &cluster.istiods {
            for raw in objects
                .remote_secrets
                .iter()
                .filter(|s| s.pointer("/metadata/namespace").and_then(|n| n.as_str()) == Some(&istiod.namespace))
            {
                let parsed = secret::parse(raw);
                let subject = graph::secret_subject(&cluster.context, &istiod.namespace, &parsed.name);
                let (context, namespace) = (cluster.context.clone(), istiod.namespace.clone());
                probes.push(async move {
                    let outcome = credentials::probe(&parsed, &context, &subject, &namespace).await;
                    (context, namespace, parsed.name, outcome)
                });
            }
            if istiod.external
                && !istiod.remote_secrets.is_empty()
                && let Some(client) = snapshot.client.clone()
            {
                let istiod = istiod.clone();
                asks.push(async move {
                    let answer = clusterz::fetch(&client, &istiod).await;
                    clusterz::checks(&client.name, &istiod, answer.as_ref().map_err(String::as_str))
                });
            }
        }
    }
    let (probed, asked) = futures::join!(join_all(probes), join_all(asks));
    // (context, namespace, secret) → (account, token expiry)
    let mut learned: Learned = HashMap::new();
    for (context, namespace, name, outcome) in probed {
        learned.insert((context, namespace, name), (outcome.account, outcome.expires));
        checks.push(outcome.check);
    }
    for c in clusters.iter_mut() {
        for istiod in c.istiods.iter_mut() {
            for s in istiod.remote_secrets.iter_mut() {
                if let Some((account, expires)) = learned.remove(&(c.context.clone(), istiod.namespace.clone(), s.name.clone())) {
                    s.account = account;
                    s.token_expires = expires;
                }
                if s.context.is_none() {
                    checks.push(Check::warn(
                        "secret.target",
                        &c.context,
                        &graph::secret_subject(&c.context, &istiod.namespace, &s.name),
                        format!(
                            "remote secret {} points at {}, which no kubeconfig context reaches",
                            s.name, s.server
                        ),
                        "add a context for that cluster (same server URL and CA) to check its side too",
                    ));
                }
            }
        }
    }
    checks.extend(asked.into_iter().flatten());

    for (snapshot, cluster) in snapshots.iter().zip(&clusters) {
        let Ok(objects) = &snapshot.objects else { continue };
        for dp in &cluster.data_planes {
            checks.extend(remote_istiod::checks(dp, cluster, objects, &clusters));
            let istiod = dp
                .istiod
                .as_deref()
                .and_then(|id| clusters.iter().flat_map(|c| &c.istiods).find(|i| i.id == id));
            if let Some(istiod) = istiod {
                checks.extend(network::checks(dp, &network::Named::of(dp, objects), istiod, &objects.services));
            }
        }
        for istiod in &cluster.istiods {
            checks.extend(drift::checks(istiod, cluster, &clusters));
        }
        checks.extend(collisions::check(cluster));
    }

    for edge in edges.iter_mut() {
        edge.ok = !checks.iter().any(|c| c.verdict == Verdict::Fail && c.subject == edge.subject);
    }
    Status {
        schema_version: model::SCHEMA_VERSION,
        healthy: !checks.iter().any(|c| c.verdict == Verdict::Fail),
        clusters,
        edges,
        checks,
    }
}
