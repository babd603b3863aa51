//! mesh-run's entry point: parse the command line, run, map the outcome to
//! an exit code (0 ok, 1 playbook failed, 2 usage/script error, 130 Ctrl-C, 143 SIGTERM).

use std::process::ExitCode;

use clap::Parser;
use mesh_run::bridge::{Bridge, StopReason};
use mesh_run::cli::{Cli, Command, RunArgs};
use mesh_run::run::{self, RunOptions};

/// Counts the heap, for the cap on a run's memory (`mesh_run::memory`).
#[global_allocator]
static ALLOCATOR: mesh_run::memory::CountingAllocator = mesh_run::memory::CountingAllocator;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match (cli.command, cli.run) {
        (Some(Command::Run(args)), _) | (None, Some(args)) => run_once(&runtime, args),
        (Some(Command::Watch { run, clear }), _) => match checked_options(run) {
            Ok(opts) => mesh_run::watch::watch(&runtime, opts, clear),
            Err(code) => code,
        },
        (
            Some(Command::Check {
                playbooks,
                stdlib,
                sets,
                kubeconfig,
            }),
            _,
        ) => check(&playbooks, sets, kubeconfig, stdlib),
        (Some(Command::Doc { name: None }), _) => {
            print!("{}", mesh_run::doc::reference());
            0
        }
        (Some(Command::Doc { name: Some(name) }), _) => match mesh_run::doc::entry(&name) {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(e) => {
                eprintln!("error[usage]: {e}");
                2
            }
        },
        (Some(Command::Inputs { playbook }), _) => match run::inputs(&playbook) {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(e) => {
                eprintln!("{e}");
                2
            }
        },
        (Some(Command::Status(args)), _) => runtime.block_on(mesh_run::status::command::run(args)),
        (Some(Command::Sandbox(args)), _) => runtime.block_on(sandbox(args)),
        (None, None) => {
            eprintln!("error: no playbook given\n\nUsage: mesh-run PLAYBOOK [--set KEY=VALUE]...   (mesh-run --help for more)");
            2
        }
    };
    ExitCode::from(code)
}

pub fn options(args: RunArgs) -> RunOptions {
    RunOptions {
        playbook: args.playbook,
        sets: args.sets.into_iter().collect(),
        kubeconfig: mesh_run::kube::Clusters::default_path(args.kubeconfig),
        dry_run: args.dry_run,
        prune: match (args.prune, args.no_prune) {
            (_, true) => Some(false),
            (true, _) => Some(true),
            _ => None,
        },
        instance: args.instance,
        verbose: args.verbose,
        output: args.output,
        timeout: args.timeout,
        stdlib: args.stdlib,
        request_timeout: args.request_timeout.0,
    }
}

/// The run's options, once a `--stdlib` override is checked and announced.
fn checked_options(args: RunArgs) -> Result<RunOptions, u8> {
    let opts = options(args);
    if let Some(dir) = &opts.stdlib
        && let Err(e) = mesh_run::stdlib::announce_override(dir)
    {
        eprintln!("error[usage]: {e}");
        return Err(2);
    }
    Ok(opts)
}

fn run_once(runtime: &tokio::runtime::Runtime, args: RunArgs) -> u8 {
    let opts = match checked_options(args) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let bridge = Bridge::new(runtime.handle().clone());
    runtime.spawn(stop_on_signals(bridge.clone()));
    if let Some(t) = opts.timeout {
        let b = bridge.clone();
        runtime.spawn(async move {
            tokio::time::sleep(t).await;
            b.stop(StopReason::RunTimeout(humantime::format_duration(t).to_string()));
        });
    }
    let outcome = std::thread::scope(|s| {
        let playbook = std::thread::Builder::new()
            .name("playbook".into())
            .stack_size(mesh_run::engine::PLAYBOOK_STACK);
        match playbook.spawn_scoped(s, || run::run(&opts, bridge)) {
            Ok(thread) => thread.join(),
            Err(e) => Err(Box::new(e) as Box<dyn std::any::Any + Send>),
        }
    });
    match outcome {
        Ok(o) => match o.result {
            Ok(()) => 0,
            Err(d) => d.error.exit_code() as u8,
        },
        Err(_) => 1,
    }
}

/// First Ctrl-C or SIGTERM: stop the run where it is (the error names which);
/// a second Ctrl-C exits at once.
async fn stop_on_signals(bridge: Bridge) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term_recv = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    let reason = tokio::select! {
        _ = tokio::signal::ctrl_c() => StopReason::Interrupted,
        _ = term_recv => StopReason::Terminated,
    };
    bridge.stop(reason);
    let _ = tokio::signal::ctrl_c().await;
    std::process::exit(130);
}

fn check(
    playbooks: &[std::path::PathBuf],
    sets: Vec<(String, String)>,
    kubeconfig: Option<std::path::PathBuf>,
    stdlib: Option<std::path::PathBuf>,
) -> u8 {
    if let Some(dir) = &stdlib
        && let Err(e) = mesh_run::stdlib::announce_override(dir)
    {
        eprintln!("error[usage]: {e}");
        return 2;
    }
    let mut failed = false;
    let sets = sets.into_iter().collect();
    let kubeconfig = mesh_run::kube::Clusters::default_path(kubeconfig);
    for p in playbooks {
        match run::check(p, &sets, &kubeconfig, stdlib.as_deref()) {
            Ok(n) => println!("ok {} ({n} script{})", p.display(), if n == 1 { "" } else { "s" }),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed { 2 } else { 0 }
}

async fn sandbox(args: mesh_run::cli::SandboxArgs) -> u8 {
    let cancel = tokio_util::sync::CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {},
        }
        c.cancel();
    });
    let opts = mesh_run::sandbox::SandboxOptions {
        clusters: args.clusters,
        dir: args.dir,
        kube_version: args.kube_version,
        keep: args.keep,
        sim_delay: args.sim_delay,
    };
    match mesh_run::sandbox::run(opts, cancel).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error[{}]: {e}", e.kind());
            e.exit_code() as u8
        }
    }
}
