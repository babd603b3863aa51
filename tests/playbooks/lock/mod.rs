//! One run at a time per ApplySet: a run holds a Lease per cluster (in
//! namespace `mesh-run`, named like the set); another run of the same set
//! stops before changing anything there (kind `locked`, naming the holder);
//! a killed run's Lease is taken over once expired; a dry run only warns.
//! Without it, two runs of one set pruned what the other had just applied.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

use crate::support::{self, Output, SandboxHandle, Test};

mod permissions;
mod takeover;

const CLUSTERS: &[&str] = &["control-plane", "data-plane"];

fn sandbox() -> &'static SandboxHandle {
    support::sandbox("default", CLUSTERS)
}

/// A playbook file in a folder of its own (two folders can hold one name).
struct Playbook {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Playbook {
    fn new(name: &str, text: &str) -> Playbook {
        let dir = tempfile::Builder::new().prefix("mesh-run-lock-").tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        // The path as the set and the Lease record it.
        let path = std::fs::canonicalize(&path).unwrap();
        Playbook { _dir: dir, path }
    }

    fn run(&self, args: &[&str]) -> Output {
        Test::new()
            .kubeconfig(sandbox().kubeconfig())
            .env("MESH_RUN_TRACE", "http")
            .arg(self.path.display().to_string())
            .args(args.iter().copied())
            .run()
    }

    /// Starts a run in the background (its output in the playbook's folder).
    fn spawn(&self) -> Child {
        let log = std::fs::File::create(self.path.with_extension("log")).unwrap();
        Command::new(env!("CARGO_BIN_EXE_mesh-run"))
            .arg(&self.path)
            .env("KUBECONFIG", sandbox().kubeconfig())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start mesh-run")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path.with_extension("log")).unwrap_or_default()
    }
}

/// Applies ConfigMap `name` in `namespace`, then (with `hold`) waits until
/// the test creates ConfigMap `go` there: a run that holds its set as long as the test needs.
fn playbook_text(namespace: &str, name: &str, hold: bool) -> String {
    let mut text = format!(
        r#"let cp = cluster("control-plane");
cp.ensure_namespace("{namespace}");
cp.apply(#{{ apiVersion: "v1", kind: "ConfigMap", metadata: #{{ name: "{name}", namespace: "{namespace}" }} }});
"#
    );
    if hold {
        text.push_str(&format!(
            r#"cp.wait("configmap/go", #{{ namespace: "{namespace}", "for": "create", timeout: "120s" }});
"#
        ));
    }
    text
}

async fn leases() -> Api<Lease> {
    Api::namespaced(sandbox().client("control-plane").await, "mesh-run")
}

async fn configmap(namespace: &str, name: &str) -> Option<ConfigMap> {
    let api: Api<ConfigMap> = Api::namespaced(sandbox().client("control-plane").await, namespace);
    api.get_opt(name).await.unwrap()
}

/// Polls `check` for up to 30 s.
async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn micro_time(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// Namespace `mesh-run`, which the first run on a cluster creates.
async fn ensure_mesh_run_namespace() {
    let client = sandbox().client("control-plane").await;
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": "mesh-run"}})).unwrap();
    let _ = Api::<Namespace>::all(client).create(&PostParams::default(), &namespace).await;
}

/// Writes Lease `name` as another run would leave it, last renewed `age` ago.
async fn write_lease(name: &str, holder: &str, age: Duration) -> Lease {
    ensure_mesh_run_namespace().await;
    let api = leases().await;
    let _ = api.delete(name, &DeleteParams::default()).await;
    let renewed = micro_time(SystemTime::now() - age);
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "mesh-run",
                     "annotations": {"mesh-run.io/playbook": format!("/elsewhere/{name}.rhai"), "mesh-run.io/context": "ci"}},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 30, "acquireTime": renewed, "renewTime": renewed},
    }))
    .unwrap();
    api.create(&PostParams::default(), &lease).await.expect("create Lease")
}

