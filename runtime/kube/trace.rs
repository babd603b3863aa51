//! `MESH_RUN_TRACE=http`: one line on stderr per API request — when it
//! started (ms since the first request), cluster, method, path, status and
//! duration — like kubectl's `-v=6`, to see where a run's time goes. Paths and
//! statuses only: bodies (which may hold tokens) are never traced.

use std::sync::OnceLock;
use std::time::Instant;

use http::{Method, StatusCode};

/// The trace's zero, and whether tracing is on (read once).
fn state() -> Option<Instant> {
    static STATE: OnceLock<Option<Instant>> = OnceLock::new();
    *STATE.get_or_init(|| {
        let on = std::env::var("MESH_RUN_TRACE").is_ok_and(|v| v.split(',').any(|w| w.trim() == "http"));
        on.then(Instant::now)
    })
}

/// Called when a request is sent; `None` when tracing is off.
pub fn start() -> Option<Instant> {
    state().map(|_| Instant::now())
}

/// Called when its response head arrived (or the transport failed: `status` None).
pub fn finish(started: Option<Instant>, cluster: &str, method: &Method, path: &str, status: Option<StatusCode>) {
    let (Some(zero), Some(started)) = (state(), started) else {
        return;
    };
    let status = status.map_or_else(|| "error".to_string(), |s| s.as_u16().to_string());
    eprintln!(
        "[http] {:>7.1} ms {cluster} {method} {path} {status} {:.1} ms",
        started.duration_since(zero).as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64() * 1e3
    );
}
