//! One run at a time per ApplySet and cluster: a `coordination.k8s.io/v1`
//! Lease named like the parent, held the way client-go's leader election
//! holds one — created, or taken over once expired, by an update that
//! carries the `resourceVersion` (a 409 means another run won: read again
//! and decide again), renewed while the run lives, deleted at its end with
//! a precondition so a run never deletes another's. Two runs of one set
//! would otherwise prune what the other just applied.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::parent::{self, NAMESPACE};
use crate::error::{Error, Locked, Result};
use crate::kube::ClusterClient;

/// `leaseDurationSeconds`: a run that stops renewing (killed) frees the set this long after its last renewal.
pub const DURATION_SECS: u64 = 30;
/// The playbook and context of the run holding the Lease, for whoever reads it.
const PLAYBOOK: &str = "mesh-run.io/playbook";
const CONTEXT: &str = "mesh-run.io/context";
/// Well-known annotation `kubectl describe` shows: what this Lease is for.
const DESCRIPTION: &str = "kubernetes.io/description";
/// Reads and writes of one acquisition before giving up on a Lease that keeps changing.
const ATTEMPTS: usize = 5;

/// What a run asks of one cluster's Lease.
pub struct Claim<'a> {
    /// The Lease's name: the ApplySet's (parent's) name.
    pub name: &'a str,
    /// This process's `holderIdentity` ([`identity`]).
    pub identity: &'a str,
    /// The playbook's absolute path, and the context as this run's kubeconfig names it.
    pub playbook: &'a str,
    pub context: &'a str,
}

/// What to do about a Lease found on the server.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Ours already (this process), or free: update it to us. `transition`: the holder changes.
    Take { transition: bool },
    /// Another run's and alive.
    Held,
}

/// `<hostname>/<pid>/<random>`: which machine and process hold a set (to
/// find it, or see it is gone), unique per process so that a restarted run
/// on the same host and PID is not mistaken for the holder. Nothing secret.
pub fn identity() -> &'static str {
    static IDENTITY: OnceLock<String> = OnceLock::new();
    IDENTITY.get_or_init(|| {
        let mut random = [0u8; 3];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
        identity_of(&hostname(), std::process::id(), random)
    })
}

fn identity_of(host: &str, pid: u32, random: [u8; 3]) -> String {
    let host = if host.is_empty() { "unknown-host" } else { host };
    let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{host}/{pid}/{random}")
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    if ok {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    }
}

fn spec_str<'v>(lease: &'v Value, field: &str) -> Option<&'v str> {
    lease.pointer(&format!("/spec/{field}")).and_then(Value::as_str)
}

/// A MicroTime (`2026-12-01T12:00:00.123456Z`); `None` when absent or unreadable.
fn time(lease: &Value, field: &str) -> Option<SystemTime> {
    spec_str(lease, field).and_then(|t| humantime::parse_rfc3339_weak(t).ok())
}

fn duration(lease: &Value) -> u64 {
    lease
        .pointer("/spec/leaseDurationSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(DURATION_SECS)
}

/// client-go's rule: a Lease with a holder is valid until `renewTime` (else
/// `acquireTime`) plus `leaseDurationSeconds`. No holder, or no time to
/// judge by, is free (a release by another tool empties the holder). No
/// tolerance for clock skew: runs renew every 10 s, so clocks would have to
/// differ by 20 s before a live run looked dead.
pub fn decide(lease: &Value, identity: &str, now: SystemTime) -> Decision {
    let holder = spec_str(lease, "holderIdentity").unwrap_or_default();
    if holder == identity {
        return Decision::Take { transition: false };
    }
    let last = time(lease, "renewTime").or_else(|| time(lease, "acquireTime"));
    let alive = !holder.is_empty() && last.is_some_and(|t| now < t + Duration::from_secs(duration(lease)));
    if alive {
        Decision::Held
    } else {
        Decision::Take { transition: true }
    }
}

/// Who holds `lease`, for the `locked` error and the dry run's warning.
pub fn holder(lease: &Value, set: &str, cluster: &str) -> Locked {
    let annotation = |key: &str| {
        lease
            .pointer(&format!("/metadata/annotations/{}", key.replace('/', "~1")))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Locked {
        set: set.into(),
        cluster: cluster.into(),
        holder: spec_str(lease, "holderIdentity").unwrap_or_default().into(),
        playbook: annotation(PLAYBOOK),
        context: annotation(CONTEXT),
        acquired: time(lease, "acquireTime"),
        renewed: time(lease, "renewTime"),
        duration_secs: duration(lease),
        lost: false,
    }
}

/// Kubernetes' MicroTime form.
fn micro_time(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// The Lease as `claim` holds it from `now`: new, or `found` taken over (its
/// `resourceVersion` kept: the update succeeds only if nobody wrote since).
pub fn body(claim: &Claim, found: Option<&Value>, now: SystemTime) -> Value {
    let stamp = micro_time(now);
    let mut lease = found.cloned().unwrap_or_else(|| {
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": claim.name, "namespace": NAMESPACE},
            "spec": {"leaseTransitions": 0},
        })
    });
    let transition = found.is_some_and(|f| spec_str(f, "holderIdentity") != Some(claim.identity));
    if found.is_none() || transition {
        lease["spec"]["acquireTime"] = stamp.clone().into();
    }
    if transition {
        let transitions = lease.pointer("/spec/leaseTransitions").and_then(Value::as_u64).unwrap_or(0);
        lease["spec"]["leaseTransitions"] = (transitions + 1).into();
    }
    lease["spec"]["holderIdentity"] = claim.identity.into();
    lease["spec"]["leaseDurationSeconds"] = DURATION_SECS.into();
    lease["spec"]["renewTime"] = stamp.into();
    let description = format!(
        "mesh-run: one run at a time changes ApplySet {} (ConfigMap {NAMESPACE}/{}); held by spec.holderIdentity (host/pid/random), free {DURATION_SECS} s after spec.renewTime",
        claim.name, claim.name
    );
    lease["metadata"]["annotations"] = json!({PLAYBOOK: claim.playbook, CONTEXT: claim.context, DESCRIPTION: description});
    lease
}

fn collection() -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases")
}

