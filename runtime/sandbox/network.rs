//! The sandbox's own network namespace: a veth pair into it, and a slot of
//! 198.18.0.0/15 whose handed-out addresses (pods, nodes, LoadBalancers) the
//! namespace's kernel answers through `local` routes. The API servers may not
//! use loopback endpoint addresses; these are real, answered on this machine,
//! and nothing routed into the slot can leave it.
//!
//! Names carry the sandbox's PID (`mesh-run-<pid>`, veth `mrh<pid>`/`mrn<pid>`),
//! so any start can tell a dead sandbox's leftovers and remove them. A small
//! watcher process removes them too when the sandbox dies by SIGKILL.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::address_plan::{AddressPlan, Ipv4Prefix, SANDBOX_RANGE};
use crate::error::{Error, Result};

const NETNS_PREFIX: &str = "mesh-run-";
const HOST_LINK_PREFIX: &str = "mrh";
const NETNS_LINK_PREFIX: &str = "mrn";
/// Serialises slot choice among sandboxes starting at the same time.
const LOCK_FILE: &str = "/run/mesh-run-network.lock";

/// A live namespace and its veth. Dropping it removes both.
#[derive(Debug)]
pub struct SandboxNetwork {
    /// Under `/var/run/netns/`.
    pub netns: String,
    host_link: String,
    pub plan: AddressPlan,
    watcher: Option<Child>,
}

impl SandboxNetwork {
    /// Creates the namespace for `clusters` clusters, after removing dead
    /// sandboxes' leftovers. `None` (with one line on stderr) where this
    /// process may not create namespaces: the sandbox runs without one.
    pub fn create(clusters: usize) -> Result<Option<SandboxNetwork>> {
        // SAFETY: a plain getter.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("sandbox: no network namespace (creating one needs root): no nodes, LoadBalancer addresses are data only");
            return Ok(None);
        }
        let started = Instant::now();
        let _lock = lock()?;
        remove_stale()?;
        let pid = std::process::id();
        let netns = format!("{NETNS_PREFIX}{pid}");
        if let Err(Error::Sandbox { message }) = ip(&["netns", "add", &netns]) {
            if message.contains("Operation not permitted") || message.contains("Permission denied") {
                eprintln!("sandbox: no network namespace ({message}): no nodes, LoadBalancer addresses are data only");
                return Ok(None);
            }
            return Err(Error::Sandbox { message });
        }
        let mut network = SandboxNetwork {
            netns,
            host_link: format!("{HOST_LINK_PREFIX}{pid}"),
            plan: AddressPlan::data_only(clusters),
            watcher: None,
        };
        network.watcher = Some(network.watch(pid)?);
        network.plan = network.configure(clusters)?;
        eprintln!(
            "sandbox: network namespace {} with {} ready in {}ms",
            network.netns,
            network.plan.slot,
            started.elapsed().as_millis()
        );
        Ok(Some(network))
    }

    /// The veth, a free slot, the route into it and the `local` routes inside.
    fn configure(&self, clusters: usize) -> Result<AddressPlan> {
        let (ns, host) = (self.netns.as_str(), self.host_link.as_str());
        let inner = format!("{NETNS_LINK_PREFIX}{}", &host[HOST_LINK_PREFIX.len()..]);
        ip(&["link", "add", host, "type", "veth", "peer", "name", &inner, "netns", ns])?;
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        ip(&["-n", ns, "link", "set", &inner, "up"])?;
        ip(&["link", "set", host, "up"])?;
        let used = used_prefixes()?;
        let plan = AddressPlan::candidates(clusters)
            .find(|plan| !used.iter().any(|u| u.overlaps(&plan.slot)))
            .ok_or_else(|| Error::Sandbox {
                message: format!("network: no free slot for {clusters} cluster(s) left in {SANDBOX_RANGE}"),
            })?;
        let link = |addr| format!("{addr}/{}", plan.link().len);
        ip(&["addr", "add", &link(plan.host_address()), "dev", host])?;
        ip(&["-n", ns, "addr", "add", &link(plan.namespace_address()), "dev", &inner])?;
        let gateway = plan.namespace_address().to_string();
        ip(&["route", "add", &plan.slot.to_string(), "via", &gateway, "dev", host])?;
        for index in 0..clusters {
            ip(&[
                "-n",
                ns,
                "route",
                "add",
                "local",
                &plan.cluster(index).block.to_string(),
                "dev",
                "lo",
            ])?;
        }
        Ok(plan)
    }

    /// A shell loop in its own process group that outlives us and cleans up
    /// once we are gone, however we died. A zombie counts as gone: a parent
    /// may reap a killed sandbox late. (Our comm, `mesh-run`, has no spaces.)
    fn watch(&self, pid: u32) -> Result<Child> {
        let script = format!(
            "while read -r _ _ state _ < /proc/{pid}/stat && [ \"$state\" != Z ]; do sleep 1; done 2>/dev/null; \
             ip link del {} 2>/dev/null; ip netns del {} 2>/dev/null",
            self.host_link, self.netns
        );
        let mut command = Command::new("sh");
        command.args(["-c", &script]).process_group(0);
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        command.spawn().map_err(|e| Error::Sandbox {
            message: format!("network: starting the cleanup watcher (sh): {e}"),
        })
    }

    /// DIR/network: what tests and listeners inside the namespace need.
    pub fn write_file(&self, dir: &Path, clusters: &[String]) -> Result<()> {
        let mut text = format!("netns {}\nsubnet {}\n", self.netns, self.plan.slot);
        for (index, name) in clusters.iter().enumerate() {
            let cluster = self.plan.cluster(index);
            let (first, last) = (cluster.load_balancers.first(), cluster.load_balancers.last());
            if let (Some(first), Some(last)) = (first, last) {
                text.push_str(&format!(
                    "cluster {name} pods {} nodes {} load-balancers {first}-{last}\n",
                    cluster.pod_cidr,
                    cluster.node_ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
                ));
            }
        }
        let path = dir.join("network");
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
    }
}

