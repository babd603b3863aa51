//! What watch mode does next, decided without touching files, threads or
//! clocks: changed paths, finished runs and the passing of time go in, one
//! `Action` comes out. The loop in `mod.rs` executes it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::watcher::WatchedFile;
use crate::run::RunOutcome;

/// How long a file must stay quiet before the rerun starts: an editor's save
/// (truncate, write, close; or write a temp file and rename it over) is one
/// burst of events within a few milliseconds. Short, because the time from a
/// save to the rerun's first request is the point of watch mode.
pub const QUIET: Duration = Duration::from_millis(50);

/// A file rewritten without pause (a log, a generator) still reruns this often.
pub const MAX_DELAY: Duration = Duration::from_millis(500);

/// The one thing the loop does next.
pub enum Action {
    /// Nothing until the next event.
    Idle,
    /// A watched file changed under a running playbook: stop the run now
    /// (the rerun follows once it has stopped and the file is quiet).
    Cancel,
    /// Run the playbook again because `trigger` changed.
    Run { trigger: String },
    /// A run ended (its outcome; `None` if it panicked): watch what it used.
    Finished(Option<RunOutcome>),
    /// The watcher reported a problem it recovers from.
    Warn(String),
    /// Ctrl-C or SIGTERM: stop the run and exit.
    Quit,
}

/// A change waiting for its burst of events to end.
#[derive(Debug, Clone)]
struct Pending {
    trigger: String,
    first: Instant,
    last: Instant,
}

#[derive(Debug)]
pub struct Plan {
    /// Watched files by absolute path, with the name shown when one changes.
    files: HashMap<PathBuf, String>,
    running: bool,
    pending: Option<Pending>,
    /// Files that changed during a run without being watched yet: the run
    /// may have just imported them, which `finished` tells.
    unseen: HashSet<PathBuf>,
}

impl Plan {
    /// The first run is already under way, using `files` as far as we know.
    pub fn new(files: Vec<WatchedFile>) -> Self {
        Plan {
            files: files.into_iter().collect(),
            running: true,
            pending: None,
            unseen: HashSet::new(),
        }
    }

    pub fn watched(&self) -> usize {
        self.files.len()
    }

    /// Paths the watcher saw change (in a watched folder, any file).
    pub fn changed(&mut self, paths: &[PathBuf], now: Instant) -> Action {
        let mut hit = false;
        for path in paths {
            match self.files.get(path) {
                Some(name) => {
                    hit = true;
                    let first = self.pending.as_ref().map_or(now, |p| p.first);
                    let trigger = self.pending.take().map_or_else(|| name.clone(), |p| p.trigger);
                    self.pending = Some(Pending { trigger, first, last: now });
                }
                None if self.running => {
                    self.unseen.insert(path.clone());
                }
                None => {}
            }
        }
        if hit && self.running { Action::Cancel } else { Action::Idle }
    }

    /// A run ended and used `files`; they are watched from now on.
    pub fn finished(&mut self, files: Vec<WatchedFile>, now: Instant) {
        self.running = false;
        self.files = files.into_iter().collect();
        let unseen: Vec<PathBuf> = self.unseen.drain().collect();
        let imported_meanwhile = unseen.iter().find_map(|p| self.files.get(p));
        if let (None, Some(name)) = (&self.pending, imported_meanwhile) {
            self.pending = Some(Pending {
                trigger: name.clone(),
                first: now,
                last: now,
            });
        }
    }

    /// When to look again: the end of the quiet window of a pending change.
    /// None while a run is in progress: the rerun waits for it to stop.
    pub fn deadline(&self) -> Option<Instant> {
        match (&self.pending, self.running) {
            (Some(p), false) => Some((p.last + QUIET).min(p.first + MAX_DELAY)),
            _ => None,
        }
    }

