//! The one error type of mesh-run. Every failure a playbook can meet is a
//! variant here; playbooks catch them by `kind` (`e.kind == "timeout"`).

use std::path::PathBuf;
use std::time::SystemTime;

/// A failure, naming the object and the cause. `kind()` is the stable name a
/// playbook matches on; `exit_code()` is the one place errors become exit codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The playbook does not compile (syntax), or calls something that does not exist.
    #[error("{message}")]
    Script { message: String },

    /// A primitive got arguments it cannot use: wrong type, unknown option key, bad value.
    #[error("{message}")]
    Usage { message: String },

    /// `input("NAME")` without a default, and neither `--set NAME=...` nor `$NAME` given.
    #[error("missing required input {names}: pass --set {first}=VALUE or export {first}=VALUE")]
    MissingInput { names: String, first: String },

    #[error("unknown kubeconfig context \"{context}\" (available: {available}); check --kubeconfig / KUBECONFIG")]
    UnknownContext { context: String, available: String },

    #[error("cannot read kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },

    #[error("cluster {cluster}: API server {url} is unreachable: {message}")]
    Unreachable { cluster: String, url: String, message: String },

    /// The kind is not served: a CRD or an operator is missing, or the server is too old.
    #[error("cluster {cluster}: {message}")]
    UnknownKind { cluster: String, message: String },

    #[error("invalid YAML in {source_name}, document {document} (line {line}, column {column}): {message}")]
    Yaml {
        source_name: String,
        document: usize,
        line: usize,
        column: usize,
        message: String,
    },

    /// Server-side apply found fields owned by another manager.
    #[error("apply conflict: {object} on {cluster}: fields owned by another manager: {fields}; pass #{{ force: true }} to take them over")]
    Conflict { cluster: String, object: String, fields: String },

    /// The API server refused a request (validation, admission, unsupported API version).
    #[error("{action} rejected: {object} on {cluster}: {message}")]
    Rejected {
        cluster: String,
        object: String,
        action: String,
        message: String,
    },

    #[error("{object} not found on {cluster}")]
    NotFound { cluster: String, object: String },

    #[error("timed out after {after} waiting for {object} on {cluster} ({waiting_for})\n{explanation}")]
    Timeout {
        cluster: String,
        object: String,
        after: String,
        waiting_for: String,
        explanation: String,
    },

    /// A wait saw a state listed in `fail_if`.
    #[error("{object} on {cluster} reached a failure state: {state}")]
    FailState { cluster: String, object: String, state: String },

    #[error("interrupted {place}")]
    Interrupted { place: String },

    /// SIGTERM (`kill`, a service manager, CI): stopped where it was, exit 143.
    #[error("interrupted by {signal} (a signal, sent by another process)")]
    Terminated { signal: String },

    /// The run's heap passed its cap (`MESH_RUN_MAX_MEMORY`).
    #[error("the playbook stopped: mesh-run's memory passed {limit} (MESH_RUN_MAX_MEMORY); it keeps too many large values at once")]
    MemoryLimit { limit: String },

    /// Another run holds the Lease of the run's ApplySet on a cluster, or took it from this run.
    #[error("{0}")]
    Locked(Box<Locked>),

    #[error("{object} on {cluster}: {message}")]
    Api { cluster: String, object: String, message: String },

    /// `exec` or `http_get` reached the target, which answered with a failure.
    #[error("{what}: {message}")]
    Remote { what: String, message: String },

    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },

    #[error("remote secret: {message}")]
    RemoteSecret { message: String },

    /// Kubernetes binaries for the sandbox are not installed.
    #[error(
        "Kubernetes {version} binaries not found ({missing}): run `{command}` (or point KUBEBUILDER_ASSETS at a folder holding etcd and kube-apiserver)"
    )]
    AssetsMissing { version: String, missing: String, command: String },

    /// Istio or kwok binaries for the sandbox are not installed.
    #[error("{what} not found ({missing}): run `{command}`")]
    TestBedMissing { what: String, missing: String, command: String },

    #[error("sandbox: {message}")]
    Sandbox { message: String },

    /// `throw` in a playbook, or any other script-raised failure.
    #[error("{message}")]
    Thrown { message: String },

    /// An error a playbook caught and explained further (`e.with_note(...)`):
    /// same kind and exit code, one more line.
    #[error("{source}\n  {note}")]
    Noted { source: std::sync::Arc<Error>, note: String },
}

