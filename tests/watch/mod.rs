// In tests/watch/ (not tests/watch.rs): Cargo would build every tests/*.rs as a test binary of its own.
//! `mesh-run watch` as a user runs it: a real process on real files in a
//! temporary folder, against the shared sandbox's real API servers. Edits
//! change what is on the server; a long wait is cancelled by an edit; a
//! broken playbook is reported and watched on; other files never trigger.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::Value;

use crate::support::{self, SandboxHandle, Test};

mod prune;

const CLUSTERS: &[&str] = &["control-plane", "data-plane"];

/// Generous: the test machine is shared; a healthy rerun takes milliseconds.
const RUN: Duration = Duration::from_secs(30);

/// A playbook applying ConfigMap `watched` in `namespace` from `value` and
/// from the imported module `lib.rhai`.
fn playbook(namespace: &str, value: &str) -> String {
    format!(
        r#"import "lib" as lib;
let cp = cluster("control-plane");
cp.ensure_namespace("{namespace}");
let value = "{value}";
cp.apply(`
apiVersion: v1
kind: ConfigMap
metadata:
  name: watched
  namespace: {namespace}
data:
  value: ${{value}}
  from_lib: ${{lib::value()}}
`);
"#
    )
}

fn module(value: &str) -> String {
    format!("fn value() {{ \"{value}\" }}\n")
}

/// A running `mesh-run watch --output json`: its JSON events on a channel,
/// killed when dropped (also when a test panics).
struct Watching {
    child: Child,
    events: Receiver<Value>,
    /// Every event so far and stderr, for failure messages.
    seen: Vec<Value>,
    stderr: Arc<Mutex<String>>,
}

impl Watching {
    fn start(dir: &Path, sandbox: &SandboxHandle, playbook: &str) -> Watching {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-run"))
            .current_dir(dir)
            .args(["watch", playbook, "--output", "json", "--instance", &support::own_instance()])
            .env("KUBECONFIG", sandbox.kubeconfig())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mesh-run watch");
        let (tx, events) = channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line).unwrap_or_else(|_| serde_json::json!({"event": "not json", "line": line}));
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (mut pipe, sink) = (child.stderr.take().expect("stderr"), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Watching {
            child,
            events,
            seen: Vec::new(),
            stderr,
        }
    }

    fn fail(&self, what: &str) -> ! {
        let seen: Vec<String> = self.seen.iter().map(Value::to_string).collect();
        panic!(
            "{what}\n--- events:\n{}\n--- stderr:\n{}",
            seen.join("\n"),
            self.stderr.lock().unwrap()
        );
    }

    /// The next event, if one comes within `timeout`.
    fn next_within(&mut self, timeout: Duration) -> Option<Value> {
        match self.events.recv_timeout(timeout) {
            Ok(event) => {
                self.seen.push(event.clone());
                Some(event)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => self.fail("mesh-run watch exited"),
        }
    }

    /// The events of one whole run, up to and including its summary.
    fn run(&mut self) -> Vec<Value> {
        let deadline = Instant::now() + RUN;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(event) = self.next_within(left) else {
                self.fail("no end of run (summary) in time")
            };
            let done = event["event"] == "summary";
            events.push(event);
            if done {
                return events;
            }
        }
    }

    /// A rerun: its trigger (a path as the run names it) and its events.
    fn rerun(&mut self) -> (String, Vec<Value>) {
        let Some(event) = self.next_within(RUN) else {
            self.fail("no rerun")
        };
        if event["event"] != "rerun" {
            self.fail(&format!("expected a rerun event, got {event}"));
        }
        (event["trigger"].as_str().unwrap_or_default().to_string(), self.run())
    }

