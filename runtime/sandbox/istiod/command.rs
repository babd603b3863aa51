//! How one istiod runs: `pilot-discovery` with its Pod's arguments, every
//! listener moved to a loopback port of its own, in its folder, inside a
//! private mount namespace where the folder's `var/run` is `/var/run`: the
//! service-account files sit at `/var/run/secrets/kubernetes.io/serviceaccount`
//! as in a Pod (in-cluster config, `LOCAL_CLUSTER_SECRET_WATCHER`), and the
//! host's `/run` stays as it is.

use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};

/// The loopback ports of one istiod, kept across restarts of its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IstiodPorts {
    pub http: u16,
    pub grpc: u16,
    pub secure_grpc: u16,
    pub monitoring: u16,
    pub https: u16,
    /// ControlZ (9876 in a Pod, never a container port).
    pub ctrlz: u16,
}

impl IstiodPorts {
    /// Six free loopback ports.
    pub fn allocate() -> io::Result<IstiodPorts> {
        let listeners = (0..6).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<io::Result<Vec<_>>>()?;
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(IstiodPorts {
            http: ports[0],
            grpc: ports[1],
            secure_grpc: ports[2],
            monitoring: ports[3],
            https: ports[4],
            ctrlz: ports[5],
        })
    }

    /// `(name, flag, the chart's container port, loopback port)` of each listener.
    fn listeners(&self) -> [(&'static str, &'static str, Option<i32>, u16); 6] {
        [
            ("http", "--httpAddr", Some(8080), self.http),
            ("grpc", "--grpcAddr", Some(15010), self.grpc),
            ("secure-grpc", "--secureGRPCAddr", Some(15012), self.secure_grpc),
            ("monitoring", "--monitoringAddr", Some(15014), self.monitoring),
            ("https", "--httpsAddr", Some(15017), self.https),
            ("ctrlz", "--ctrlz_port", None, self.ctrlz),
        ]
    }

    /// The loopback port that serves what istiod serves on `container_port` in a Pod.
    pub fn for_container_port(&self, container_port: i32) -> Option<u16> {
        self.listeners()
            .into_iter()
            .find(|(_, _, port, _)| *port == Some(container_port))
            .map(|(.., local)| local)
    }

    fn flags(&self) -> Vec<String> {
        let mut flags: Vec<String> = self
            .listeners()
            .into_iter()
            .map(|(_, flag, _, port)| match flag {
                "--ctrlz_port" => format!("{flag}={port}"),
                _ => format!("{flag}=127.0.0.1:{port}"),
            })
            .collect();
        flags.push("--ctrlz_address=127.0.0.1".into());
        flags
    }

    /// DIR/<cluster>/istiod/<namespace>-<pod>/ports: one line per listener,
    /// `NAME LOOPBACK [POD-ADDRESS]`, for people and tests (no secrets).
    pub fn file_text(&self, pod: &str, pod_ip: Ipv4Addr) -> String {
        let mut text = format!("# istiod of Pod {pod}: NAME LOOPBACK-ADDRESS [POD-ADDRESS]\n");
        for (name, _, container_port, port) in self.listeners() {
            let _ = write!(text, "{name} 127.0.0.1:{port}");
            if let Some(container_port) = container_port {
                let _ = write!(text, " {}", SocketAddr::from((pod_ip, container_port as u16)));
            }
            text.push('\n');
        }
        text
    }
}

/// What one istiod process needs.
pub struct IstiodLaunch<'a> {
    pub binary: &'a Path,
    pub folder: &'a Path,
    /// The Pod container's `args` (its image's entrypoint is pilot-discovery).
    pub args: &'a [String],
    /// The container's resolved environment.
    pub env: &'a [(String, String)],
    pub hostname: &'a str,
    pub apiserver_port: u16,
    pub ports: IstiodPorts,
}

/// The shell step that runs inside the new mount namespace: `$0` is the
/// folder's `var/run`, the rest is istiod's command line.
const ENTER_POD: &str = "mount --bind \"$0\" /var/run && exec \"$@\"";