impl Error {
    /// The name a playbook sees as `e.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Script { .. } => "script",
            Error::Usage { .. } => "usage",
            Error::MissingInput { .. } => "input",
            Error::UnknownContext { .. } => "context",
            Error::Kubeconfig { .. } => "kubeconfig",
            Error::Unreachable { .. } => "unreachable",
            Error::UnknownKind { .. } => "unknown_kind",
            Error::Yaml { .. } => "yaml",
            Error::Conflict { .. } => "conflict",
            Error::Rejected { .. } => "rejected",
            Error::NotFound { .. } => "not_found",
            Error::Timeout { .. } => "timeout",
            Error::FailState { .. } => "fail_state",
            Error::Interrupted { .. } | Error::Terminated { .. } => "interrupted",
            Error::MemoryLimit { .. } => "memory",
            Error::Locked(_) => "locked",
            Error::Api { .. } => "api",
            Error::Remote { .. } => "remote",
            Error::Io { .. } => "io",
            Error::RemoteSecret { .. } => "remote_secret",
            Error::AssetsMissing { .. } | Error::TestBedMissing { .. } => "assets",
            Error::Sandbox { .. } => "sandbox",
            Error::Thrown { .. } => "thrown",
            Error::Noted { source, .. } => source.kind(),
        }
    }

    /// 2 for mistakes in the playbook or the command line, 130 for Ctrl-C, 143 for SIGTERM,
    /// 1 for everything that went wrong while running against clusters.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Script { .. } | Error::Usage { .. } | Error::MissingInput { .. } => 2,
            Error::Interrupted { .. } => 130,
            // 128 + SIGTERM, as a shell reports a process it terminated.
            Error::Terminated { .. } => 143,
            Error::Noted { source, .. } => source.exit_code(),
            _ => 1,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage { message: message.into() }
    }

    pub fn io(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        Error::Io {
            path: path.into(),
            message: err.to_string(),
        }
    }
}

/// Who holds an ApplySet's Lease, as read from it: enough for a human to
/// find that run (or see that it died) and decide.
#[derive(Clone, Debug, PartialEq)]
pub struct Locked {
    /// The ApplySet (and Lease) name.
    pub set: String,
    /// The context of this run's kubeconfig the Lease is on.
    pub cluster: String,
    /// `holderIdentity`: `<hostname>/<pid>/<random>`.
    pub holder: String,
    /// The holder's playbook and context, from the Lease's annotations (empty: not mesh-run's).
    pub playbook: String,
    pub context: String,
    pub acquired: Option<SystemTime>,
    pub renewed: Option<SystemTime>,
    pub duration_secs: u64,
    /// The Lease was this run's and another run took it over (this run stopped, pruned nothing).
    pub lost: bool,
}

