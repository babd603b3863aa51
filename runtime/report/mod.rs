//! What the user sees: one line per step, a live line while waiting, a
//! summary; or, with `--output json`, one JSON event per line.

mod event;
mod text;

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

pub use event::Event;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub struct Reporter {
    pub format: Format,
    started: Instant,
    steps: AtomicUsize,
    changed: AtomicUsize,
    /// A progress line is drawn on stderr and must be cleared before the next output.
    live: Mutex<bool>,
    tty: bool,
    /// A dry run without `-v`: text shows only the steps that would change something.
    changes_only: bool,
}

impl Reporter {
    pub fn new(format: Format) -> Self {
        Reporter {
            format,
            started: Instant::now(),
            steps: AtomicUsize::new(0),
            changed: AtomicUsize::new(0),
            live: Mutex::new(false),
            tty: std::io::stderr().is_terminal(),
            changes_only: false,
        }
    }

    /// Text output leaves out steps that change nothing (JSON keeps every event).
    pub fn changes_only(mut self, on: bool) -> Self {
        self.changes_only = on;
        self
    }

    pub fn emit(&self, event: Event) {
        if let Event::Step { outcome, .. } = &event {
            self.steps.fetch_add(1, Ordering::Relaxed);
            if !matches!(outcome.split(' ').next(), Some("unchanged" | "ok" | "skipped" | "absent")) {
                self.changed.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Event::Step { outcome, .. } = &event
            && self.changes_only
            && self.format == Format::Text
            && matches!(outcome.split(' ').next(), Some("unchanged" | "ok" | "absent"))
        {
            return;
        }
        let mut live = self.live.lock().expect("reporter lock");
        if *live {
            eprint!("\r\x1b[2K");
            *live = false;
        }
        match self.format {
            Format::Json => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", event.to_json());
                let _ = out.flush();
            }
            Format::Text => match &event {
                Event::Progress { .. } if self.tty => {
                    eprint!("{}", text::render(&event));
                    *live = true;
                }
                Event::Progress { .. } | Event::Warning { .. } | Event::Error { .. } => eprintln!("{}", text::render(&event)),
                _ => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{}", text::render(&event));
                    let _ = out.flush();
                }
            },
        }
    }

    /// Counts for the final summary: (steps, changed, elapsed).
    pub fn totals(&self) -> (usize, usize, std::time::Duration) {
        (
            self.steps.load(Ordering::Relaxed),
            self.changed.load(Ordering::Relaxed),
            self.started.elapsed(),
        )
    }

    pub fn is_tty(&self) -> bool {
        self.tty
    }
}
