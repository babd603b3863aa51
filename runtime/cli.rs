//! The command line. `--help` teaches: every flag says what it is for and
//! the examples are the commands people run.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::report::Format;

const EXAMPLES: &str = "\
Examples:
  # Try it on local real clusters (needs the Kubernetes binaries: scripts/kube-assets.sh)
  mesh-run sandbox --dir /tmp/mesh &                # prints: export KUBECONFIG=/tmp/mesh/kubeconfig
  export KUBECONFIG=/tmp/mesh/kubeconfig
  mesh-run playbooks/external.rhai \\
      --set CTX_CONTROL_PLANE_CLUSTER=control-plane --set CTX_DATA_PLANE_CLUSTER=data-plane

  # See what would change, without changing anything
  mesh-run playbooks/external.rhai --dry-run

  # Compile playbooks and their modules (no cluster needed)
  mesh-run check playbooks/*.rhai

  # Every primitive and stdlib function a playbook can call; one of them; a playbook's inputs
  mesh-run doc
  mesh-run doc istio::wait_ready
  mesh-run inputs playbooks/external.rhai

  # Where the time goes: every API request on stderr (paths and statuses, never bodies)
  MESH_RUN_TRACE=http mesh-run playbooks/external.rhai ...

Exit codes: 0 success, 1 the playbook failed, 2 usage or script error, 130 interrupted.";

const WATCH_EXAMPLES: &str = "\
Watches the playbook, every module it imports and every local file it applies (recomputed after
each run). A change stops a run in progress at once, even in a long wait, and runs it again.

Examples:
  mesh-run watch playbooks/external.rhai --clear \\
      --set CTX_CONTROL_PLANE_CLUSTER=control-plane --set CTX_DATA_PLANE_CLUSTER=data-plane
  mesh-run watch playbooks/external.rhai --output json     # a `rerun` event names each trigger

Each --timeout applies to one run. Ctrl-C stops the run where it is and exits (130).";

#[derive(Parser, Debug)]
#[command(
    name = "mesh-run",
    version,
    about = "Run multi-cluster Istio install procedures as editable Rhai playbooks",
    long_about = "Run multi-cluster Istio install procedures as editable Rhai playbooks.\n\n\
A playbook is a Rhai script calling Kubernetes primitives (apply, wait, get_jsonpath,\n\
create_remote_secret, ...) on cluster handles bound to kubeconfig contexts.",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Shorthand for `mesh-run run PLAYBOOK`.
    #[command(flatten)]
    pub run: Option<RunArgs>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a playbook against the clusters of a kubeconfig.
    #[command(after_help = EXAMPLES)]
    Run(RunArgs),
    /// Run a playbook, and run it again whenever it or a file it uses changes.
    #[command(after_help = WATCH_EXAMPLES)]
    Watch {
        #[command(flatten)]
        run: RunArgs,
        /// Clear the screen before each run.
        #[arg(long)]
        clear: bool,
    },
    /// Compile playbooks and the modules they import and find the mistakes that show without
    /// running: unknown functions, option keys and contexts, wrong argument counts, literal
    /// manifests that are not YAML, `--set` keys no input() reads. Touches no cluster.
    Check {
        #[arg(required = true, value_name = "PLAYBOOK")]
        playbooks: Vec<PathBuf>,
        /// The `--set` of the run to check: each key must be read by an input().
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
        sets: Vec<(String, String)>,
        /// Kubeconfig whose contexts the playbook's clusters must name [default: $KUBECONFIG, then ~/.kube/config].
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
    },
    /// Print the reference of every primitive and stdlib module a playbook can call.
    Doc {
        /// Only this entry: a primitive (`wait`), a module (`mesh/istio`) or a module function (`istio::wait_ready`).
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
    /// List a playbook's inputs (those of its modules too) with their defaults and docs.
    Inputs {
        #[arg(value_name = "PLAYBOOK")]
        playbook: PathBuf,
    },
    /// Start local real Kubernetes clusters (etcd + kube-apiserver + kube-controller-manager)
    /// with a simulated Sail Operator and LoadBalancer, until Ctrl-C.
    Sandbox(SandboxArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The playbook (a .rhai file).
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: PathBuf,

    /// An input for the playbook's `input("KEY")`; repeatable. The environment is read after these.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub sets: Vec<(String, String)>,

    /// Kubeconfig file [default: $KUBECONFIG, then ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Send every change as a server-side dry run: nothing changes; show what would (with diffs). Waits are skipped.
    #[arg(long)]
    pub dry_run: bool,

    /// `json`: one JSON event per line on stdout (for CI and tests).
    #[arg(long, value_enum, default_value = "text")]
    pub output: Format,

    /// Stop the whole run after this long, e.g. `10m`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

#[derive(Args, Debug, Clone)]
pub struct SandboxArgs {
    /// Cluster names, comma-separated; each is a kubeconfig context of the same name.
    #[arg(long, value_delimiter = ',', default_value = "control-plane,data-plane")]
    pub clusters: Vec<String>,
    /// Folder for the clusters' data and DIR/kubeconfig [default: a fresh temporary folder].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Kubernetes version of the binaries (`current` or e.g. `1.20.2`), as installed by scripts/kube-assets.sh.
    #[arg(long, default_value = "current")]
    pub kube_version: String,
    /// Keep DIR when stopping.
    #[arg(long)]
    pub keep: bool,
    /// Delay before the simulated Sail Operator writes a status.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub sim_delay: std::time::Duration,
}

fn parse_set(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got \"{s}\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn set_needs_key_and_value() {
        assert_eq!(parse_set("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert!(parse_set("A").is_err());
        assert!(parse_set("=x").is_err());
    }

    #[test]
    fn bare_playbook_means_run() {
        let cli = Cli::try_parse_from(["mesh-run", "p.rhai", "--set", "A=1", "--dry-run"]).unwrap();
        let run = cli.run.unwrap();
        assert_eq!(run.playbook, PathBuf::from("p.rhai"));
        assert!(run.dry_run);
        let cli = Cli::try_parse_from(["mesh-run", "check", "a.rhai", "b.rhai"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Check { playbooks, .. }) if playbooks.len() == 2));
    }

    #[test]
    fn watch_takes_the_options_of_run() {
        let cli = Cli::try_parse_from(["mesh-run", "watch", "p.rhai", "--set", "A=1", "--clear", "--output", "json"]).unwrap();
        let Some(Command::Watch { run, clear }) = cli.command else {
            panic!("not watch: {:?}", cli.command)
        };
        assert!(clear);
        assert_eq!(run.playbook, PathBuf::from("p.rhai"));
        assert_eq!(run.output, Format::Json);
    }
}