impl Drop for SandboxNetwork {
    fn drop(&mut self) {
        // The host end takes its peer, the addresses and the route along.
        if let Err(e) = remove(&self.netns, &self.host_link) {
            eprintln!("sandbox: {e}");
        }
        if let Some(mut watcher) = self.watcher.take() {
            // SAFETY: signals the watcher's own process group (it leads it).
            unsafe { libc::killpg(watcher.id() as libc::pid_t, libc::SIGKILL) };
            let _ = watcher.wait();
        }
    }
}

/// A TCP listener on `addr` inside the namespace `netns` (the socket stays
/// there; only a short-lived thread enters the namespace to create it).
pub fn bind_in_namespace(netns: &str, addr: SocketAddr) -> io::Result<TcpListener> {
    if netns.contains('/') || netns.starts_with('.') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a namespace name: {netns:?}"),
        ));
    }
    let namespace = File::open(Path::new("/var/run/netns").join(netns))?;
    std::thread::scope(|scope| {
        let binder = scope.spawn(|| {
            // SAFETY: moves only this thread, which ends right after binding, into the namespace.
            if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            TcpListener::bind(addr)
        });
        binder
            .join()
            .map_err(|_| io::Error::other("the thread binding in the namespace panicked"))?
    })
}

/// Removes namespaces and veths named after PIDs that no longer run.
fn remove_stale() -> Result<()> {
    let dead = |name: &str, prefix: &str| {
        let pid = name.strip_prefix(prefix)?.parse::<u32>().ok()?;
        (!is_running(pid)).then_some(pid)
    };
    let namespaces = ip(&["netns", "list"])?;
    let links = ip(&["-o", "link", "show"])?;
    let mut pids: Vec<u32> = namespaces
        .lines()
        .filter_map(|line| dead(line.split_whitespace().next()?, NETNS_PREFIX))
        .chain(links.lines().filter_map(|line| {
            // "7: mrh1234@if6: <BROADCAST,...": the name, without the peer.
            let name = line.split(':').nth(1)?.trim().split('@').next()?;
            dead(name, HOST_LINK_PREFIX)
        }))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    for pid in pids {
        eprintln!("sandbox: removing network namespace {NETNS_PREFIX}{pid} of a sandbox that is gone");
        remove(&format!("{NETNS_PREFIX}{pid}"), &format!("{HOST_LINK_PREFIX}{pid}"))?;
    }
    Ok(())
}

