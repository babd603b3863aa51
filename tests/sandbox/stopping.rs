//! Stopping a sandbox, gently or not, leaves no control-plane process (etcd,
//! apiserver, controller manager, scheduler, kwok) and, when gentle, no
//! folder. Each test starts a one-cluster sandbox of its own.

use std::time::{Duration, Instant};

use mesh_run::sandbox::ready::ReadyState;

use crate::support::{SandboxProcess, control_plane_processes};

#[test]
fn sigterm_stops_every_process_and_removes_the_folder() {
    let sandbox = SandboxProcess::start("sigterm", &["solo"]).unwrap();
    let dir = sandbox.dir().to_path_buf();
    let running = control_plane_processes(&dir);
    assert!(!running.is_empty(), "no control plane found for {}", dir.display());
    // Unless the sandbox said it runs without them (no network namespace, an old Kubernetes).
    if !sandbox.log_text().contains("without kube-scheduler, kwok and Nodes") {
        for binary in ["/kube-scheduler ", "/kwok "] {
            assert!(running.iter().any(|p| p.contains(binary)), "no {} in {running:#?}", binary.trim());
        }
    }
    sandbox.stop();
    assert_eq!(control_plane_processes(&dir), Vec::<String>::new());
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[test]
fn sigkill_of_the_sandbox_leaves_no_control_plane_process() {
    let sandbox = SandboxProcess::start("sigkill", &["solo"]).unwrap();
    let dir = sandbox.dir().to_path_buf();
    assert!(!control_plane_processes(&dir).is_empty());
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(sandbox.child.pid() as libc::pid_t, libc::SIGKILL) };
    // PDEATHSIG is immediate; allow the kernel a moment to deliver it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !control_plane_processes(&dir).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(control_plane_processes(&dir), Vec::<String>::new());
    // The killed sandbox could not remove DIR/ready; no reader may trust it.
    let ready = mesh_run::sandbox::ready::state(&dir);
    assert!(matches!(&ready, ReadyState::Stale(why) if why.contains("is gone")), "{ready:?}");
    sandbox.stop();
}
