//! One call of both tools: `istioctl create-remote-secret` with flags, and a
//! playbook calling `create_remote_secret` with the same options.

use std::process::Stdio;
use std::time::Duration;

use mesh_run::sandbox::istio_assets::IstioAssets;

use crate::support::{Output, SandboxHandle, Test};

const ISTIOCTL_TIMEOUT: Duration = Duration::from_secs(90);

/// One call, as istioctl flags and as `create_remote_secret` options.
#[derive(Clone, Default)]
pub(super) struct Call {
    pub(super) namespace: &'static str,
    pub(super) secret_type: Option<&'static str>,
    pub(super) service_account: Option<&'static str>,
    pub(super) create_service_account: Option<bool>,
    pub(super) name: Option<&'static str>,
    pub(super) server: Option<&'static str>,
}

impl Call {
    fn istioctl_args(&self) -> Vec<String> {
        let mut args = vec!["-n".to_string(), self.namespace.to_string()];
        let mut flag = |flag: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(format!("--{flag}={value}"));
            }
        };
        flag("type", self.secret_type.map(str::to_string));
        flag("service-account", self.service_account.map(str::to_string));
        flag("create-service-account", self.create_service_account.map(|b| b.to_string()));
        flag("name", self.name.map(str::to_string));
        flag("server", self.server.map(str::to_string));
        args
    }

    fn rhai_options(&self) -> String {
        let mut options = vec![format!("namespace: {:?}", self.namespace)];
        let mut option = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                options.push(format!("{key}: {value}"));
            }
        };
        option("type", self.secret_type.map(|v| format!("{v:?}")));
        option("service_account", self.service_account.map(|v| format!("{v:?}")));
        option("create_service_account", self.create_service_account.map(|b| b.to_string()));
        option("name", self.name.map(|v| format!("{v:?}")));
        option("server", self.server.map(|v| format!("{v:?}")));
        format!("#{{ {} }}", options.join(", "))
    }
}

/// What a finished istioctl run left.
pub(super) struct IstioctlRun {
    pub(super) success: bool,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

impl IstioctlRun {
    /// The error istioctl ended with (`Error: ...`), without the prefix.
    pub(super) fn error(&self) -> &str {
        let line = self.stderr.lines().find(|l| l.starts_with("Error: "));
        line.map(|l| &l["Error: ".len()..])
            .unwrap_or_else(|| panic!("istioctl failed without an `Error:` line:\n{}", redact(&self.stderr)))
    }

    /// The `warn: ...` line, without the prefix.
    pub(super) fn warning(&self) -> Option<&str> {
        self.stderr.lines().find_map(|l| l.strip_prefix("warn: "))
    }
}

/// `istioctl create-remote-secret --context=data-plane ARGS` with the sandbox's kubeconfig.
pub(super) async fn istioctl(sandbox: &SandboxHandle, call: &Call) -> IstioctlRun {
    let assets = IstioAssets::locate().unwrap_or_else(|e| panic!("{e}"));
    let mut command = tokio::process::Command::new(&assets.istioctl);
    command
        .args(["create-remote-secret", "--context=data-plane"])
        .args(call.istioctl_args())
        .env("KUBECONFIG", sandbox.kubeconfig())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(ISTIOCTL_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("istioctl {:?} did not finish within {ISTIOCTL_TIMEOUT:?}", call.istioctl_args()))
        .expect("run istioctl");
    IstioctlRun {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A playbook calling `create_remote_secret` the way `call` calls istioctl,
/// applying the result to the control plane.
pub(super) fn run_playbook(sandbox: &SandboxHandle, call: &Call) -> Output {
    let playbook = format!(
        "let secret = create_remote_secret(cluster(\"data-plane\"), {});\nprint(secret);\ncluster(\"control-plane\").apply(secret);\n",
        call.rhai_options()
    );
    Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .playbook("p.rhai", &playbook)
        .args(["run", "p.rhai"])
        .own_set()
        .run()
}

/// Every `token:` value replaced: what may be shown.
pub(super) fn redact(text: &str) -> String {
    text.lines()
        .map(|line| match line.split_once("token: ") {
            Some((indent, _)) if indent.trim().is_empty() => format!("{indent}token: <redacted>"),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The token in istioctl's kubeconfig (on Kubernetes < 1.24 it takes the
/// account's own token Secret, not ours), never shown.
pub(super) fn istioctl_token(run: &IstioctlRun) -> String {
    let line = run.stdout.lines().find_map(|l| l.trim_start().strip_prefix("token: "));
    line.expect("istioctl's kubeconfig holds a bearer token").to_string()
}