    /// The next event of `kind`, skipping others.
    fn until(&mut self, kind: &str) -> Value {
        let deadline = Instant::now() + RUN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_within(left) {
                Some(event) if event["event"] == kind => return event,
                Some(_) => {}
                None => self.fail(&format!("no {kind} event")),
            }
        }
    }

    /// Nothing happens for `quiet`: no rerun, no output at all.
    fn stays_quiet(&mut self, quiet: Duration, after: &str) {
        if let Some(event) = self.next_within(quiet) {
            self.fail(&format!("after {after}, expected no event, got {event}"));
        }
    }

    /// Ctrl-C: the exit code and how long the exit took.
    fn interrupt(&mut self) -> (Option<i32>, Duration) {
        let pid = self.child.id() as libc::pid_t;
        let sent = Instant::now();
        // SAFETY: signals our own child, which has not been reaped (we hold it).
        unsafe { libc::kill(pid, libc::SIGINT) };
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for mesh-run watch") {
                return (status.code(), sent.elapsed());
            }
            if sent.elapsed() > Duration::from_secs(10) {
                self.fail("still running 10s after Ctrl-C");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn summary_ok(events: &[Value]) -> bool {
    events.last().is_some_and(|e| e["event"] == "summary" && e["ok"] == true)
}

/// Replaces `from` by `to` in `file`, written in place (truncate and write).
fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", file.display());
    std::fs::write(file, text.replace(from, to)).unwrap();
}

/// Saves like vim or VS Code do: write a temporary file, rename it over.
fn atomic_save(file: &Path, text: &str) {
    let temp: PathBuf = file.with_file_name(format!(".{}.swp", file.file_name().unwrap().to_string_lossy()));
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, file).unwrap();
}

/// The ConfigMap's `key`, once it has become `value` (watch-based, bounded).
async fn configmap_becomes(sandbox: &SandboxHandle, namespace: &str, key: &str, value: &str) {
    let api: Api<ConfigMap> = Api::namespaced(sandbox.client("control-plane").await, namespace);
    let (key, value) = (key.to_string(), value.to_string());
    support::wait_for(
        api,
        "watched",
        move |cm: Option<&ConfigMap>| {
            cm.and_then(|cm| cm.data.as_ref())
                .and_then(|d| d.get(&key))
                .is_some_and(|v| *v == value)
        },
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test]
async fn edits_rerun_the_playbook_and_other_files_do_not() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let ns = "watch-test-1";
    let test = Test::new()
        .playbook("main.rhai", &playbook(ns, "one"))
        .playbook("lib.rhai", &module("lib-one"));
    let (main, lib) = (test.dir().join("main.rhai"), test.dir().join("lib.rhai"));
    let mut watch = Watching::start(test.dir(), sandbox, "main.rhai");
    assert!(summary_ok(&watch.run()), "first run");
    configmap_becomes(sandbox, ns, "value", "one").await;

    // The playbook, edited in place.
    edit(&main, "\"one\"", "\"two\"");
    let (trigger, events) = watch.rerun();
    assert_eq!(trigger, "main.rhai");
    assert!(summary_ok(&events));
    configmap_becomes(sandbox, ns, "value", "two").await;

    // An imported module: reloaded, not served from a cache.
    std::fs::write(&lib, module("lib-two")).unwrap();
    let (trigger, events) = watch.rerun();
    assert!(trigger.ends_with("lib.rhai"), "trigger {trigger}");
    assert!(summary_ok(&events));
    configmap_becomes(sandbox, ns, "from_lib", "lib-two").await;

    // An atomic save: one rerun, and the temporary file triggers nothing.
    atomic_save(&main, &playbook(ns, "three"));
    let (trigger, events) = watch.rerun();
    assert_eq!(trigger, "main.rhai");
    assert!(summary_ok(&events));
    configmap_becomes(sandbox, ns, "value", "three").await;
    watch.stays_quiet(Duration::from_millis(500), "one atomic save");

    // Other files in the watched folder.
    std::fs::write(test.dir().join("rendered.yaml"), "kind: ConfigMap\n").unwrap();
    std::fs::write(test.dir().join("notes.txt"), "unrelated\n").unwrap();
    watch.stays_quiet(Duration::from_secs(1), "writing other files in the folder");

    // A syntax error: a diagnostic at the line, and still watching.
    edit(&main, "let value = ", "let value = = ");
    let (_, events) = watch.rerun();
    let error = events
        .iter()
        .find(|e| e["event"] == "error")
        .unwrap_or_else(|| watch.fail("no error event"));
    assert_eq!(error["kind"], "script", "{error}");
    assert_eq!(error["line"], 4, "{error}");
    assert!(!summary_ok(&events));
    edit(&main, "let value = = \"three\"", "let value = \"four\"");
    let (trigger, events) = watch.rerun();
    assert_eq!(trigger, "main.rhai");
    assert!(summary_ok(&events), "fixed");
    configmap_becomes(sandbox, ns, "value", "four").await;

    let (code, _) = watch.interrupt();
    assert_eq!(code, Some(130));
}

