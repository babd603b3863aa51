//! The events of a run: the JSON lines of `--output json` and the source of
//! every text line.

use serde::Serialize;

#[derive(Serialize, Debug, Clone)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// One finished step: an object applied, a wait satisfied, a value read.
    Step {
        cluster: String,
        action: String,
        object: String,
        outcome: String,
        duration_ms: u128,
        /// Nothing was changed: the step says what it would have done.
        dry_run: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Where a long wait stands.
    Progress {
        cluster: String,
        object: String,
        elapsed_ms: u128,
        state: String,
    },
    Warning {
        cluster: String,
        object: String,
        message: String,
    },
    /// `print()` from the playbook.
    Log {
        message: String,
    },
    Summary {
        ok: bool,
        steps: usize,
        changed: usize,
        duration_ms: u128,
    },
    Error {
        kind: String,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        file: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        line: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        column: Option<usize>,
    },
    /// The end of a dry run, per cluster: what the run would create,
    /// change, delete and prune, and how many objects are already as wanted.
    Plan {
        cluster: String,
        create: Vec<String>,
        change: Vec<String>,
        delete: Vec<String>,
        prune: Vec<String>,
        unchanged: usize,
    },
    /// Watch mode: a file changed and the playbook runs again.
    Rerun {
        trigger: String,
    },
}

impl Event {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}
