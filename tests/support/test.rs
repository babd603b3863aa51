//! `Test`: runs the mesh-run binary like a user would, then asserts on its
//! exit code, stdout and stderr — printing both when an assertion fails.
//!
//! ```ignore
//! Test::new()
//!     .playbook("hello.rhai", r#"print("hi")"#)
//!     .args(["hello.rhai"])
//!     .run()
//!     .status(0)
//!     .stdout_contains("hi");
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Test {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    kubeconfig: Option<PathBuf>,
    own_set: bool,
}

impl Default for Test {
    fn default() -> Self {
        Test::new()
    }
}

impl Test {
    /// A test running in a fresh temporary folder (the working directory).
    pub fn new() -> Test {
        Test {
            dir: tempfile::Builder::new().prefix("mesh-run-test-").tempdir().expect("temp dir"),
            args: Vec::new(),
            env: Vec::new(),
            kubeconfig: None,
            own_set: false,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Test {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Test {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Writes `name` (relative to the test folder; subfolders are created) with `text`.
    pub fn playbook(self, name: &str, text: &str) -> Test {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("playbook folder");
        }
        std::fs::write(&path, text).expect("write playbook");
        self
    }

    /// Runs with `KUBECONFIG` set to `path` (without it, KUBECONFIG is unset:
    /// a test never reaches the developer's own clusters).
    pub fn kubeconfig(mut self, path: impl AsRef<Path>) -> Test {
        self.kubeconfig = Some(path.as_ref().to_path_buf());
        self
    }

    /// Runs in an ApplySet of this test's own (`--instance`, see
    /// [`own_instance`]): tests that run the same file name (`p.rhai`) on a
    /// shared sandbox at once must not wait for each other's Lease.
    pub fn own_set(mut self) -> Test {
        self.own_set = true;
        self
    }

    /// The test's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn run(self) -> Output {
        let mut args = self.args.clone();
        if self.own_set {
            args.extend(["--instance".to_string(), own_instance()]);
        }
        let mut command = Command::new(env!("CARGO_BIN_EXE_mesh-run"));
        command.current_dir(self.dir.path()).args(&args).env_remove("KUBECONFIG");
        if let Some(kubeconfig) = &self.kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let output = command.output().expect("run mesh-run");
        Output {
            args,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// An `--instance` name per test (libtest names each test's thread after
/// it): one run at a time per ApplySet, and tests on a shared sandbox run at once.
pub fn own_instance() -> String {
    let name = std::thread::current().name().unwrap_or("test").to_string();
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

/// What one run printed; assertions chain and show everything on failure.
#[derive(Debug)]
pub struct Output {
    pub args: Vec<String>,
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- mesh-run {} (exit {:?})\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        );
    }

    pub fn status(&self, code: i32) -> &Output {
        if self.code != Some(code) {
            self.fail(&format!("expected exit code {code}"));
        }
        self
    }

    pub fn stdout_contains(&self, text: &str) -> &Output {
        if !self.stdout.contains(text) {
            self.fail(&format!("stdout lacks {text:?}"));
        }
        self
    }

    pub fn stderr_contains(&self, text: &str) -> &Output {
        if !self.stderr.contains(text) {
            self.fail(&format!("stderr lacks {text:?}"));
        }
        self
    }

    pub fn stdout_lacks(&self, text: &str) -> &Output {
        if self.stdout.contains(text) {
            self.fail(&format!("stdout unexpectedly contains {text:?}"));
        }
        self
    }

    pub fn stderr_lacks(&self, text: &str) -> &Output {
        if self.stderr.contains(text) {
            self.fail(&format!("stderr unexpectedly contains {text:?}"));
        }
        self
    }
}
