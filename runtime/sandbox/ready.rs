//! DIR/ready: the sandbox's "all clusters serve" mark. It holds the
//! sandbox's PID and appears atomically (written aside, then renamed), so a
//! reader never sees half a file; it is removed first thing when stopping.
//! A sandbox killed with SIGKILL cannot remove it, so readers trust it only
//! while that PID is alive and still a `mesh-run sandbox` (issue 15).

use std::path::Path;

use crate::error::{Error, Result};

const FILE: &str = "ready";

/// What DIR/ready says about the sandbox in DIR.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadyState {
    /// No mark: starting, stopped, or not a sandbox folder.
    NotReady,
    /// Serving: the sandbox process with this PID wrote the mark and runs.
    Ready(u32),
    /// A mark no running sandbox stands behind (killed with SIGKILL, or an
    /// empty mark of an older mesh-run).
    Stale(String),
}

/// Marks DIR as serving, with this process's PID.
pub fn mark(dir: &Path) -> Result<()> {
    let aside = dir.join(".ready.tmp");
    std::fs::write(&aside, format!("{}\n", std::process::id())).map_err(|e| Error::io(&aside, e))?;
    std::fs::rename(&aside, dir.join(FILE)).map_err(|e| Error::io(dir.join(FILE), e))
}

/// Removes the mark (stopping): from now on nobody should start using DIR.
pub fn clear(dir: &Path) {
    let _ = std::fs::remove_file(dir.join(FILE));
}

/// Reads DIR/ready and checks that its PID is a live `mesh-run sandbox`.
pub fn state(dir: &Path) -> ReadyState {
    let Ok(text) = std::fs::read_to_string(dir.join(FILE)) else {
        return ReadyState::NotReady;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return ReadyState::Stale(format!("{} holds no PID", dir.join(FILE).display()));
    };
    if is_live_sandbox(pid) {
        ReadyState::Ready(pid)
    } else {
        ReadyState::Stale(format!("process {pid} that marked {} ready is gone", dir.display()))
    }
}

/// PID runs (not a zombie) and its command line is `... sandbox ...`; a PID
/// reused by another program does not count.
fn is_live_sandbox(pid: u32) -> bool {
    let proc = Path::new("/proc").join(pid.to_string());
    let running = std::fs::read_to_string(proc.join("stat"))
        .ok()
        .and_then(|stat| Some(stat.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
        .unwrap_or(false);
    let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
    running && cmdline.split(|b| *b == 0).any(|arg| arg == b"sandbox")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_counts_only_while_a_sandbox_process_stands_behind_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(state(dir.path()), ReadyState::NotReady);
        // This test binary is alive but is no `mesh-run sandbox`.
        mark(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        assert!(matches!(state(dir.path()), ReadyState::Stale(m) if m.contains("is gone")));
        // A live process whose command line has a `sandbox` argument (a shell's $0).
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read x", "sandbox"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::fs::write(dir.path().join(FILE), format!("{}\n", child.id())).unwrap();
        assert_eq!(state(dir.path()), ReadyState::Ready(child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(state(dir.path()), ReadyState::Stale(_)));
        std::fs::write(dir.path().join(FILE), "").unwrap();
        assert!(matches!(state(dir.path()), ReadyState::Stale(m) if m.contains("holds no PID")));
        clear(dir.path());
        assert_eq!(state(dir.path()), ReadyState::NotReady);
    }
}
