//! What one run of a playbook shares: the bridge to async code, the
//! clusters, the reporter, the inputs and the run's settings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::applyset::ApplySets;
use crate::bridge::Bridge;
use crate::kube::{ClusterClient, Clusters};
use crate::report::{Event, Reporter};

pub struct Session {
    pub bridge: Bridge,
    pub clusters: Clusters,
    /// Shared with the ApplySets' lock, which warns too.
    pub reporter: Arc<Reporter>,
    pub dry_run: bool,
    /// `--set KEY=VALUE`; the environment is consulted after these.
    pub sets: HashMap<String, String>,
    /// The playbook's folder: relative paths in `apply_file` start here.
    pub base_dir: PathBuf,
    /// `--stdlib DIR`: bundled manifests are read there before the embedded ones.
    pub stdlib_dir: Option<PathBuf>,
    /// Local files the run read (manifests), for watch mode.
    pub files_read: Mutex<Vec<PathBuf>>,
    /// What the run owns on each cluster, and what it would change in a dry run.
    pub applysets: ApplySets,
}

/// A cluster as a playbook holds it: `let cp = cluster("ctx");`.
#[derive(Clone)]
pub struct ClusterHandle(pub Arc<ClusterClient>);

impl Session {
    pub fn input(&self, name: &str) -> Option<String> {
        self.sets
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reports one finished step.
    /// In a dry run every step is one: it says what would have happened.
    pub fn step(&self, cluster: &str, action: &str, object: &str, outcome: &str, started: Instant, detail: Option<String>) {
        if self.dry_run {
            self.applysets.tally.count(cluster, action, object, outcome);
        }
        self.reporter.emit(Event::Step {
            cluster: cluster.to_string(),
            action: action.to_string(),
            object: object.to_string(),
            outcome: outcome.to_string(),
            duration_ms: started.elapsed().as_millis(),
            dry_run: self.dry_run,
            detail,
        });
    }

    pub fn warn(&self, cluster: &str, object: &str, message: impl Into<String>) {
        self.reporter.emit(Event::Warning {
            cluster: cluster.into(),
            object: object.into(),
            message: message.into(),
        });
    }

    pub fn record_file(&self, path: PathBuf) {
        let mut files = self.files_read.lock().expect("files lock");
        if !files.contains(&path) {
            files.push(path);
        }
    }
}
