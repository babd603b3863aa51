//! A run whose Lease another run takes over stops with `locked`: at its next
//! renewal, or at the check right before pruning — and prunes nothing.

use std::process::Child;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;

use super::{Playbook, configmap, eventually, leases, micro_time, playbook_text};

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