/// Trace lines of requests on Leases.
fn lease_requests(out: &Output) -> Vec<String> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("[http]") && l.contains("/leases"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_second_run_of_a_set_stops_before_changing_anything_while_the_first_holds_it() {
    let first = Playbook::new("lock-shared.rhai", &playbook_text("lock-shared", "from-first", true));
    // Same file name in another folder: the same set.
    let second = Playbook::new("lock-shared.rhai", &playbook_text("lock-shared", "from-second", false));
    let mut running = first.spawn();
    let pid = running.id();
    let api = leases().await;
    eventually("the first run to hold its Lease and apply", async || {
        configmap("lock-shared", "from-first").await.is_some() && api.get_opt("lock-shared").await.unwrap().is_some()
    })
    .await;
    let held = api.get("lock-shared").await.unwrap();
    let spec = held.spec.clone().unwrap();
    let holder = spec.holder_identity.clone().unwrap();
    assert!(
        holder.contains(&format!("/{pid}/")),
        "holderIdentity {holder} names the first run's PID {pid}"
    );
    assert_eq!(spec.lease_duration_seconds, Some(30));
    let annotations = held.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations["mesh-run.io/playbook"], first.path.display().to_string());
    assert_eq!(annotations["mesh-run.io/context"], "control-plane");

    let refused = second.run(&[]);
    refused
        .status(1)
        .stderr_contains("error[locked]: another mesh-run run holds ApplySet `lock-shared` on cluster `control-plane`")
        .stderr_contains(&format!("holder {holder}, playbook {}", first.path.display()))
        .stderr_contains("pass --instance NAME for an independent set")
        .stderr_contains("a killed run's lease expires 30 s after its last renewal");
    let said: Vec<&str> = refused.stderr.lines().filter(|l| !l.starts_with("[http]")).collect();
    eprintln!("the refused run said:\n{}", said.join("\n"));
    assert!(
        configmap("lock-shared", "from-second").await.is_none(),
        "the refused run changed nothing"
    );
    assert_eq!(
        lease_requests(&refused).len(),
        2,
        "one create (409), one read: {:?}",
        lease_requests(&refused)
    );

    // An independent set runs meanwhile.
    second.run(&["--instance", "other"]).status(0);
    assert!(configmap("lock-shared", "from-second").await.is_some());

    // The holder renews every 10 s.
    eventually("a renewal", async || {
        let spec = api.get("lock-shared").await.unwrap().spec.unwrap();
        spec.renew_time != spec.acquire_time
    })
    .await;
    assert!(running.try_wait().unwrap().is_none(), "the first run still runs:\n{}", first.log());

    // The first run ends: its Lease goes with it, and the second run may go.
    let go: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "go", "namespace": "lock-shared"}})).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(sandbox().client("control-plane").await, "lock-shared");
    cms.create(&PostParams::default(), &go).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = running.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the first run did not end:\n{}", first.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "first run: {status}\n{}", first.log());
    assert!(
        api.get_opt("lock-shared").await.unwrap().is_none(),
        "released at the end of the run"
    );
    second.run(&[]).status(0);
}

#[tokio::test]
async fn a_killed_runs_lease_refuses_others_until_it_expires() {
    let killed = Playbook::new("lock-killed.rhai", &playbook_text("lock-killed", "first", true));
    let mut child = killed.spawn();
    let api = leases().await;
    eventually("the run to hold its Lease", async || {
        configmap("lock-killed", "first").await.is_some() && api.get_opt("lock-killed").await.unwrap().is_some()
    })
    .await;
    child.kill().unwrap(); // SIGKILL: no release.
    child.wait().unwrap();
    let left = api.get("lock-killed").await.unwrap();
    let next = Playbook::new("lock-killed.rhai", &playbook_text("lock-killed", "second", false));
    next.run(&[])
        .status(1)
        .stderr_contains("error[locked]")
        .stderr_contains(&format!("holder {}", left.spec.unwrap().holder_identity.unwrap()));
    assert!(configmap("lock-killed", "second").await.is_none());

    // What the killed run leaves, 31 s later: taken over (an update), then released.
    write_lease("lock-killed", "gone-host/999999/dead00", Duration::from_secs(31)).await;
    let out = next.run(&[]);
    out.status(0);
    let requests = lease_requests(&out);
    assert!(
        requests
            .iter()
            .any(|r| r.contains("PUT /apis/coordination.k8s.io/v1/namespaces/mesh-run/leases/lock-killed 200")),
        "{requests:?}"
    );
    assert!(requests.iter().any(|r| r.contains("DELETE") && r.contains(" 200 ")), "{requests:?}");
    assert!(configmap("lock-killed", "second").await.is_some());
    assert!(api.get_opt("lock-killed").await.unwrap().is_none());

    // Renewed 2 s ago: refused, and the Lease is left as it was.
    let fresh = write_lease("lock-killed", "gone-host/999999/dead00", Duration::from_secs(2)).await;
    let third = Playbook::new("lock-killed.rhai", &playbook_text("lock-killed", "third", false));
    third
        .run(&[])
        .status(1)
        .stderr_contains("holder gone-host/999999/dead00, playbook /elsewhere/lock-killed.rhai (its context ci)");
    assert!(configmap("lock-killed", "third").await.is_none());
    let after = api.get("lock-killed").await.unwrap();
    assert_eq!(after.metadata.resource_version, fresh.metadata.resource_version, "not touched");
}

