//! The one error type of mesh-run. Every failure a playbook can meet is a
//! variant here; playbooks catch them by `kind` (`e.kind == "timeout"`).

use std::path::PathBuf;

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
    fn conflict_message_names_the_force_option() {
        let e = Error::Conflict {
            cluster: "cp".into(),
            object: "ConfigMap ns/a".into(),
            fields: ".data.k".into(),
        };
        assert!(e.to_string().contains("#{ force: true }"), "{e}");
    }
}
