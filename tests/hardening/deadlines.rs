//! A silent API server ends a run within the request deadline, with kind
//! `unreachable` naming cluster and URL: a loopback listener that accepts and
//! never answers, and a real kube-apiserver stopped with SIGSTOP mid-watch.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{SandboxProcess, Test};

/// A listener on loopback that accepts every connection and never writes a byte.
fn silent_listener() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for socket in listener.incoming() {
            held.push(socket);
        }
    });
    url
}

fn kubeconfig_for(dir: &Path, url: &str) -> PathBuf {
    let path = dir.join("silent-kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: silent\nclusters:\n- name: silent\n  cluster:\n    server: {url}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: silent\n  context:\n    cluster: silent\n    user: u\nusers:\n- name: u\n  user:\n    token: not-a-real-token\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_server_that_accepts_and_never_answers_is_unreachable_within_the_deadline() {
    let url = silent_listener();
    let test = Test::new().playbook("p.rhai", "cluster(\"silent\").get(\"cm/x\");\n");
    let kubeconfig = kubeconfig_for(test.dir(), &url);
    let started = Instant::now();
    test.kubeconfig(&kubeconfig)
        .args(["p.rhai", "--request-timeout", "1s"])
        .run()
        .status(1)
        .stderr_contains(&format!("error[unreachable]: cluster silent: API server {url} is unreachable"))
        .stderr_contains("got no answer within 1s (--request-timeout)")
        .stderr_contains("--> p.rhai:1:");
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
}

#[test]
fn a_wait_on_a_server_that_never_answers_says_so() {
    let url = silent_listener();
    let test = Test::new().playbook("p.rhai", "cluster(\"silent\").wait(\"cm/x\", #{ timeout: \"1s\" });\n");
    let kubeconfig = kubeconfig_for(test.dir(), &url);
    let started = Instant::now();
    // With no request deadline at all, the wait's own timeout still ends it — saying why.
    test.kubeconfig(&kubeconfig)
        .args(["p.rhai", "--request-timeout", "0"])
        .run()
        .status(1)
        .stderr_contains(&format!(
            "error[unreachable]: cluster silent: API server {url} is unreachable: no answer about cm/x during the wait's 1s"
        ))
        .stderr_lacks("does not exist");
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
}

/// The API server URL of `context` in `kubeconfig`.
fn server_of(kubeconfig: &Path, context: &str) -> String {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let cluster = config["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == context)
        .unwrap();
    cluster["cluster"]["server"].as_str().unwrap().to_string()
}

/// The pid of the sandbox's kube-apiserver.
fn apiserver_pid(dir: &Path) -> i32 {
    let dir = dir.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = String::from_utf8_lossy(&std::fs::read(entry.path().join("cmdline")).ok()?).replace('\0', " ");
            let binary = cmdline.split_whitespace().next()?.rsplit('/').next()?.to_string();
            (binary == "kube-apiserver" && cmdline.contains(&dir)).then_some(pid)
        })
        .expect("the sandbox's kube-apiserver")
}

/// SIGCONT on drop, so a failing assertion never leaves the server stopped.
struct Stopped(i32);

impl Stopped {
    fn new(pid: i32) -> Stopped {
        // SAFETY: plain syscall on a process of our own sandbox.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

#[test]
fn a_stopped_api_server_ends_a_watch_and_a_request_within_their_deadlines() {
    let sandbox = SandboxProcess::start("sigstop", &["solo"]).unwrap();
    let kubeconfig = sandbox.dir().join("kubeconfig");
    let server = server_of(&kubeconfig, "solo");
    let test = Test::new().playbook(
        "p.rhai",
        "let c = cluster(\"solo\");\nc.ensure_namespace(\"stopped\");\nprint(\"waiting\");\nc.wait(\"cm/never\", #{ namespace: \"stopped\", \"for\": \"create\", timeout: \"10m\" });\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-run"))
        .current_dir(test.dir())
        .args(["p.rhai", "--request-timeout", "2s"])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until the wait's watch is open.
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut byte = [0u8; 1];
    while !seen.contains("waiting") && stdout.read(&mut byte).unwrap() == 1 {
        seen.push(byte[0] as char);
    }
    std::thread::sleep(Duration::from_secs(1));
    let stopped = Stopped::new(apiserver_pid(sandbox.dir()));
    let since = Instant::now();
    let out = child.wait_with_output().unwrap();
    let elapsed = since.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("error[unreachable]: cluster solo: API server {server} is unreachable")),
        "{stderr}"
    );
    // The watch was asked to end after 5 s and given the 2 s deadline on top.
    assert!(
        elapsed < Duration::from_secs(10),
        "a stopped server held the wait for {elapsed:?}: {stderr}"
    );
    eprintln!("stopped API server detected mid-watch after {elapsed:?}");

    // A plain request to the stopped server: within its 2 s.
    let started = Instant::now();
    Test::new()
        .kubeconfig(&kubeconfig)
        .playbook("p.rhai", "cluster(\"solo\").get(\"ns/stopped\");\n")
        .args(["p.rhai", "--request-timeout", "2s"])
        .run()
        .status(1)
        .stderr_contains("error[unreachable]: cluster solo")
        .stderr_contains("got no answer within 2s (--request-timeout)");
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    eprintln!("stopped API server detected on a GET after {:?}", started.elapsed());

    drop(stopped);
    // Another set: the first run could not release its Lease of set `p` on
    // the stopped server, so that set stays held until 30 s after its last renewal.
    Test::new()
        .kubeconfig(&kubeconfig)
        .playbook("read.rhai", "cluster(\"solo\").get(\"ns/stopped\");\n")
        .args(["read.rhai"])
        .run()
        .status(0);
    sandbox.stop();
}