#[tokio::test]
async fn a_dry_run_takes_no_lease_and_warns_of_a_held_one() {
    let playbook = Playbook::new("lock-dry.rhai", &playbook_text("lock-dry", "planned", false));
    let api = leases().await;
    let fresh = write_lease("lock-dry", "ci-runner/7/abcdef", Duration::from_secs(1)).await;
    let out = playbook.run(&["--dry-run"]);
    out.status(0).stderr_contains(
        "warning: control-plane: ApplySet lock-dry: another mesh-run run is changing this set \
         (holder ci-runner/7/abcdef, playbook /elsewhere/lock-dry.rhai): this plan may change under it",
    );
    assert_eq!(lease_requests(&out).len(), 1, "one read: {:?}", lease_requests(&out));
    let after = api.get("lock-dry").await.unwrap();
    assert_eq!(after.metadata.resource_version, fresh.metadata.resource_version);

    api.delete("lock-dry", &DeleteParams::default()).await.unwrap();
    playbook.run(&["--dry-run"]).status(0).stderr_lacks("another mesh-run run");
    assert!(api.get_opt("lock-dry").await.unwrap().is_none(), "a dry run creates no Lease");
}

#[tokio::test]
async fn an_uncontended_rerun_costs_two_lease_requests() {
    let playbook = Playbook::new("lock-cost.rhai", &playbook_text("lock-cost", "one", false));
    ensure_mesh_run_namespace().await;
    let leases = "/apis/coordination.k8s.io/v1/namespaces/mesh-run/leases";
    // A first run writes the set at its end too: the Lease is checked (renewed) before that.
    let first = playbook.run(&[]);
    first.status(0);
    let requests = lease_requests(&first);
    let expected = [
        format!("POST {leases} 201"),
        format!("PUT {leases}/lock-cost 200"),
        format!("DELETE {leases}/lock-cost 200"),
    ];
    assert_eq!(requests.len(), expected.len(), "{requests:?}");
    for (request, expected) in requests.iter().zip(&expected) {
        assert!(request.contains(expected), "{request} is not {expected}");
    }
    // The Lease is taken before the set's first write.
    let first_write = first
        .stderr
        .lines()
        .find(|l| l.starts_with("[http]") && (l.contains(" POST ") || l.contains(" PATCH ")))
        .unwrap();
    assert!(first_write.contains("/leases"), "{}", first.stderr);
    // A rerun that changes nothing: take and release.
    let rerun = playbook.run(&[]);
    rerun.status(0);
    let requests = lease_requests(&rerun);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(
        requests[0].contains(&expected[0]) && requests[1].contains(&expected[2]),
        "{requests:?}"
    );
    let first = lease_requests(&first).join("\n");
    eprintln!("the Lease's requests, first run:\n{first}\nrerun:\n{}", requests.join("\n"));
}

#[tokio::test]
async fn a_run_releases_its_lease_however_it_ends() {
    let api = leases().await;
    // A failure after the Lease was taken.
    let failing = format!("{}throw \"failed on purpose\";\n", playbook_text("lock-end", "one", false));
    Playbook::new("lock-end.rhai", &failing)
        .run(&[])
        .status(1)
        .stderr_contains("failed on purpose");
    assert!(api.get_opt("lock-end").await.unwrap().is_none(), "released after a failure");
    // SIGTERM in the middle of a wait.
    let waiting = Playbook::new("lock-end.rhai", &playbook_text("lock-end", "two", true));
    let mut child = waiting.spawn();
    eventually("the run to hold its Lease", async || {
        configmap("lock-end", "two").await.is_some() && api.get_opt("lock-end").await.unwrap().is_some()
    })
    .await;
    // SAFETY: signals our own child, which has not been reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{}", waiting.log());
    assert!(api.get_opt("lock-end").await.unwrap().is_none(), "released on SIGTERM");
}