fn what(name: &str) -> String {
    format!("Lease {NAMESPACE}/{name} (the ApplySet's lock)")
}

/// The Lease `name`, if it exists. (Not `get_json`: the renewal task needs a `Send` future.)
pub async fn read(client: &ClusterClient, name: &str) -> Result<Option<Value>> {
    let res = client
        .call(Method::GET, &format!("{}/{name}", collection()), None, Vec::new())
        .await?;
    match res.status {
        StatusCode::NOT_FOUND => Ok(None),
        s if s.is_success() => Ok(Some(res.body)),
        _ => Err(client.api_error(&res, &what(name), "get")),
    }
}

/// Takes the Lease for `claim`: creates it (the usual case: one request),
/// else reads it and updates it if it is ours or expired. Another run's live
/// Lease is `Error::Locked`. Returns the Lease as the server stored it.
pub async fn acquire(client: &ClusterClient, claim: &Claim<'_>) -> Result<Value> {
    let url = format!("{}/{}", collection(), claim.name);
    let mut found: Option<Value> = None;
    for _ in 0..ATTEMPTS {
        let now = SystemTime::now();
        let res = match &found {
            None => client.create(&collection(), &body(claim, None, now), false).await?,
            Some(lease) => {
                if decide(lease, claim.identity, now) == Decision::Held {
                    return Err(Error::Locked(Box::new(holder(lease, claim.name, &client.name))));
                }
                let bytes = serde_json::to_vec(&body(claim, Some(lease), now)).unwrap_or_default();
                client.call(Method::PUT, &url, Some("application/json"), bytes).await?
            }
        };
        match res.status {
            s if s.is_success() => return Ok(res.body),
            _ if parent::namespace_missing(&res) => {
                // A fresh cluster: nothing to read in a namespace just made.
                parent::create_namespace(client).await?;
                continue;
            }
            // Created or changed by someone else meanwhile (409), or deleted (404): read, decide again.
            StatusCode::CONFLICT | StatusCode::NOT_FOUND => {}
            _ => return Err(client.api_error(&res, &what(claim.name), if found.is_some() { "update" } else { "create" })),
        }
        found = read(client, claim.name).await?;
    }
    Err(Error::Api {
        cluster: client.name.clone(),
        object: what(claim.name),
        message: format!("it changed {ATTEMPTS} times while this run tried to take it; try again"),
    })
}

/// Renews `held` (an update carrying its `resourceVersion`: it fails if
/// anyone wrote the Lease since). Someone's write in between (409) or a
/// deletion (404) is judged again by [`acquire`]: still ours, or free, is
/// taken; another run's is `Error::Locked` — this run lost it.
pub async fn renew(client: &ClusterClient, claim: &Claim<'_>, held: &Value) -> Result<Value> {
    let url = format!("{}/{}", collection(), claim.name);
    let mut lease = held.clone();
    lease["spec"]["renewTime"] = micro_time(SystemTime::now()).into();
    let bytes = serde_json::to_vec(&lease).unwrap_or_default();
    let res = client.call(Method::PUT, &url, Some("application/json"), bytes).await?;
    match res.status {
        s if s.is_success() => Ok(res.body),
        StatusCode::CONFLICT | StatusCode::NOT_FOUND => acquire(client, claim).await,
        _ => Err(client.api_error(&res, &what(claim.name), "update")),
    }
}

