//! `mesh-run watch`: run a playbook, and run it again whenever it or a file
//! it uses changes (issue 5).
//!
//! The watcher (`watcher.rs`) only says which paths changed; one `select!`
//! loop turns those, finished runs, the clock and Ctrl-C into an `Action`
//! (`plan.rs`, no I/O) and a single `match` executes it. The playbook runs on
//! its own thread, as `mesh-run run` does, so the loop stays free to cancel
//! it. A failing run is reported and watched on; only a watcher that cannot
//! start is fatal.

mod plan;
mod watcher;

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

use crate::bridge::{Bridge, StopReason};
use crate::report::{Event, Format, Reporter};
use crate::run::{self, RunOptions, RunOutcome};
use plan::{Action, Plan};
use watcher::FileWatcher;

/// After Ctrl-C, how long the run gets to stop where it is and say so.
const STOP_GRACE: Duration = Duration::from_millis(800);

/// Runs `opts.playbook` until Ctrl-C; returns the exit code: 130 when
/// stopped, 1 or 2 when the watcher cannot start.
pub fn watch(runtime: &tokio::runtime::Runtime, opts: RunOptions, clear: bool) -> u8 {
    runtime.block_on(watch_loop(opts, clear))
}

async fn watch_loop(opts: RunOptions, clear: bool) -> u8 {
    let (change_tx, mut changes) = unbounded_channel();
    let (done_tx, mut finished) = unbounded_channel::<Option<RunOutcome>>();
    let (mut interrupt, mut terminate) = match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => return fatal(format!("cannot handle Ctrl-C: {e}"), 1),
    };
    let mut watcher = match FileWatcher::new(change_tx) {
        Ok(w) => w,
        Err(e) => return fatal(format!("cannot start the file watcher: {e}"), 1),
    };
    let mut used = vec![opts.playbook.clone()];
    let watched = watcher.watch(&used);
    if let Some((folder, e)) = watched.failed.first() {
        let code = if matches!(e.kind, notify::ErrorKind::PathNotFound) { 2 } else { 1 };
        return fatal(format!("cannot watch {}: {e}", folder.display()), code);
    }
    let reporter = Reporter::new(opts.output);
    let mut plan = Plan::new(watched.files);
    clear_screen(clear, opts.output);
    let mut current = match Run::start(&opts, &done_tx) {
        Ok(r) => Some(r),
        Err(e) => return fatal(format!("cannot start the run: {e}"), 1),
    };

    let mut stop = StopReason::Interrupted;
    loop {
        let deadline = plan.deadline().map(tokio::time::Instant::from_std);
        let action = tokio::select! {
            biased;
            _ = interrupt.recv() => Action::Quit,
            _ = terminate.recv() => {
                stop = StopReason::Terminated;
                Action::Quit
            }
            Some(change) = changes.recv() => match change {
                Ok(paths) => plan.changed(&paths, Instant::now()),
                Err(problem) => Action::Warn(problem),
            },
            Some(outcome) = finished.recv() => Action::Finished(outcome),
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                plan.due(Instant::now())
            }
        };
        match action {
            Action::Idle => {}
            Action::Cancel => {
                if let Some(run) = &current {
                    run.bridge.stop(StopReason::Rerun);
                }
            }
            Action::Run { trigger } => {
                clear_screen(clear, opts.output);
                reporter.emit(Event::Rerun { trigger });
                current = match Run::start(&opts, &done_tx) {
                    Ok(r) => Some(r),
                    Err(e) => return fatal(format!("cannot start the run: {e}"), 1),
                };
            }
            Action::Finished(outcome) => {
                let started = current.take().map(Run::finished);
                // A run that failed may have stopped before reaching some of its
                // files (a syntax error stops it before its imports): keep
                // watching what the runs before it used, so fixing any of them reruns.
                match outcome {
                    Some(RunOutcome { result: Ok(()), files }) => used = files,
                    Some(RunOutcome { result: Err(_), files }) => {
                        for file in files {
                            if !used.contains(&file) {
                                used.push(file);
                            }
                        }
                    }
                    None => {}
                }
                let watched = watcher.watch(&used);
                for (folder, e) in &watched.failed {
                    eprintln!(
                        "warning: cannot watch {}: {e}; changes there will not rerun the playbook",
                        folder.display()
                    );
                }
                // A file saved after the run started, in a folder watched only
                // now (the run had just found it), sent no event we saw.
                let missed = started.map(|t| watched.modified_since(t)).unwrap_or_default();
                plan.finished(watched.files, Instant::now());
                plan.changed(&missed, Instant::now());
                if opts.output == Format::Text {
                    let n = plan.watched();
                    eprintln!("watching {n} file{} for changes (Ctrl-C to stop)", if n == 1 { "" } else { "s" });
                }
            }
            Action::Warn(problem) => eprintln!("warning: {problem}"),
            Action::Quit => {
                let code = if stop == StopReason::Terminated { 143 } else { 130 };
                if let Some(run) = current.take() {
                    run.bridge.stop(stop);
                    let _ = tokio::time::timeout(STOP_GRACE, finished.recv()).await;
                }
                return code;
            }
        }
    }
}

/// One run of the playbook, on its own thread.
struct Run {
    bridge: Bridge,
    /// `--timeout`, which applies to each run.
    timer: Option<JoinHandle<()>>,
    started: SystemTime,
}

impl Run {
    fn start(opts: &RunOptions, done: &UnboundedSender<Option<RunOutcome>>) -> std::io::Result<Run> {
        let started = SystemTime::now();
        let bridge = Bridge::new(tokio::runtime::Handle::current());
        let timer = opts.timeout.map(|after| {
            let bridge = bridge.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                bridge.stop(StopReason::RunTimeout(humantime::format_duration(after).to_string()));
            })
        });
        let (opts, run_bridge, done) = (opts.clone(), bridge.clone(), done.clone());
        let playbook = std::thread::Builder::new().name("playbook".into());
        playbook.stack_size(crate::engine::PLAYBOOK_STACK).spawn(move || {
            // A panic is printed by the default hook; watching goes on.
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| run::run(&opts, run_bridge))).ok();
            let _ = done.send(outcome);
        })?;
        Ok(Run { bridge, timer, started })
    }

    /// When it started.
    fn finished(self) -> SystemTime {
        if let Some(timer) = self.timer {
            timer.abort();
        }
        self.started
    }
}

/// `--clear`: a fresh screen for each run (text output only: JSON lines are for programs).
fn clear_screen(clear: bool, output: Format) {
    if clear && output == Format::Text {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "\x1b[2J\x1b[3J\x1b[H");
        let _ = out.flush();
    }
}

fn fatal(message: String, code: u8) -> u8 {
    eprintln!("error: {message}");
    code
}
