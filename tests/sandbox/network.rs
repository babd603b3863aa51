//! The sandbox's own network namespace: LoadBalancer addresses come from its
//! subnet and are answered on this machine; the namespace lives exactly as
//! long as the sandbox, also one killed by SIGKILL. Needs root (CI is): as
//! another user the sandbox runs without a namespace and these tests only
//! check that it says so.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams};
use mesh_run::sandbox::address_plan::Ipv4Prefix;
use serde_json::json;

use super::namespace;
use crate::support::{self, SandboxProcess, wait_for};

/// DIR/network's `netns NAME` and `subnet PREFIX`.
fn network_file(dir: &Path) -> Option<(String, Ipv4Prefix)> {
    let text = std::fs::read_to_string(dir.join("network")).ok()?;
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ').map(str::to_string))
    };
    Some((value("netns")?, value("subnet")?.parse().ok()?))
}

fn is_root() -> bool {
    // SAFETY: a plain getter.
    unsafe { libc::geteuid() == 0 }
}

fn ip(args: &[&str]) -> String {
    let output = std::process::Command::new("ip").args(args).output().expect("ip");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn namespace_exists(name: &str) -> bool {
    ip(&["netns", "list"]).lines().any(|l| l.split_whitespace().next() == Some(name))
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

fn wait_until(what: &str, timeout: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn load_balancer_ip(service: &Service) -> Option<Ipv4Addr> {
    let ingress = service.status.as_ref()?.load_balancer.as_ref()?.ingress.as_ref()?.first()?;
    ingress.ip.as_deref()?.parse().ok()
}

#[tokio::test]
async fn a_load_balancer_address_is_in_the_subnet_stays_on_reapply_and_answers_locally() {
    let sandbox = support::sandbox("default", super::CLUSTERS);
    let Some((_, subnet)) = network_file(sandbox.dir()) else {
        assert!(!is_root(), "running as root, yet the sandbox wrote no DIR/network");
        return;
    };
    let client = sandbox.client("control-plane").await;
    namespace(&client, "t-lb-network").await;
    let services: Api<Service> = Api::namespaced(client, "t-lb-network");
    let params = PatchParams::apply("mesh-run-test");
    let apply = |name: &'static str, label: &'static str| {
        let services = services.clone();
        let params = params.clone();
        async move {
            let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"rerun": label}},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 15012, "protocol": "TCP"}]}});
            services.patch(name, &params, &Patch::Apply(&service)).await.expect("apply Service");
        }
    };
    apply("gateway", "1").await;
    apply("other", "1").await;
    let has_ip = |s: Option<&Service>| s.and_then(load_balancer_ip).is_some();
    let first = wait_for(services.clone(), "gateway", has_ip, Duration::from_secs(30)).await;
    let address = load_balancer_ip(&first).unwrap();
    assert!(subnet.contains(address), "{address} is not in the sandbox's {subnet}");
    let other = wait_for(services.clone(), "other", has_ip, Duration::from_secs(30)).await;
    assert_ne!(load_balancer_ip(&other), Some(address));

    // A rerun applies the Service again; the simulator sees it (sim delay 200ms) and keeps its address.
    apply("gateway", "2").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        services.get("gateway").await.ok().as_ref().and_then(load_balancer_ip),
        Some(address)
    );

    // Nothing listens on 15012 there: the namespace's kernel refuses at once, nothing leaves the machine.
    let started = Instant::now();
    let refused = TcpStream::connect_timeout(&SocketAddr::from((address, 15012)), Duration::from_secs(3)).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused after {:?}",
        started.elapsed()
    );
}

#[test]
fn the_namespace_lives_as_long_as_the_sandbox() {
    let sandbox = SandboxProcess::start("network", &["solo"]).unwrap();
    let pid = sandbox.child.pid();
    let Some((netns, subnet)) = network_file(sandbox.dir()) else {
        assert!(!is_root(), "running as root, yet the sandbox wrote no DIR/network");
        assert!(sandbox.log_text().contains("no network namespace"), "{}", sandbox.log_text());
        return sandbox.stop();
    };
    assert_eq!(netns, format!("mesh-run-{pid}"));
    assert!(namespace_exists(&netns), "{}", ip(&["netns", "list"]));
    assert!(link_exists(&format!("mrh{pid}")));
    assert!(ip(&["-4", "route", "show", &subnet.to_string()]).contains(&format!("dev mrh{pid}")));
    sandbox.stop();
    assert!(!namespace_exists(&netns), "{netns} left after stopping");
    assert!(!link_exists(&format!("mrh{pid}")));
    assert_eq!(ip(&["-4", "route", "show", &subnet.to_string()]), "");
}

#[test]
fn a_killed_sandboxs_namespace_is_removed_and_so_are_stale_ones() {
    if !is_root() {
        return;
    }
    // Leftovers of a sandbox that is gone: named after a PID that has exited.
    let mut exited = std::process::Command::new("true").spawn().unwrap();
    let dead = exited.id();
    exited.wait().unwrap();
    let (stale_netns, stale_link) = (format!("mesh-run-{dead}"), format!("mrh{dead}"));
    // (Another test's sandbox, starting meanwhile, may remove them before ours does.)
    for args in [
        vec!["netns", "add", &stale_netns],
        vec!["link", "add", &stale_link, "type", "veth", "peer", "name", &format!("mrn{dead}")],
    ] {
        let status = std::process::Command::new("ip").args(&args).status().expect("ip");
        assert!(status.success(), "ip {}", args.join(" "));
    }

    let sandbox = SandboxProcess::start("network-kill", &["solo"]).unwrap();
    assert!(!namespace_exists(&stale_netns), "stale {stale_netns} survived a start");
    assert!(!link_exists(&stale_link), "stale {stale_link} survived a start");

    let (netns, _) = network_file(sandbox.dir()).expect("DIR/network");
    assert!(namespace_exists(&netns));
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(sandbox.child.pid() as libc::pid_t, libc::SIGKILL) };
    // The sandbox's watcher notices within a second.
    wait_until(&format!("{netns} removed after SIGKILL"), Duration::from_secs(5), || {
        !namespace_exists(&netns)
    });
    assert!(!link_exists(&format!("mrh{}", sandbox.child.pid())));
    sandbox.stop();
}
