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
async fn an_uncontended_run_costs_two_lease_requests() {
    let playbook = Playbook::new("lock-cost.rhai", &playbook_text("lock-cost", "one", false));
    ensure_mesh_run_namespace().await;
    let out = playbook.run(&[]);
    out.status(0);
    let requests = lease_requests(&out);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(
        requests[0].contains("POST /apis/coordination.k8s.io/v1/namespaces/mesh-run/leases 201"),
        "{requests:?}"
    );
    assert!(
        requests[1].contains("DELETE /apis/coordination.k8s.io/v1/namespaces/mesh-run/leases/lock-cost 200"),
        "{requests:?}"
    );
    // The Lease is taken before the set's first write.
    let first_write = out
        .stderr
        .lines()
        .position(|l| l.starts_with("[http]") && (l.contains(" POST ") || l.contains(" PATCH ")))
        .unwrap();
    assert!(out.stderr.lines().nth(first_write).unwrap().contains("/leases"), "{}", out.stderr);
}

#[tokio::test]
async fn a_user_without_lease_permissions_gets_an_api_error_naming_verb_and_resource() {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    ensure_mesh_run_namespace().await;
    let client = sandbox().client("control-plane").await;
    let post = PostParams::default();
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": "lock-rbac"}})).unwrap();
    Api::<Namespace>::all(client.clone()).create(&post, &namespace).await.unwrap();
    let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "no-leases"}})).unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "lock-rbac");
    accounts.create(&post, &account).await.unwrap();
    // ConfigMaps (members and the parent) but no Leases.
    for namespace in ["lock-rbac", "mesh-run"] {
        let role: Role = serde_json::from_value(json!({
            "metadata": {"name": "lock-rbac-configmaps"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}],
        }))
        .unwrap();
        Api::<Role>::namespaced(client.clone(), namespace)
            .create(&post, &role)
            .await
            .unwrap();
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": "lock-rbac-configmaps"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "lock-rbac-configmaps"},
            "subjects": [{"kind": "ServiceAccount", "name": "no-leases", "namespace": "lock-rbac"}],
        }))
        .unwrap();
        Api::<RoleBinding>::namespaced(client.clone(), namespace)
            .create(&post, &binding)
            .await
            .unwrap();
    }
    let request: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": []}})).unwrap();
    let token = accounts.create_token_request("no-leases", &post, &request).await.unwrap();
    let token = token.status.unwrap().token;

    let text = std::fs::read_to_string(sandbox().kubeconfig()).unwrap();
    let mut config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    for user in config["users"].as_array_mut().unwrap() {
        user["user"] = json!({"token": token});
    }
    let playbook =
        r#"cluster("control-plane").apply(#{ apiVersion: "v1", kind: "ConfigMap", metadata: #{ name: "one", namespace: "lock-rbac" } });"#;
    let test = Test::new().playbook("lock-rbac.rhai", playbook);
    let kubeconfig = test.dir().join("no-leases-kubeconfig");
    std::fs::write(&kubeconfig, serde_json::to_string(&config).unwrap()).unwrap();
    test.kubeconfig(&kubeconfig)
        .args(["lock-rbac.rhai"])
        .run()
        .status(1)
        .stderr_contains(
            "error[api]: Lease mesh-run/lock-rbac (the ApplySet's lock) on control-plane: create not allowed (HTTP 403 Forbidden)",
        )
        .stderr_contains(r#"cannot create resource "leases" in API group "coordination.k8s.io" in the namespace "mesh-run""#)
        .stderr_lacks(&token);
    assert!(configmap("lock-rbac", "one").await.is_none(), "nothing applied without the Lease");
}

/// Waits for the run with `pid` to hold Lease `name`, then gives it to
/// another holder, as a run that found it expired would (an update).
async fn steal_when_held(api: &Api<Lease>, name: &str, pid: u32) {
    eventually("the run to hold its Lease", async || {
        let lease = api.get_opt(name).await.unwrap();
        lease
            .and_then(|l| l.spec?.holder_identity)
            .is_some_and(|h| h.contains(&format!("/{pid}/")))
    })
    .await;
    let mut lease = api.get(name).await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("thief/1/000000".into());
    let now = serde_json::to_value(micro_time(SystemTime::now())).unwrap();
    spec.renew_time = Some(serde_json::from_value(now).unwrap());
    api.replace(name, &PostParams::default(), &lease)
        .await
        .expect("take the Lease over");
}

/// Waits for `child` to end (up to 60 s).
async fn ended(child: &mut Child, playbook: &Playbook) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the run did not end:\n{}", playbook.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_run_whose_lease_is_taken_over_stops_at_its_renewal() {
    let playbook = Playbook::new("lock-renew.rhai", &playbook_text("lock-renew", "one", true));
    let mut child = playbook.spawn();
    let api = leases().await;
    steal_when_held(&api, "lock-renew", child.id()).await;
    let stolen = Instant::now();
    let status = ended(&mut child, &playbook).await;
    assert_eq!(status.code(), Some(1), "{}", playbook.log());
    assert!(
        stolen.elapsed() < Duration::from_secs(15),
        "stopped at the next renewal, not the wait's end"
    );
    let log = playbook.log();
    assert!(
        log.contains("error[locked]: another mesh-run run took over ApplySet `lock-renew` on cluster `control-plane` from this run: holder thief/1/000000"),
        "{log}"
    );
    let lease = api
        .get("lock-renew")
        .await
        .expect("the new holder's Lease is not released by the old");
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("thief/1/000000"));
}

#[tokio::test]
async fn a_run_that_lost_its_lease_before_pruning_prunes_nothing() {
    let v1 = r#"let cp = cluster("control-plane");
cp.ensure_namespace("lock-lost");
cp.apply(#{ apiVersion: "v1", kind: "ConfigMap", metadata: #{ name: "one", namespace: "lock-lost" } });
cp.apply(#{ apiVersion: "v1", kind: "ConfigMap", metadata: #{ name: "two", namespace: "lock-lost" } });
"#;
    // Drops `two` (a prune), after a pause shorter than a renewal period.
    let v2 = r#"let cp = cluster("control-plane");
cp.apply(#{ apiVersion: "v1", kind: "ConfigMap", metadata: #{ name: "one", namespace: "lock-lost" } });
try { cp.wait("configmap/go", #{ namespace: "lock-lost", "for": "create", timeout: "5s" }); } catch (e) {}
"#;
    let playbook = Playbook::new("lock-lost.rhai", v1);
    playbook.run(&[]).status(0);
    std::fs::write(&playbook.path, v2).unwrap();
    let mut child = playbook.spawn();
    let api = leases().await;
    steal_when_held(&api, "lock-lost", child.id()).await;
    let status = ended(&mut child, &playbook).await;
    let log = playbook.log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("error[locked]: another mesh-run run took over ApplySet `lock-lost`"),
        "{log}"
    );
    assert!(log.contains("this run stopped and pruned nothing"), "{log}");
    assert!(
        configmap("lock-lost", "two").await.is_some(),
        "not pruned after losing the Lease:\n{log}"
    );
}
