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

Exit codes: 0 success, 1 the playbook failed, 2 usage or script error, 130 Ctrl-C, 143 SIGTERM.";

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
        /// Read `mesh/...` modules from DIR before the built-in stdlib.
        #[arg(long, value_name = "DIR", env = "MESH_RUN_STDLIB")]
        stdlib: Option<PathBuf>,
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
    /// The whole multi-cluster mesh at a glance: control planes, remote secrets, data planes,
    /// gateways and workloads of every context, checked live, with what to do about each failure.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
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

    /// Plan: send every change as a server-side dry run, so nothing changes; show what would
    /// (with diffs) and end with a summary per cluster. Works on empty clusters: values that
    /// exist only after an apply become placeholders. Waits are skipped.
    #[arg(long)]
    pub dry_run: bool,

    /// Keep what an earlier successful run of this playbook created and this run no longer
    /// applies (by default it is deleted after a successful run: see README, "Pruning").
    #[arg(long, overrides_with = "prune")]
    pub no_prune: bool,

    /// Prune even when the set was last recorded by another playbook file of the same name
    /// (by default that run keeps such objects and warns).
    #[arg(long, overrides_with = "no_prune")]
    pub prune: bool,

    /// Names this installation when one playbook is run more than once on the same clusters
    /// (two meshes): each instance owns, and prunes, only its own objects.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,

    /// With --dry-run: show every step, not only the ones that would change something.
    #[arg(short, long)]
    pub verbose: bool,

    /// `json`: one JSON event per line on stdout (for CI and tests).
    #[arg(long, value_enum, default_value = "text")]
    pub output: Format,

    /// Stop the whole run after this long, e.g. `10m`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,

    /// Give up on any one API request after this long (kubectl's flag; `0`: never). A watch is
    /// ended by the server within this long and given this long again before its connection counts as dead.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_request_timeout)]
    pub request_timeout: RequestTimeout,

    /// Read `mesh/...` modules and bundled manifests from DIR before the built-in stdlib
    /// (to try stdlib edits without rebuilding). Announced on stderr.
    #[arg(long, value_name = "DIR", env = "MESH_RUN_STDLIB")]
    pub stdlib: Option<PathBuf>,
}

/// `--request-timeout`: None means no deadline (`0`, as kubectl).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestTimeout(pub Option<std::time::Duration>);

fn parse_request_timeout(s: &str) -> Result<RequestTimeout, String> {
    if s.trim() == "0" {
        return Ok(RequestTimeout(None));
    }
    let d = humantime::parse_duration(s).map_err(|e| format!("expected a duration like 30s or 2m, or 0 for none: {e}"))?;
    Ok(RequestTimeout((!d.is_zero()).then_some(d)))
}

const STATUS_EXAMPLES: &str = "\
Reads every context concurrently (an unreachable one is reported, not fatal) and checks each
remote secret live, why a data plane is RemoteIstiodNotReady, gateway address drift, meshes
colliding on one control plane and istiod's own /debug/clusterz.

Examples:
  mesh-run status                                   # every context of the kubeconfig
  mesh-run status --context control-plane,data-plane
  mesh-run status --output json | jq '.checks[] | select(.verdict == \"fail\")'
  mesh-run status --output svg > mesh.svg           # a picture, drawn by mesh-run itself
  mesh-run status --watch                           # redrawn on every change, beside `mesh-run watch`

Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 usage.";

/// `mesh-run status` output formats.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    /// A tree per cluster, then the checks (colour on a terminal).
    Text,
    /// The graph and the checks (schema in the README).
    Json,
    /// Graphviz DOT.
    Dot,
    /// A self-contained SVG picture.
    Svg,
}

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// Contexts to read, comma-separated [default: every context of the kubeconfig].
    #[arg(long = "context", value_delimiter = ',', value_name = "CONTEXT")]
    pub contexts: Vec<String>,
    /// Kubeconfig file [default: $KUBECONFIG, then ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub output: StatusFormat,
    /// Redraw the text view whenever a cluster changes (watches, not polling), until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// Give up on any one API request after this long (`0`: never); a context that does not answer is reported.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_request_timeout)]
    pub request_timeout: RequestTimeout,
}

#[derive(Args, Debug, Clone)]
pub struct SandboxArgs {
    /// Cluster names, comma-separated; each is a kubeconfig context of the same name.
    #[arg(long, value_delimiter = ',', default_value = "control-plane,data-plane")]
    pub clusters: Vec<String>,
    /// Folder for the clusters' data and DIR/kubeconfig [default: a fresh temporary folder].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Kubernetes version of the binaries (`current`, `oldest` or e.g. `1.30.4`), as installed by scripts/kube-assets.sh.
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
        assert!(!run.no_prune && !run.verbose && run.instance.is_none());
        let cli = Cli::try_parse_from(["mesh-run", "p.rhai", "--prune", "--no-prune", "--instance", "m2", "-v"]).unwrap();
        let run = cli.run.unwrap();
        assert!(run.no_prune && !run.prune, "the last of --prune/--no-prune wins");
        assert!(run.verbose);
        assert_eq!(run.instance.as_deref(), Some("m2"));
        let cli = Cli::try_parse_from(["mesh-run", "check", "a.rhai", "b.rhai"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Check { playbooks, .. }) if playbooks.len() == 2));
    }

    #[test]
    fn request_timeout_is_finite_unless_zero() {
        let cli = Cli::try_parse_from(["mesh-run", "p.rhai"]).unwrap();
        assert_eq!(
            cli.run.unwrap().request_timeout,
            RequestTimeout(Some(std::time::Duration::from_secs(30)))
        );
        assert_eq!(
            parse_request_timeout("2s").unwrap(),
            RequestTimeout(Some(std::time::Duration::from_secs(2)))
        );
        assert_eq!(parse_request_timeout("0").unwrap(), RequestTimeout(None));
        assert!(parse_request_timeout("soon").is_err());
    }

    #[test]
    fn status_takes_contexts_and_a_format() {
        let cli = Cli::try_parse_from(["mesh-run", "status", "--context", "a,b", "--output", "svg"]).unwrap();
        let Some(Command::Status(args)) = cli.command else {
            panic!("not status: {:?}", cli.command)
        };
        assert_eq!(args.contexts, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(args.output, StatusFormat::Svg);
        assert!(Cli::try_parse_from(["mesh-run", "status", "--output", "png"]).is_err());
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