impl Locked {
    /// The error text at `now`: what, who, what to do.
    pub fn render(&self, now: SystemTime) -> String {
        let Locked { set, cluster, .. } = self;
        let when = |t: Option<SystemTime>| match t {
            Some(t) => {
                let ago = now.duration_since(t).map(|d| d.as_secs()).unwrap_or(0);
                format!("{} ({ago} s ago)", humantime::format_rfc3339_seconds(t))
            }
            None => "unknown".into(),
        };
        let what = if self.lost {
            format!("another mesh-run run took over ApplySet `{set}` on cluster `{cluster}` from this run")
        } else {
            format!("another mesh-run run holds ApplySet `{set}` on cluster `{cluster}`")
        };
        let playbook = if self.playbook.is_empty() { "unknown" } else { &self.playbook };
        let context = if self.context.is_empty() {
            String::new()
        } else {
            format!(" (its context {})", self.context)
        };
        let todo = if self.lost {
            "this run stopped and pruned nothing; run it again once that run has ended".to_string()
        } else {
            format!(
                "nothing of the set was changed on `{cluster}`; wait for that run to end, or pass --instance NAME for an independent set; a killed run's lease expires {} s after its last renewal",
                self.duration_secs
            )
        };
        format!(
            "{what}: holder {}, playbook {playbook}{context}, holding since {}, last renewed {}\n  {todo} (kubectl get lease -n mesh-run {set} -o yaml)",
            self.holder,
            when(self.acquired),
            when(self.renewed),
        )
    }
}

impl std::fmt::Display for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(SystemTime::now()))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert_eq!(Error::Interrupted { place: "at line 3".into() }.exit_code(), 130);
        let term = Error::Terminated { signal: "SIGTERM".into() };
        assert_eq!((term.exit_code(), term.kind()), (143, "interrupted"));
        assert!(!term.to_string().contains("Ctrl-C"), "{term}");
        let timeout = Error::Timeout {
            cluster: "cp".into(),
            object: "Istio/x".into(),
            after: "3m".into(),
            waiting_for: "condition=Ready".into(),
            explanation: String::new(),
        };
        assert_eq!(timeout.exit_code(), 1);
        assert_eq!(timeout.kind(), "timeout");
    }

    #[test]
    fn a_note_keeps_the_kind_and_adds_a_line() {
        let noted = Error::Noted {
            source: std::sync::Arc::new(Error::usage("bad")),
            note: "because".into(),
        };
        assert_eq!(noted.kind(), "usage");
        assert_eq!(noted.exit_code(), 2);
        assert_eq!(noted.to_string(), "bad\n  because");
    }

    #[test]
    fn locked_says_what_who_and_what_to_do() {
        let at = |s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
        let mut locked = Locked {
            set: "external".into(),
            cluster: "cp".into(),
            holder: "laptop/4242/a1b2c3".into(),
            playbook: "/home/me/external.rhai".into(),
            context: "kind-cp".into(),
            acquired: Some(at(1_800_000_000)),
            renewed: Some(at(1_800_000_020)),
            duration_secs: 30,
            lost: false,
        };
        let e = Error::Locked(Box::new(locked.clone()));
        assert_eq!((e.kind(), e.exit_code()), ("locked", 1));
        assert_eq!(
            locked.render(at(1_800_000_024)),
            "another mesh-run run holds ApplySet `external` on cluster `cp`: holder laptop/4242/a1b2c3, \
             playbook /home/me/external.rhai (its context kind-cp), holding since 2027-01-15T08:00:00Z (24 s ago), \
             last renewed 2027-01-15T08:00:20Z (4 s ago)\n  nothing of the set was changed on `cp`; wait for that run to end, \
             or pass --instance NAME for an independent set; a killed run's lease expires 30 s after its last renewal \
             (kubectl get lease -n mesh-run external -o yaml)"
        );
        locked.lost = true;
        locked.renewed = None;
        let text = locked.render(at(1_800_000_024));
        assert!(
            text.starts_with("another mesh-run run took over ApplySet `external` on cluster `cp` from this run: holder laptop/4242/a1b2c3"),
            "{text}"
        );
        assert!(
            text.contains("last renewed unknown\n  this run stopped and pruned nothing"),
            "{text}"
        );
    }

    #[test]
    fn conflict_message_names_the_force_option() {
        let e = Error::Conflict {
            cluster: "cp".into(),
            object: "ConfigMap ns/a".into(),
            fields: ".data.k".into(),
        };
        assert!(e.to_string().contains("#{ force: true }"), "{e}");
    }
}
