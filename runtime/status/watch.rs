//! `mesh-run status --watch`: the terminal view redrawn whenever something
//! it reads changes (`--output json`: the status as one JSON line per change,
//! for a pipe; like `kubectl get -w -o json`, a stream of whole documents). One watch per kind and cluster only says "changed" on a
//! channel (from the list's resourceVersion on, so the first list does not
//! count); the loop waits until the events pause, then reads and draws
//! everything again. A watch that fails (a cluster goes away, a kind is not
//! served) retries by itself: recoverable, never fatal.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use http::Method;
use tokio::sync::mpsc;

use crate::cli::StatusFormat;
use crate::kube::{ClusterClient, Clusters};

/// What a redraw reads, as watchable list paths (see read.rs).
const WATCHED: &[&str] = &[
    "/apis/sailoperator.io/v1/istios",
    "/apis/sailoperator.io/v1/istiorevisions",
    "/api/v1/secrets?labelSelector=istio%2FmultiCluster%3Dtrue",
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
    "/api/v1/services",
    "/api/v1/pods?labelSelector=istio.io%2Frev",
    "/api/v1/namespaces",
    "/apis/discovery.k8s.io/v1/endpointslices",
    "/apis/networking.istio.io/v1/gateways",
];

/// Events closer together than this are one change: a rollout is one redraw.
const QUIET: Duration = Duration::from_millis(300);

/// Draws, then redraws on every change until Ctrl-C (exit 130).
pub async fn run(clusters: &Clusters, contexts: &[String], format: StatusFormat) -> u8 {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    for context in contexts {
        let Ok(client) = clusters.get(context).await else { continue };
        for path in WATCHED {
            tokio::spawn(watch_kind(client.clone(), path, tx.clone()));
        }
    }
    let mut trigger = String::from("start");
    loop {
        let status = match super::collect(clusters, contexts).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        let mut out = std::io::stdout().lock();
        if format == StatusFormat::Json {
            match serde_json::to_string(&status) {
                Ok(line) => _ = writeln!(out, "{line}"),
                Err(e) => {
                    eprintln!("error: cannot encode the status as JSON: {e}");
                    return 1;
                }
            }
        } else {
            let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            let colour = std::io::IsTerminal::is_terminal(&out);
            let clear = if colour { "\x1b[2J\x1b[H" } else { "" };
            let _ = write!(
                out,
                "{clear}{}\nwatching {} cluster(s); drawn {now} after: {trigger}; Ctrl-C to stop\n",
                super::text::render(&status, colour),
                contexts.len()
            );
        }
        let _ = out.flush();
        drop(out);
        tokio::select! {
            changed = rx.recv() => trigger = changed.unwrap_or_default(),
            _ = tokio::signal::ctrl_c() => return 130,
        }
        // Wait for the burst to end.
        while let Ok(Some(more)) = tokio::time::timeout(QUIET, rx.recv()).await {
            trigger = more;
        }
    }
}

/// Watches one kind on one cluster for good, sending "<cluster> <kind>" per change.
async fn watch_kind(client: Arc<ClusterClient>, path: &'static str, tx: mpsc::UnboundedSender<String>) {
    let kind = path.split('?').next().unwrap_or(path).rsplit('/').next().unwrap_or(path);
    let what = format!("{} {kind}", client.name);
    let mut failed = false;
    loop {
        let Some(version) = resource_version(&client, path).await else {
            failed = true;
            // Unreachable, or the kind is not served (yet): try again later.
            tokio::time::sleep(Duration::from_secs(5)).await;
            continue;
        };
        if failed {
            // Back after a failure: what it missed counts as a change.
            failed = false;
            if tx.send(format!("{what} reachable again")).is_err() {
                return;
            }
        }
        let join = if path.contains('?') { '&' } else { '?' };
        let url = format!("{path}{join}watch=true&resourceVersion={version}&timeoutSeconds=300");
        let Ok(events) = client.watch_events(&url).await else {
            failed = true;
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        };
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(kube::core::WatchEvent::Added(_) | kube::core::WatchEvent::Modified(_) | kube::core::WatchEvent::Deleted(_)) => {
                    if tx.send(what.clone()).is_err() {
                        return;
                    }
                }
                Ok(kube::core::WatchEvent::Bookmark(_)) => {}
                // 410 Gone (resourceVersion too old) or a broken stream: list again.
                Ok(kube::core::WatchEvent::Error(_)) | Err(_) => break,
            }
        }
    }
}

/// The list's resourceVersion (one item fetched), or None when it cannot be listed.
async fn resource_version(client: &ClusterClient, path: &str) -> Option<String> {
    let join = if path.contains('?') { '&' } else { '?' };
    let res = client
        .call(Method::GET, &format!("{path}{join}limit=1"), None, Vec::new())
        .await
        .ok()?;
    if !res.status.is_success() {
        return None;
    }
    res.body.pointer("/metadata/resourceVersion")?.as_str().map(str::to_string)
}