#[tokio::test]
async fn an_edit_during_a_long_wait_cancels_it_and_reruns_at_once() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let ns = "watch-test-2";
    let waiting = format!(
        "{}cp.wait(\"configmap/never\", #{{ namespace: \"{ns}\", \"for\": \"create\", timeout: \"5m\" }});\n",
        playbook(ns, "one")
    );
    let test = Test::new().playbook("main.rhai", &waiting).playbook("lib.rhai", &module("lib"));
    let main = test.dir().join("main.rhai");
    let mut watch = Watching::start(test.dir(), sandbox, "main.rhai");
    watch.until("progress");
    configmap_becomes(sandbox, ns, "value", "one").await;
    // Each run holds the set's Lease while it waits.
    let leases: Api<Lease> = Api::namespaced(sandbox.client("control-plane").await, "mesh-run");
    let set = mesh_run::applyset::id::parent_name("main", Some(&support::own_instance()));
    let held = leases.get(&set).await.expect("the run's Lease");
    let holder = held.spec.as_ref().and_then(|s| s.holder_identity.clone()).unwrap_or_default();
    assert!(holder.contains(&format!("/{}/", watch.child.id())), "{holder}");

    let saved = Instant::now();
    edit(&main, "\"one\"", "\"two\"");
    let error = watch.until("error");
    assert_eq!(error["kind"], "interrupted", "{error}");
    assert!(error["message"].as_str().unwrap().contains("by a file change (rerun)"), "{error}");
    assert_eq!(error["line"], 15, "stopped at the wait: {error}");
    watch.until("rerun");
    let rerun_after = saved.elapsed();
    assert!(rerun_after < Duration::from_secs(2), "rerun {rerun_after:?} after the save");
    watch.until("progress");
    configmap_becomes(sandbox, ns, "value", "two").await;
    // The cancelled run released its Lease; the rerun took a new one.
    let again = leases.get(&set).await.expect("the rerun's Lease");
    assert_ne!(again.metadata.uid, held.metadata.uid, "released and taken again per rerun");

    // Ctrl-C in the middle of the rerun's wait: the Lease goes with it.
    let (code, took) = watch.interrupt();
    assert_eq!(code, Some(130));
    assert!(took < Duration::from_secs(1), "Ctrl-C took {took:?}");
    assert!(leases.get_opt(&set).await.unwrap().is_none(), "released on Ctrl-C");
}

#[test]
fn a_playbook_folder_that_does_not_exist_is_fatal() {
    let out = Test::new().args(["watch", "no/such/folder/main.rhai"]).run();
    out.status(2).stderr_contains("cannot watch");
}

#[tokio::test]
async fn a_local_file_the_playbook_applies_is_watched_too() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let ns = "watch-test-3";
    let manifest =
        |value: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: watched\n  namespace: {ns}\ndata:\n  value: {value}\n");
    let test = Test::new()
        .playbook(
            "deploy/main.rhai",
            &format!("let cp = cluster(\"control-plane\");\ncp.ensure_namespace(\"{ns}\");\ncp.apply_file(\"manifests/cm.yaml\");\n"),
        )
        .playbook("deploy/manifests/cm.yaml", &manifest("one"));
    let mut watch = Watching::start(test.dir(), sandbox, "deploy/main.rhai");
    assert!(summary_ok(&watch.run()), "first run");
    configmap_becomes(sandbox, ns, "value", "one").await;

    // Saved right away: the manifest's folder may not be watched yet.
    atomic_save(&test.dir().join("deploy/manifests/cm.yaml"), &manifest("two"));
    let (trigger, events) = watch.rerun();
    assert!(trigger.ends_with("manifests/cm.yaml"), "trigger {trigger}");
    assert!(summary_ok(&events));
    configmap_becomes(sandbox, ns, "value", "two").await;
}
