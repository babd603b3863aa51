//! Shared test support: real sandboxes started once per test binary, and a
//! `Test` builder that runs the mesh-run binary and checks what it printed.
// Each test file uses a different part of this: unused parts are not dead.
#![allow(dead_code, unused_imports)]

pub mod sandboxes;
pub mod test;

pub use sandboxes::{SandboxHandle, SandboxProcess, control_plane_processes, kube_version, sandbox};
pub use test::{Output, Test, own_instance};

use std::time::Duration;

use kube::runtime::wait::{Condition, await_condition};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// The server's Kubernetes minor version, read from `gitVersion` (`v1.30.4` → 30): `minor` is
/// empty on a 1.30 build without version stamps, where 1.37 derives it from its binary version.
pub async fn server_minor(client: &kube::Client) -> u32 {
    let version = client.apiserver_version().await.expect("GET /version");
    let minor = version.git_version.trim_start_matches('v').split('.').nth(1).map(str::to_string);
    minor
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no minor version in {version:?}"))
}

/// Waits (watch-based) until `name` satisfies `condition`; panics after `timeout`
/// with the last state seen, so a failing test says what it got.
pub async fn wait_for<K>(api: Api<K>, name: &str, condition: impl Condition<K>, timeout: Duration) -> K
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(Some(object))) => object,
        Ok(Ok(None)) => panic!("{name} was deleted while waiting"),
        Ok(Err(e)) => panic!("waiting for {name}: {e}"),
        Err(_) => panic!(
            "timed out after {timeout:?} waiting for {name}; last seen: {:#?}",
            api.get_opt(name).await
        ),
    }
}
