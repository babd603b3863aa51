//! A run's Leases (`lease.rs`), one per cluster whose set it changes: taken
//! before the first write there, renewed by one background task every
//! [`RENEW_EVERY`] while the run lives, confirmed right before pruning,
//! released when the run ends however it ends. A renewal that finds another
//! run holding the Lease stops this run (`locked`) before it prunes anything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::join_all;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::lease::{self, Claim, Decision};
use crate::bridge::{Bridge, StopReason};
use crate::error::{Error, Result};
use crate::kube::ClusterClient;
use crate::report::{Event, Reporter};

/// A third of the Lease's duration, as client-go's defaults (15 s lease, 5 s retry) keep it.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How long the end of a run waits for its releases: a release takes
/// milliseconds, and a run that failed because a server stopped answering
/// must not hang on it (that Lease then expires on its own).
pub const RELEASE_WITHIN: Duration = Duration::from_secs(2);

pub struct Lock {
    /// The set's name (= the Lease's) and the playbook's path.
    set: String,
    playbook: String,
    bridge: Bridge,
    reporter: Arc<Reporter>,
    /// Leases held, by context, as the server last returned them.
    held: Arc<tokio::sync::Mutex<BTreeMap<String, Held>>>,
    /// Ends the renewal task (at release, or when the run is dropped).
    renewal: CancellationToken,
    renewing: AtomicBool,
    /// Dry run: clusters whose Lease was looked at.
    peeked: Mutex<BTreeSet<String>>,
}

struct Held {
    client: Arc<ClusterClient>,
    lease: Value,
}

impl Lock {
    pub fn new(set: String, playbook: String, bridge: Bridge, reporter: Arc<Reporter>) -> Self {
        Lock {
            set,
            playbook,
            bridge,
            reporter,
            held: Default::default(),
            renewal: CancellationToken::new(),
            renewing: AtomicBool::new(false),
            peeked: Default::default(),
        }
    }

    fn claim<'a>(&'a self, client: &'a ClusterClient) -> Claim<'a> {
        Claim {
            name: &self.set,
            identity: lease::identity(),
            playbook: &self.playbook,
            context: &client.name,
        }
    }

    /// Before the first write to the set on `client`'s cluster: takes its
    /// Lease (no request when already held) and starts renewing.
    pub async fn hold(&self, client: &Arc<ClusterClient>) -> Result<()> {
        let mut held = self.held.lock().await;
        if held.contains_key(&client.name) {
            return Ok(());
        }
        let lease = lease::acquire(client, &self.claim(client)).await?;
        held.insert(
            client.name.clone(),
            Held {
                client: client.clone(),
                lease,
            },
        );
        if !self.renewing.swap(true, Ordering::Relaxed) {
            self.bridge.spawn(renew_every(
                self.held.clone(),
                self.set.clone(),
                self.playbook.clone(),
                self.bridge.clone(),
                self.renewal.clone(),
            ));
        }
        Ok(())
    }

    /// Right before pruning: proves the Lease is still this run's by
    /// renewing it (an update that fails if anyone wrote it since), or takes
    /// it on a cluster this run has not written to yet.
    pub async fn confirm(&self, client: &Arc<ClusterClient>) -> Result<()> {
        let renewed = {
            let mut held = self.held.lock().await;
            let Some(h) = held.get_mut(&client.name) else {
                drop(held);
                return self.hold(client).await;
            };
            let renewed = lease::renew(client, &self.claim(client), &h.lease).await;
            match &renewed {
                Ok(lease) => h.lease = lease.clone(),
                Err(Error::Locked(_)) => {
                    held.remove(&client.name);
                }
                Err(_) => {}
            }
            renewed
        };
        match renewed {
            Ok(_) => Ok(()),
            Err(Error::Locked(mut locked)) => {
                locked.lost = true;
                Err(Error::Locked(locked))
            }
            Err(e) => Err(e),
        }
    }

    /// Dry run (which takes no Lease): warns once per cluster when another
    /// run holds the set, since the plan may change under it.
    pub async fn peek(&self, client: &ClusterClient) {
        if !self.peeked.lock().expect("peek lock").insert(client.name.clone()) {
            return;
        }
        // A Lease that cannot be read (no permission) is no reason to fail a dry run.
        let Ok(Some(found)) = lease::read(client, &self.set).await else {
            return;
        };
        if lease::decide(&found, lease::identity(), SystemTime::now()) == Decision::Held {
            let holder = lease::holder(&found, &self.set, &client.name);
            self.reporter.emit(Event::Warning {
                cluster: client.name.clone(),
                object: format!("ApplySet {}", self.set),
                message: format!(
                    "another mesh-run run is changing this set (holder {}, playbook {}): this plan may change under it",
                    holder.holder,
                    if holder.playbook.is_empty() { "unknown" } else { &holder.playbook }
                ),
            });
        }
    }

    /// The end of the run: stops renewing and deletes every Lease it holds
    /// (a failure leaves that Lease to expire, and says so).
    pub async fn release(&self) {
        self.renewal.cancel();
        let mut held = self.held.lock().await;
        let releases = held.values().map(|h| async move { (h, lease::release(&h.client, &h.lease).await) });
        for (h, result) in join_all(releases).await {
            if let Err(e) = result {
                self.reporter.emit(Event::Warning {
                    cluster: h.client.name.clone(),
                    object: format!("ApplySet {}", self.set),
                    message: format!(
                        "the run's Lease was not released ({e}); it frees the set {} s after its last renewal",
                        lease::DURATION_SECS
                    ),
                });
            }
        }
        held.clear();
    }
}

impl Drop for Lock {
    /// A run that ends without `release` (a panic) stops renewing: its Leases expire.
    fn drop(&mut self) {
        self.renewal.cancel();
    }
}

/// The one renewal loop of a run. A Lease another run took over is dropped
/// from `held` (never deleted) and the run is stopped with `locked`; other
/// failures (a server briefly away) are retried at the next tick.
async fn renew_every(
    held: Arc<tokio::sync::Mutex<BTreeMap<String, Held>>>,
    set: String,
    playbook: String,
    bridge: Bridge,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(RENEW_EVERY) => {}
        }
        let mut held = held.lock().await;
        if stop.is_cancelled() {
            return;
        }
        let mut lost = Vec::new();
        for (context, h) in held.iter_mut() {
            let claim = Claim {
                name: &set,
                identity: lease::identity(),
                playbook: &playbook,
                context,
            };
            match lease::renew(&h.client, &claim, &h.lease).await {
                Ok(lease) => h.lease = lease,
                Err(Error::Locked(mut locked)) => {
                    locked.lost = true;
                    bridge.stop(StopReason::LeaseLost(locked));
                    lost.push(context.clone());
                }
                Err(_) => {}
            }
        }
        for context in lost {
            held.remove(&context);
        }
    }
}
