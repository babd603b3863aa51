//! `mesh-run status`: read, judge, print in the chosen format, and exit 0
//! (all checks pass), 1 (a check failed) or 2 (usage: unknown context,
//! unreadable kubeconfig).

use std::io::IsTerminal;

use crate::cli::{StatusArgs, StatusFormat};
use crate::kube::Clusters;

pub async fn run(args: StatusArgs) -> u8 {
    let clusters = Clusters::new(Clusters::default_path(args.kubeconfig), args.request_timeout.0);
    let contexts = if args.contexts.is_empty() {
        match clusters.context_names() {
            Ok(names) => names,
            Err(e) => return usage(e),
        }
    } else {
        args.contexts
    };
    if contexts.is_empty() {
        return usage("the kubeconfig has no contexts: pass --kubeconfig or set KUBECONFIG");
    }
    if args.watch {
        if !matches!(args.output, StatusFormat::Text | StatusFormat::Json) {
            return usage("--watch redraws the text view or prints one JSON line per change: --output text or json");
        }
        return super::watch::run(&clusters, &contexts, args.output).await;
    }
    let status = match super::collect(&clusters, &contexts).await {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let text = match args.output {
        StatusFormat::Text => super::text::render(&status, std::io::stdout().is_terminal()),
        StatusFormat::Json => match serde_json::to_string_pretty(&status) {
            Ok(j) => j + "\n",
            Err(e) => {
                eprintln!("error: cannot encode the status as JSON: {e}");
                return 1;
            }
        },
        StatusFormat::Dot => super::dot::render(&status),
        StatusFormat::Svg => super::svg::render(&status),
    };
    print!("{text}");
    status.exit_code()
}

fn usage(e: impl std::fmt::Display) -> u8 {
    eprintln!("error: {e}");
    2
}
