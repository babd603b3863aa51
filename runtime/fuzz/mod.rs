//! Fuzzing on stable Rust, without extra tools (issue 15): a small
//! mutation fuzzer run as ordinary tests. Each target starts from its
//! committed corpus (`runtime/fuzz/corpus/TARGET/`), mutates inputs (bit
//! flips, inserted dictionary tokens, deletions, duplications, splices),
//! checks its properties on every input, and keeps inputs that reach an
//! outcome not seen before (a cheap stand-in for coverage) to mutate further.
//!
//! `cargo test --lib fuzz::` runs a few hundred inputs per target;
//! `scripts/fuzz.sh SECONDS` runs each for a bounded time. A panic fails the
//! test and saves the input to `target/fuzz/crashes/`; an input running
//! longer than [`HANG`] is saved to `target/fuzz/hangs/` and aborts the run.
//! A run is reproducible from the seed it prints (`MESH_RUN_FUZZ_SEED`).

mod targets;

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An input slower than this (unoptimized build) is a hang.
const HANG: Duration = Duration::from_secs(10);
/// Inputs per target when no time budget is given (a quick `cargo test --lib`).
const DEFAULT_EXECS: u64 = 400;
/// Inputs longer than this are cut: long inputs only slow the search down.
const MAX_LEN: usize = 4096;
const MAX_CORPUS: usize = 4096;

/// xorshift64*: small, fast, and reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// What one fuzz run did.
#[derive(Debug)]
pub struct Report {
    pub execs: u64,
    pub elapsed: Duration,
    pub outcomes: usize,
    pub corpus: usize,
}

/// Fuzzes `run` (which returns a short signature of the outcome and panics
/// when a property does not hold) from the corpus of `target`.
pub fn fuzz(target: &str, dictionary: &[&str], run: impl Fn(&[u8]) -> String) -> Report {
    let seed = std::env::var("MESH_RUN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            now.as_nanos() as u64 ^ u64::from(std::process::id())
        });
    let budget = std::env::var("MESH_RUN_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64);
    eprintln!("fuzz {target}: seed {seed}");
    let mut rng = Rng(seed.max(1));
    let mut corpus = load_corpus(target);
    assert!(!corpus.is_empty(), "no corpus for fuzz target {target}");
    let watchdog = Watchdog::start(target);
    let mut outcomes = HashSet::new();
    let started = Instant::now();
    let mut execs = 0u64;
    let mut index = 0usize;
    loop {
        let done = match budget {
            Some(budget) => started.elapsed() >= budget && index >= corpus.len(),
            None => execs >= DEFAULT_EXECS.max(corpus.len() as u64),
        };
        if done {
            break;
        }
        // The corpus itself first, then mutants.
        let input = if index < corpus.len() {
            index += 1;
            corpus[index - 1].clone()
        } else {
            mutate(&mut rng, &corpus, dictionary)
        };
        watchdog.begin(&input);
        let outcome = catch_unwind(AssertUnwindSafe(|| run(&input)));
        watchdog.end();
        execs += 1;
        match outcome {
            Ok(signature) => {
                if outcomes.insert(signature) && corpus.len() < MAX_CORPUS && index >= corpus.len() {
                    corpus.push(input);
                    index = corpus.len();
                }
            }
            Err(panic) => {
                let path = save(&format!("crashes/{target}-{seed}-{execs}"), &input);
                panic!(
                    "fuzz {target}: input {} panicked: {}\n  input: {:?}\n  reproduce: MESH_RUN_FUZZ_SEED={seed}",
                    path.display(),
                    panic_message(&panic),
                    String::from_utf8_lossy(&input)
                );
            }
        }
    }
    let report = Report {
        execs,
        elapsed: started.elapsed(),
        outcomes: outcomes.len(),
        corpus: corpus.len(),
    };
    eprintln!(
        "fuzz {target}: {} executions in {:.1}s ({:.0}/s), {} distinct outcomes, corpus {}, 0 crashes, 0 hangs",
        report.execs,
        report.elapsed.as_secs_f64(),
        report.execs as f64 / report.elapsed.as_secs_f64().max(1e-9),
        report.outcomes,
        report.corpus
    );
    report
}

/// One to four stacked mutations of a corpus entry.
fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], dictionary: &[&str]) -> Vec<u8> {
    let mut data = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, b" \n\t{}[]()'\"\\.,:=!-#*@?&|$0123456789aZ~\x00\xff"[rng.below(36)]),
            2 if !dictionary.is_empty() => {
                let token = dictionary[rng.below(dictionary.len())].as_bytes();
                data.splice(at..at, token.iter().copied());
            }
            3 if !data.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                data.drain(at.min(end)..end);
            }
            4 if at < data.len() => {
                let end = (at + 1 + rng.below(32)).min(data.len());
                let piece: Vec<u8> = data[at..end].to_vec();
                data.splice(at..at, piece);
            }
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len());
                let piece = &other[from..(from + 1 + rng.below(64)).min(other.len())];
                data.splice(at..at, piece.iter().copied());
            }
            _ => data.truncate(at),
        }
    }
    data.truncate(MAX_LEN);
    data
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime/fuzz/corpus").join(target)
}

fn load_corpus(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
}

/// Writes `input` under target/fuzz/ and returns the path.
fn save(name: &str, input: &[u8]) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz").join(name);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(&path, input);
    path
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

/// Aborts the process, saving the input, when one input runs past [`HANG`]:
/// a hang cannot be caught like a panic.
/// The input running now and since when.
type Running = Arc<Mutex<Option<(Instant, Vec<u8>)>>>;

struct Watchdog {
    current: Running,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Watchdog {
    fn start(target: &str) -> Watchdog {
        let current: Running = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (watched, stopped, target) = (current.clone(), stop.clone(), target.to_string());
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let guard = watched.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((since, input)) = guard.as_ref()
                    && since.elapsed() > HANG
                {
                    let path = save(&format!("hangs/{target}"), input);
                    eprintln!("fuzz {target}: an input ran over {HANG:?}: saved to {}", path.display());
                    std::process::abort();
                }
            }
        });
        Watchdog { current, stop }
    }

    fn begin(&self, input: &[u8]) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), input.to_vec()));
    }

    fn end(&self) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