impl IstiodLaunch<'_> {
    /// `unshare --mount --propagation private sh -c ENTER_POD FOLDER/var/run pilot-discovery ARGS... FLAGS...`,
    /// run in the folder with only the Pod's environment (and PATH for the wrapper).
    pub fn command(&self) -> Command {
        let mut command = Command::new("unshare");
        command.args(["--mount", "--propagation", "private", "sh", "-c", ENTER_POD]);
        command.arg(self.folder.join("var/run")).arg(self.binary);
        command.args(self.args).args(self.ports.flags());
        // Explicit forms of istiod's defaults (`./etc/istio/config/...`): the
        // same files, and the command line names the sandbox folder it belongs to.
        for (flag, file) in [("--meshConfig", "mesh"), ("--networksConfig", "meshNetworks")] {
            command.arg(format!("{flag}={}", self.folder.join("etc/istio/config").join(file).display()));
        }
        command.env_clear().current_dir(self.folder).stdin(Stdio::null());
        command.env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        command.env("HOSTNAME", self.hostname);
        // What a kubelet gives every container of the cluster (the `kubernetes` Service).
        let port = self.apiserver_port.to_string();
        command.env("KUBERNETES_SERVICE_HOST", "127.0.0.1");
        command.env("KUBERNETES_SERVICE_PORT", &port);
        command.env("KUBERNETES_SERVICE_PORT_HTTPS", &port);
        for (name, value) in self.env {
            command.env(name, value);
        }
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORTS: IstiodPorts = IstiodPorts {
        http: 41000,
        grpc: 41001,
        secure_grpc: 41002,
        monitoring: 41003,
        https: 41004,
        ctrlz: 41005,
    };

    #[test]
    fn every_listener_moves_to_loopback_after_the_pod_s_own_flags() {
        let args = vec!["discovery".to_string(), "--monitoringAddr=:15014".to_string()];
        let env = vec![("POD_NAME".to_string(), "istiod-1".to_string())];
        let launch = IstiodLaunch {
            binary: Path::new("/cache/pilot-discovery"),
            folder: Path::new("/sandbox/cp/istiod/istio-system-istiod-1"),
            args: &args,
            env: &env,
            hostname: "istiod-1",
            apiserver_port: 6443,
            ports: PORTS,
        };
        let command = launch.command();
        let argv: Vec<String> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            argv[..9],
            [
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                ENTER_POD,
                "/sandbox/cp/istiod/istio-system-istiod-1/var/run",
                "/cache/pilot-discovery",
                "discovery"
            ]
        );
        // pflag: the last occurrence wins over the chart's `--monitoringAddr=:15014`.
        let monitoring = argv.iter().rposition(|a| a.starts_with("--monitoringAddr")).unwrap();
        assert_eq!(argv[monitoring], "--monitoringAddr=127.0.0.1:41003");
        for flag in [
            "--httpAddr=127.0.0.1:41000",
            "--grpcAddr=127.0.0.1:41001",
            "--secureGRPCAddr=127.0.0.1:41002",
            "--httpsAddr=127.0.0.1:41004",
            "--ctrlz_port=41005",
            "--ctrlz_address=127.0.0.1",
            "--meshConfig=/sandbox/cp/istiod/istio-system-istiod-1/etc/istio/config/mesh",
        ] {
            assert!(argv.contains(&flag.to_string()), "{flag} missing from {argv:?}");
        }
        let env: Vec<_> = command
            .get_envs()
            .map(|(k, v)| (k.to_string_lossy(), v.map(|v| v.to_string_lossy())))
            .collect();
        assert!(env.contains(&("KUBERNETES_SERVICE_PORT".into(), Some("6443".into()))), "{env:?}");
        assert!(env.contains(&("POD_NAME".into(), Some("istiod-1".into()))), "{env:?}");
    }

    #[test]
    fn container_ports_map_to_loopback_ports_and_the_ports_file_names_both() {
        assert_eq!(PORTS.for_container_port(15017), Some(41004));
        assert_eq!(PORTS.for_container_port(9876), None);
        let text = PORTS.file_text("istio-system/istiod-1", Ipv4Addr::new(198, 18, 1, 1));
        assert!(text.contains("\nhttp 127.0.0.1:41000 198.18.1.1:8080\n"), "{text}");
        assert!(text.contains("\nctrlz 127.0.0.1:41005\n"), "{text}");
        let ports = IstiodPorts::allocate().unwrap();
        assert_ne!(ports.http, ports.https);
    }
}