/// Deletes `held` only if it is still that very Lease (`uid` and
/// `resourceVersion` preconditions): one taken over meanwhile stays.
pub async fn release(client: &ClusterClient, held: &Value) -> Result<()> {
    let name = held.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let preconditions = json!({
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "preconditions": {"uid": held.pointer("/metadata/uid"), "resourceVersion": held.pointer("/metadata/resourceVersion")},
    });
    let bytes = serde_json::to_vec(&preconditions).unwrap_or_default();
    let url = format!("{}/{name}", collection());
    let res = client.call(Method::DELETE, &url, Some("application/json"), bytes).await?;
    match res.status {
        s if s.is_success() => Ok(()),
        StatusCode::CONFLICT | StatusCode::NOT_FOUND => Ok(()),
        _ => Err(client.api_error(&res, &what(name), "delete")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "laptop/4242/a1b2c3";

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn lease(holder: &str, renewed: Option<u64>) -> Value {
        let mut spec = json!({"holderIdentity": holder, "leaseDurationSeconds": 30, "acquireTime": micro_time(at(1_000))});
        if let Some(r) = renewed {
            spec["renewTime"] = micro_time(at(r)).into();
        }
        json!({"metadata": {"name": "external", "resourceVersion": "7"}, "spec": spec})
    }

    #[test]
    fn a_lease_expires_its_duration_after_the_last_renewal() {
        let theirs = lease("ci/17/ffffff", Some(2_000));
        assert_eq!(decide(&theirs, ME, at(2_029)), Decision::Held);
        assert_eq!(decide(&theirs, ME, at(2_030)), Decision::Take { transition: true });
        // A renewal "in the future" (the holder's clock is ahead) is alive.
        assert_eq!(decide(&theirs, ME, at(1_990)), Decision::Held);
        // No renewTime: acquireTime counts; neither: free.
        assert_eq!(decide(&lease("ci/17/ffffff", None), ME, at(1_010)), Decision::Held);
        assert_eq!(
            decide(&lease("ci/17/ffffff", None), ME, at(1_031)),
            Decision::Take { transition: true }
        );
        let no_times = json!({"spec": {"holderIdentity": "ci/17/ffffff"}});
        assert_eq!(decide(&no_times, ME, at(0)), Decision::Take { transition: true });
        // Released by another tool (empty holder), or ours: taken at once.
        assert_eq!(decide(&lease("", Some(2_000)), ME, at(2_001)), Decision::Take { transition: true });
        assert_eq!(decide(&lease(ME, Some(2_000)), ME, at(2_001)), Decision::Take { transition: false });
        // Without leaseDurationSeconds, mesh-run's 30 s.
        let mut short = lease("ci/17/ffffff", Some(2_000));
        short["spec"].as_object_mut().unwrap().remove("leaseDurationSeconds");
        assert_eq!(decide(&short, ME, at(2_029)), Decision::Held);
    }

    #[test]
    fn the_holder_names_host_process_and_a_random_part() {
        assert_eq!(identity_of("laptop", 4242, [0xa1, 0xb2, 0x03]), "laptop/4242/a1b203");
        assert_eq!(identity_of("", 1, [0, 0, 0]), "unknown-host/1/000000");
        let me = identity();
        let parts: Vec<&str> = me.split('/').collect();
        assert_eq!(parts.len(), 3, "{me}");
        assert_eq!(parts[1], std::process::id().to_string());
        assert!(parts[2].len() == 6 && parts[2].chars().all(|c| c.is_ascii_hexdigit()), "{me}");
        assert_eq!(identity(), me, "one identity per process");
    }

    #[test]
    fn taking_over_keeps_the_version_and_counts_the_transition() {
        let claim = Claim {
            name: "external",
            identity: ME,
            playbook: "/p/external.rhai",
            context: "cp",
        };
        let new = body(&claim, None, at(3_000));
        assert_eq!(new["spec"]["acquireTime"], "1970-01-01T00:50:00.000000Z");
        assert_eq!(new["spec"]["renewTime"], new["spec"]["acquireTime"]);
        assert_eq!(new["spec"]["leaseTransitions"], 0);
        assert_eq!(new["metadata"]["annotations"][PLAYBOOK], "/p/external.rhai");
        assert_eq!(new["metadata"]["annotations"][CONTEXT], "cp");
        let taken = body(&claim, Some(&lease("ci/17/ffffff", Some(2_000))), at(3_000));
        assert_eq!(taken["metadata"]["resourceVersion"], "7");
        assert_eq!(taken["spec"]["holderIdentity"], ME);
        assert_eq!(
            (taken["spec"]["leaseTransitions"].as_u64(), taken["spec"]["acquireTime"].as_str()),
            (Some(1), new["spec"]["acquireTime"].as_str())
        );
        // Our own Lease (a rerun in watch mode): renewed, not a transition.
        let ours = body(&claim, Some(&lease(ME, Some(2_000))), at(3_000));
        assert_eq!(ours["spec"]["acquireTime"], micro_time(at(1_000)));
        assert!(ours["spec"].get("leaseTransitions").is_none());
        let found = holder(&taken, "external", "cp");
        assert_eq!(
            (found.holder.as_str(), found.playbook.as_str(), found.renewed),
            (ME, "/p/external.rhai", Some(at(3_000)))
        );
    }
}
