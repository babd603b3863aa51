//! Real `mesh-run sandbox` processes for the tests. Shared ones are started
//! once per name per test binary and stopped when the binary exits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use mesh_run::sandbox::assets::Assets;
use mesh_run::sandbox::process::{self, ChildProcess};
use mesh_run::sandbox::ready::ReadyState;

/// The Kubernetes version under test: `MESH_RUN_TEST_KUBE_VERSION`, default `current`.
pub fn kube_version() -> String {
    std::env::var("MESH_RUN_TEST_KUBE_VERSION").unwrap_or_else(|_| "current".into())
}

/// A running `mesh-run sandbox` child: its folder holds `kubeconfig` and `ready`.
pub struct SandboxProcess {
    /// Parent folder of `dir` and of the sandbox's own log.
    root: PathBuf,
    dir: PathBuf,
    log: PathBuf,
    pub child: ChildProcess,
}

impl SandboxProcess {
    /// Starts the real binary (own process group, killed with the test
    /// binary via PDEATHSIG) and waits for DIR/ready.
    pub fn start(label: &str, clusters: &[&str]) -> Result<SandboxProcess, String> {
        let root = tempfile::Builder::new()
            .prefix(&format!("mesh-run-test-{label}-"))
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        let (dir, log) = (root.join("sandbox"), root.join("sandbox.log"));
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_mesh-run"));
        command
            .args(["sandbox", "--clusters", &clusters.join(","), "--kube-version", &kube_version()])
            .arg("--dir")
            .arg(&dir)
            .args(["--sim-delay", "200ms"])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file);
        let child = ChildProcess::spawn(format!("mesh-run sandbox {label}"), command).map_err(|e| e.to_string())?;
        let mut sandbox = SandboxProcess { root, dir, log, child };
        let deadline = Instant::now() + Duration::from_secs(180);
        // Ready only when the mark's PID is this very sandbox (not a stale mark).
        while mesh_run::sandbox::ready::state(&sandbox.dir) != ReadyState::Ready(sandbox.child.pid()) {
            if let Some(status) = sandbox.child.exit_status() {
                return Err(format!("mesh-run sandbox exited ({status}):\n{}", sandbox.log_text()));
            }
            if Instant::now() > deadline {
                return Err(format!("mesh-run sandbox not ready after 180s:\n{}", sandbox.log_text()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(sandbox)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the sandbox the way a user does (SIGTERM) and removes the test's folder.
    pub fn stop(mut self) {
        self.child.stop(Duration::from_secs(15));
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A shared sandbox: what tests see of it.
pub struct SandboxHandle {
    dir: PathBuf,
}

impl SandboxHandle {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The API server URL of `context` in the sandbox's kubeconfig.
    pub fn server(&self, context: &str) -> String {
        let text = std::fs::read_to_string(self.kubeconfig()).expect("sandbox kubeconfig");
        let kubeconfig: serde_json::Value = serde_saphyr::from_str(&text).expect("sandbox kubeconfig parses");
        let clusters = kubeconfig["clusters"].as_array().expect("clusters in sandbox kubeconfig");
        let cluster = clusters
            .iter()
            .find(|c| c["name"] == context)
            .expect("cluster in sandbox kubeconfig");
        cluster["cluster"]["server"].as_str().expect("server URL").to_string()
    }

    /// A kube client for `context` of the sandbox's kubeconfig (TLS verified).
    pub async fn client(&self, context: &str) -> kube::Client {
        let yaml = std::fs::read_to_string(self.kubeconfig()).expect("sandbox kubeconfig");
        mesh_run::sandbox::kubeconfig::client_for(&yaml, context)
            .await
            .expect("client for sandbox context")
    }

    /// The `kubectl` of the Kubernetes version under test.
    pub fn kubectl(&self) -> PathBuf {
        let assets = Assets::locate(&kube_version()).expect("kube assets");
        assets.kubectl.expect("no kubectl next to kube-apiserver")
    }
}

type Slot = &'static OnceLock<Result<SandboxHandle, String>>;

/// Shared sandbox processes, stopped at exit.
static RUNNING: Mutex<Vec<SandboxProcess>> = Mutex::new(Vec::new());

/// The sandbox `name` with `clusters`, started on first use (concurrent
/// callers wait for the same start) and shared by every test of the binary.
pub fn sandbox(name: &'static str, clusters: &[&str]) -> &'static SandboxHandle {
    static SLOTS: OnceLock<Mutex<HashMap<&'static str, Slot>>> = OnceLock::new();
    let slot: Slot = *SLOTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name)
        .or_insert_with(|| Box::leak(Box::new(OnceLock::new())));
    let started = slot.get_or_init(|| {
        stop_at_exit();
        let sandbox = SandboxProcess::start(name, clusters)?;
        let handle = SandboxHandle { dir: sandbox.dir.clone() };
        RUNNING.lock().unwrap_or_else(|e| e.into_inner()).push(sandbox);
        Ok(handle)
    });
    match started {
        Ok(handle) => handle,
        Err(message) => panic!("sandbox {name} did not start: {message}"),
    }
}

/// libtest has no teardown hook, but it leaves `main` normally (or via
/// `process::exit`), so C `atexit` runs: there the sandboxes get SIGTERM and
/// clean up after themselves. If the test binary is killed, PDEATHSIG does it.
fn stop_at_exit() {
    static REGISTER: Once = Once::new();
    extern "C" fn stop_all() {
        let mut running = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|e| e.into_inner()));
        let mut children: Vec<ChildProcess> = Vec::new();
        let mut roots = Vec::new();
        for sandbox in running.drain(..) {
            roots.push(sandbox.root.clone());
            children.push(sandbox.child);
        }
        process::stop_all(&mut children, Duration::from_secs(15));
        roots.iter().for_each(|root| {
            let _ = std::fs::remove_dir_all(root);
        });
    }
    // SAFETY: registers a plain function; it runs once, at process exit.
    REGISTER.call_once(|| unsafe {
        libc::atexit(stop_all);
    });
}

/// Live (non-zombie) etcd / kube-apiserver / kube-controller-manager /
/// kube-scheduler / kwok / pilot-discovery processes whose command line mentions `dir`.
pub fn control_plane_processes(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let state = stat.rsplit_once(')')?.1.split_whitespace().next()?.to_string();
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let binary = cmdline.split_whitespace().next()?.rsplit('/').next()?.to_string();
            let control_plane = [
                "etcd",
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "kwok",
                "pilot-discovery",
            ];
            let control_plane = control_plane.contains(&binary.as_str());
            (state != "Z" && control_plane && cmdline.contains(&dir)).then_some(cmdline)
        })
        .collect()
}