    /// The rerun, once the pending change has been quiet long enough.
    pub fn due(&mut self, now: Instant) -> Action {
        match self.deadline() {
            Some(at) if at <= now => {
                let trigger = self.pending.take().map(|p| p.trigger).unwrap_or_default();
                self.running = true;
                Action::Run { trigger }
            }
            _ => Action::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<WatchedFile> {
        names.iter().map(|n| (PathBuf::from(format!("/w/{n}")), n.to_string())).collect()
    }

    fn paths(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(|n| PathBuf::from(format!("/w/{n}"))).collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A plan whose first run has finished, watching the playbook and a module.
    fn idle(t0: Instant) -> Plan {
        let mut plan = Plan::new(files(&["main.rhai"]));
        plan.finished(files(&["main.rhai", "lib.rhai"]), t0);
        plan
    }

    #[test]
    fn a_burst_of_events_is_one_rerun_after_the_quiet_window() {
        let t0 = Instant::now();
        let mut plan = idle(t0);
        for i in 0..5 {
            assert!(matches!(plan.changed(&paths(&["main.rhai"]), t0 + ms(i)), Action::Idle));
        }
        assert_eq!(plan.deadline(), Some(t0 + ms(4) + QUIET));
        assert!(matches!(plan.due(t0 + ms(10)), Action::Idle));
        assert!(matches!(plan.due(t0 + ms(4) + QUIET), Action::Run { trigger } if trigger == "main.rhai"));
        assert!(plan.running);
        assert_eq!(plan.deadline(), None);
        assert!(matches!(plan.due(t0 + ms(1000)), Action::Idle), "one rerun per save");
    }

    #[test]
    fn endless_writes_still_rerun_after_the_longest_delay() {
        let t0 = Instant::now();
        let mut plan = idle(t0);
        let mut t = t0;
        while t < t0 + MAX_DELAY + ms(100) {
            plan.changed(&paths(&["lib.rhai"]), t);
            t += ms(10);
        }
        assert_eq!(plan.deadline(), Some(t0 + MAX_DELAY));
    }

    #[test]
    fn the_first_changed_file_is_the_trigger() {
        let t0 = Instant::now();
        let mut plan = idle(t0);
        plan.changed(&paths(&["lib.rhai", "main.rhai"]), t0);
        assert!(matches!(plan.due(t0 + QUIET), Action::Run { trigger } if trigger == "lib.rhai"));
    }

    #[test]
    fn other_files_in_the_folder_never_trigger() {
        let t0 = Instant::now();
        let mut plan = idle(t0);
        assert!(matches!(plan.changed(&paths(&["out.yaml", ".main.rhai.swp"]), t0), Action::Idle));
        assert_eq!(plan.deadline(), None);
    }

    #[test]
    fn a_change_during_a_run_cancels_it_and_reruns_once_it_stopped() {
        let t0 = Instant::now();
        let mut plan = idle(t0);
        plan.changed(&paths(&["main.rhai"]), t0);
        assert!(matches!(plan.due(t0 + QUIET), Action::Run { .. }));
        // Edited again while that run waits.
        assert!(matches!(plan.changed(&paths(&["lib.rhai"]), t0 + ms(200)), Action::Cancel));
        assert_eq!(plan.deadline(), None, "no rerun before the cancelled run has stopped");
        plan.finished(files(&["main.rhai", "lib.rhai"]), t0 + ms(210));
        assert!(matches!(plan.due(t0 + ms(200) + QUIET), Action::Run { trigger } if trigger == "lib.rhai"));
    }

    #[test]
    fn a_module_edited_while_the_run_first_imports_it_reruns() {
        let t0 = Instant::now();
        let mut plan = Plan::new(files(&["main.rhai"]));
        assert!(matches!(plan.changed(&paths(&["lib.rhai", "notes.txt"]), t0), Action::Idle));
        plan.finished(files(&["main.rhai", "lib.rhai"]), t0 + ms(5));
        assert!(matches!(plan.due(t0 + ms(5) + QUIET), Action::Run { trigger } if trigger == "lib.rhai"));
    }

    #[test]
    fn files_the_run_wrote_but_did_not_use_do_not_rerun() {
        let t0 = Instant::now();
        let mut plan = Plan::new(files(&["main.rhai"]));
        plan.changed(&paths(&["rendered.yaml"]), t0);
        plan.finished(files(&["main.rhai"]), t0 + ms(5));
        assert_eq!(plan.deadline(), None);
    }

    #[test]
    fn a_file_no_longer_imported_stops_counting() {
        let t0 = Instant::now();
        let mut plan = idle(t0);
        plan.changed(&paths(&["main.rhai"]), t0);
        assert!(matches!(plan.due(t0 + QUIET), Action::Run { .. }));
        plan.finished(files(&["main.rhai"]), t0 + ms(100));
        assert!(matches!(plan.changed(&paths(&["lib.rhai"]), t0 + ms(200)), Action::Idle));
        assert_eq!(plan.deadline(), None);
        assert_eq!(plan.watched(), 1);
    }
}
