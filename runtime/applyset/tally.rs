//! A dry run's plan, per cluster, gathered from its steps: what would be
//! created, changed, deleted or pruned, and what is already as the playbook
//! wants it.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Tally {
    clusters: Mutex<BTreeMap<String, Lists>>,
}

#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct Lists {
    pub create: Vec<String>,
    pub change: Vec<String>,
    pub delete: Vec<String>,
    pub prune: Vec<String>,
    pub unchanged: Vec<String>,
}

impl Tally {
    /// Counts one step by its outcome; reads (`get`, `wait`, ...) are no change.
    pub fn count(&self, cluster: &str, action: &str, object: &str, outcome: &str) {
        let mut clusters = self.clusters.lock().expect("tally lock");
        let lists = clusters.entry(cluster.to_string()).or_default();
        let outcome = outcome.split(' ').next().unwrap_or_default();
        // A change to an object the run creates is part of creating it.
        if outcome == "configured" && lists.create.iter().any(|o| o == object) {
            return;
        }
        let list = match (action, outcome) {
            ("get" | "wait" | "exec" | "http" | "remote-secret", _) => return,
            ("prune", _) => &mut lists.prune,
            (_, "created") => &mut lists.create,
            (_, "configured") => &mut lists.change,
            (_, "deleted") => &mut lists.delete,
            (_, "unchanged") => &mut lists.unchanged,
            _ => return,
        };
        if !list.iter().any(|o| o == object) {
            list.push(object.to_string());
        }
    }

    /// The plan of `cluster` so far.
    pub fn lists(&self, cluster: &str) -> Lists {
        self.clusters.lock().expect("tally lock").get(cluster).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_steps_into_the_plan() {
        let t = Tally::default();
        t.count("cp", "apply", "Istio default", "created");
        t.count("cp", "apply", "Istio default", "created");
        t.count("cp", "namespace", "Namespace sample", "unchanged");
        t.count("cp", "label", "Namespace sample", "configured");
        t.count("cp", "label", "Istio default", "configured");
        t.count("cp", "get", "svc/x {.a}", "ok");
        t.count("cp", "delete", "Secret a/b", "deleted");
        t.count("cp", "prune", "Secret a/c", "pruned");
        t.count("dp", "apply", "IstioCNI default", "unchanged");
        let l = t.lists("cp");
        assert_eq!(l.create, vec!["Istio default"]);
        assert_eq!(l.change, vec!["Namespace sample"]);
        assert_eq!(l.delete, vec!["Secret a/b"]);
        assert_eq!(l.prune, vec!["Secret a/c"]);
        assert_eq!(l.unchanged, vec!["Namespace sample"]);
        assert_eq!(t.lists("dp").unchanged, vec!["IstioCNI default"]);
        assert_eq!(t.lists("other"), Lists::default());
    }
}
