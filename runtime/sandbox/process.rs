//! Child processes that cannot outlive mesh-run: each runs in its own process
//! group (so a stop reaches anything it forked) and carries
//! `PR_SET_PDEATHSIG(SIGKILL)`, so the kernel kills it when mesh-run dies,
//! even by SIGKILL or a panic that skips every destructor.
//!
//! PDEATHSIG fires when the *thread* that forked the child exits, not the
//! process. Tokio's blocking-pool threads exit after a short idle time, so a
//! child forked from one of them would be killed seconds later. Every child is
//! therefore forked by one spawner thread that lives as long as the process.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// The channel to the process-lifetime spawner thread; started on first use.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("mesh-run-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so this loop (and the thread) ends only with the process.
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("cannot start the process spawner thread");
        Mutex::new(tx)
    })
}

/// A running child in its own process group. Dropping it stops the group.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Child,
    exited: Option<ExitStatus>,
}

impl ChildProcess {
    /// Starts `command` (stdio as configured by the caller) in a new process
    /// group, with PDEATHSIG set, forked from the spawner thread.
    pub fn spawn(name: impl Into<String>, mut command: Command) -> io::Result<ChildProcess> {
        let parent = std::process::id() as libc::pid_t;
        command.process_group(0);
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) run between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl: then nobody would kill us.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let (reply_tx, reply_rx) = mpsc::channel();
        spawner()
            .lock()
            .map_err(|_| io::Error::other("process spawner lock poisoned"))?
            .send((command, reply_tx))
            .map_err(|_| io::Error::other("process spawner thread is gone"))?;
        let child = reply_rx.recv().map_err(|_| io::Error::other("process spawner thread is gone"))??;
        Ok(ChildProcess {
            name: name.into(),
            child,
            exited: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the child has exited (reaps it).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    fn signal_group(&mut self, signal: libc::c_int) {
        // Only while the leader is unreaped: afterwards its pid (= the group id) may be reused.
        if self.exit_status().is_none() {
            // SAFETY: plain syscall; a negative pid addresses the process group.
            unsafe { libc::kill(-(self.child.id() as libc::pid_t), signal) };
        }
    }

    /// SIGTERM to the group, up to `grace` to exit, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        stop_all(std::slice::from_mut(self), grace);
    }
}

/// Stops many children at once: SIGTERM to every group, one shared grace
/// period, then SIGKILL to the groups still alive, and reap them all.
pub fn stop_all(children: &mut [ChildProcess], grace: Duration) {
    children.iter_mut().for_each(|c| c.signal_group(libc::SIGTERM));
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && children.iter_mut().any(|c| c.exit_status().is_none()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for child in children.iter_mut().filter(|c| c.exited.is_none()) {
        child.signal_group(libc::SIGKILL);
        child.exited = child.child.wait().ok();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_forked_from_a_finished_thread_stay_alive() {
        // The spawner thread, not the caller's thread, forks: a short-lived caller must not kill the child.
        let mut child = std::thread::spawn(|| {
            let mut cmd = Command::new("sleep");
            cmd.arg("30");
            ChildProcess::spawn("sleep", cmd).unwrap()
        })
        .join()
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(child.exit_status().is_none(), "child died with the calling thread");
        child.stop(Duration::from_secs(1));
        assert!(child.exit_status().is_some());
    }

    #[test]
    fn stop_reaches_grandchildren_through_the_process_group() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "trap '' TERM; sleep 30 & wait"]);
        let mut child = ChildProcess::spawn("sh", cmd).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let pgid = child.pid() as libc::pid_t;
        child.stop(Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(live_members(pgid), Vec::<String>::new(), "a member of the process group survived");
    }

    /// Non-zombie processes in group `pgid` (a container's init may never reap the orphans' zombies).
    fn live_members(pgid: libc::pid_t) -> Vec<String> {
        let stats = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok());
        stats
            .filter(|stat| {
                // After the `(comm)` field: state, ppid, pgrp.
                let rest: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("").split_whitespace().collect();
                rest.first() != Some(&"Z") && rest.get(2) == Some(&pgid.to_string().as_str())
            })
            .collect()
    }
}