/// Whether `pid` runs (a zombie has died, its parent just has not reaped it yet).
fn is_running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    state.is_some_and(|state| state != "Z")
}

/// Removes the veth and the namespace; either may be gone already.
fn remove(netns: &str, host_link: &str) -> Result<()> {
    let gone = |result: Result<String>| match result {
        Err(Error::Sandbox { message }) if message.contains("Cannot find device") || message.contains("No such file or directory") => {
            Ok(())
        }
        other => other.map(drop),
    };
    gone(ip(&["link", "del", host_link]))?;
    gone(ip(&["netns", "del", netns]))
}

/// Addresses and routes of this host's namespace inside [`SANDBOX_RANGE`]:
/// other sandboxes' slots (and anything else using the range).
fn used_prefixes() -> Result<Vec<Ipv4Prefix>> {
    let addresses = ip(&["-4", "-o", "addr", "show"])?;
    let routes = ip(&["-4", "route", "show", "table", "all"])?;
    let from_addresses = addresses.lines().filter_map(|line| {
        let mut words = line.split_whitespace();
        words.find(|w| *w == "inet")?;
        words.next()?.parse::<Ipv4Prefix>().ok()
    });
    // A route line starts with its destination, or with a type ("local", "broadcast") and then it.
    let from_routes = routes
        .lines()
        .filter_map(|line| line.split_whitespace().take(2).find_map(|w| w.parse().ok()));
    Ok(from_addresses
        .chain(from_routes)
        .filter(|prefix: &Ipv4Prefix| prefix.overlaps(&SANDBOX_RANGE))
        .collect())
}

/// Held while choosing and claiming a slot; released when dropped (or when we die).
fn lock() -> Result<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .map_err(|e| Error::io(LOCK_FILE, e))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(Error::io(LOCK_FILE, io::Error::last_os_error()));
    }
    Ok(file)
}

/// Runs `ip ARGS`; an error names the command and carries its stderr.
fn ip(args: &[&str]) -> Result<String> {
    let command = format!("ip {}", args.join(" "));
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Sandbox {
            message: format!("network: `{command}`: {e}"),
        })?;
    if !output.status.success() {
        return Err(Error::Sandbox {
            message: format!("network: `{command}` failed: {}", String::from_utf8_lossy(&output.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;
    use std::net::{SocketAddrV4, TcpStream};
    use std::time::Duration;

    /// The only unit test that creates a namespace: the name is this process's PID.
    #[test]
    fn a_listener_bound_in_the_namespace_answers_the_host_and_closed_ports_refuse_at_once() {
        let Some(network) = SandboxNetwork::create(2).expect("network") else {
            eprintln!("skipped: needs root");
            return;
        };
        let listed = ip(&["netns", "list"]).unwrap();
        assert!(
            listed.lines().any(|l| l.split_whitespace().next() == Some(network.netns.as_str())),
            "{listed}"
        );
        let address = network.plan.cluster(1).load_balancers[0];
        let listener = bind_in_namespace(&network.netns, SocketAddrV4::new(address, 0).into()).unwrap();
        let bound = listener.local_addr().unwrap();
        assert_eq!(bound.ip(), address);
        let client = TcpStream::connect_timeout(&bound, Duration::from_secs(2)).unwrap();
        let (server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        assert_eq!(peer.ip(), network.plan.host_address());
        drop((client, server));

        let started = Instant::now();
        let closed = SocketAddrV4::new(network.plan.cluster(0).node_ips[0], 1);
        let refused = TcpStream::connect_timeout(&closed.into(), Duration::from_secs(2)).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");
        assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());

        let (netns, host_link) = (network.netns.clone(), network.host_link.clone());
        drop(network);
        assert!(!ip(&["netns", "list"]).unwrap().contains(&netns));
        assert!(ip(&["link", "show", &host_link]).is_err());
    }

    #[test]
    fn namespace_names_cannot_leave_var_run_netns() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(bind_in_namespace("../x", addr).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}
