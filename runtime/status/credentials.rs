//! The live check of a remote secret: its kubeconfig is used as istiod
//! would use it (TLS verified against the CA inside), to learn who the
//! token authenticates as (`SelfSubjectReview`) and whether that account may
//! list and watch what istiod reads (`SelfSubjectRulesReview`). The token is
//! never printed; only its `exp` claim is.

use std::time::Duration;

use http::{Method, StatusCode};
use kube::config::KubeConfigOptions;
use serde_json::{Value, json};

use super::model::Check;
use super::secret::{self, ParsedSecret};
use crate::kube::ClusterClient;

pub const CHECK: &str = "secret.credentials";

/// What istiod lists and watches on every remote cluster (the chart's
/// `istio-reader-clusterrole`, reduced to what service discovery cannot do without).
pub const NEEDED: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "services"),
    ("", "namespaces"),
    ("", "nodes"),
    ("discovery.k8s.io", "endpointslices"),
];

const DEADLINE: Duration = Duration::from_secs(5);

/// What the live check learned.
pub struct Outcome {
    pub account: Option<String>,
    pub expires: Option<String>,
    pub check: Check,
}

/// Tries `secret`, held by the istiod `subject` on `cluster`; `namespace` is
/// where the rules are reviewed (the data plane's istio namespace).
/// How long one request of the live try may take.
const LIVE_TRY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn probe(secret: &ParsedSecret, cluster: &str, subject: &str, namespace: &str) -> Outcome {
    let what = format!("remote secret {}/{} ({})", secret.namespace, secret.name, secret.cluster_name);
    let recreate = format!(
        "create the remote secret again for {} (create_remote_secret, or rerun the install playbook) and apply it to {cluster} in {}",
        secret.cluster_name, secret.namespace
    );
    let expires = secret.token.as_deref().and_then(secret::token_expiry);
    let outcome = |account: Option<String>, check: Check| Outcome {
        account,
        expires: expires.map(secret::rfc3339),
        check,
    };
    let fail = |message: String, advice: &str| Check::fail(CHECK, cluster, subject, message, advice);
    if let Some(problem) = &secret.problem {
        return outcome(None, fail(format!("{what}: {problem}"), &recreate));
    }
    let Some(kubeconfig) = secret.kubeconfig.clone() else {
        return outcome(None, fail(format!("{what}: no kubeconfig"), &recreate));
    };
    let client = match kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await {
        // A secret pointing at a silent server must not hold the whole status up.
        Ok(config) => ClusterClient::new(&what, config, Some(LIVE_TRY_DEADLINE)),
        Err(e) => Err(crate::error::Error::usage(e.to_string())),
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => return outcome(None, fail(format!("{what}: its kubeconfig is unusable: {e}"), &recreate)),
    };
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let whoami = post(&client, "/apis/authentication.k8s.io/v1/selfsubjectreviews", &review).await;
    let account = match whoami {
        Err(e) => {
            let check = Check::warn(
                CHECK,
                cluster,
                subject,
                format!("{what}: could not try it from here: {e}"),
                format!(
                    "make sure {} is reachable from the control plane's istiod (mesh-run tries it from this machine)",
                    secret.server
                ),
            );
            return outcome(None, check);
        }
        Ok((StatusCode::UNAUTHORIZED, _)) => {
            let message = format!(
                "{what}: {} rejects the token (401 Unauthorized): its token Secret was deleted or its service account removed",
                secret.server
            );
            return outcome(None, fail(message, &recreate));
        }
        Ok((status, body)) if status.is_success() => body
            .pointer("/status/userInfo/username")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        Ok((status, body)) => {
            let message = body.get("message").and_then(Value::as_str).unwrap_or("").to_string();
            return outcome(
                None,
                fail(format!("{what}: SelfSubjectReview answered {status}: {message}"), &recreate),
            );
        }
    };
    let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": namespace}});
    let rules = match post(&client, "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", &review).await {
        Ok((status, body)) if status.is_success() => body,
        Ok((status, _)) => {
            let check = Check::warn(
                CHECK,
                cluster,
                subject,
                format!("{what}: authenticates as {account}, but its permissions could not be reviewed ({status})"),
                "check its RBAC by hand: kubectl auth can-i --list --as <account>",
            );
            return outcome(Some(account), check);
        }
        Err(e) => return outcome(Some(account), fail(format!("{what}: {e}"), &recreate)),
    };
    let missing = missing_permissions(rules.pointer("/status/resourceRules").unwrap_or(&Value::Null));
    let expiry = match expires {
        Some(exp) => format!("token expires {}", secret::rfc3339(exp)),
        None => "token without expiry".to_string(),
    };
    let check = if !missing.is_empty() {
        fail(
            format!("{what}: authenticates as {account}, who may not {}", missing.join(", ")),
            format!(
                "create the secret for the account the chart binds istiod's ClusterRoles to (istiod-<revision> on the config cluster, istio-reader-service-account on others), or bind {account} to the istio-reader ClusterRole"
            )
            .as_str(),
        )
    } else if let Some(exp) = expires.filter(|e| *e < now() + 24 * 3600) {
        Check::warn(
            CHECK,
            cluster,
            subject,
            format!("{what}: authenticates as {account}; token expires {}", secret::rfc3339(exp)),
            recreate.clone(),
        )
    } else {
        Check::pass(
            CHECK,
            cluster,
            subject,
            format!("{what}: authenticates as {account}, may list/watch what istiod reads; {expiry}"),
        )
    };
    let check = if secret.insecure && check.verdict == super::model::Verdict::Pass {
        Check::warn(
            CHECK,
            cluster,
            subject,
            format!("{what}: insecure-skip-tls-verify is set: the API server's identity is not checked"),
            "put the API server's CA in certificate-authority-data instead",
        )
    } else {
        check
    };
    outcome(Some(account), check)
}

async fn post(client: &ClusterClient, path: &str, body: &Value) -> Result<(StatusCode, Value), String> {
    let call = client.call(Method::POST, path, Some("application/json"), body.to_string().into_bytes());
    match tokio::time::timeout(DEADLINE, call).await {
        Ok(Ok(res)) => Ok((res.status, res.body)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", DEADLINE.as_secs())),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `list`/`watch` of [`NEEDED`] that no rule grants, as `list pods`.
pub fn missing_permissions(rules: &Value) -> Vec<String> {
    let rules = rules.as_array().map(Vec::as_slice).unwrap_or(&[]);
    let has = |list: &Value, want: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(want) || v.as_str() == Some("*")))
    };
    let granted = |group: &str, resource: &str, verb: &str| {
        rules.iter().any(|r| {
            let named = r.get("resourceNames").and_then(Value::as_array).is_some_and(|n| !n.is_empty());
            !named && has(&r["apiGroups"], group) && has(&r["resources"], resource) && has(&r["verbs"], verb)
        })
    };
    let mut missing = Vec::new();
    for (group, resource) in NEEDED {
        for verb in ["list", "watch"] {
            if !granted(group, resource, verb) {
                let resource = if group.is_empty() {
                    resource.to_string()
                } else {
                    format!("{resource}.{group}")
                };
                missing.push(format!("{verb} {resource}"));
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_role_grants_everything_needed() {
        let rules = json!([
            {"apiGroups": [""], "resources": ["endpoints", "pods", "services", "nodes", "namespaces", "secrets"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
        ]);
        assert!(missing_permissions(&rules).is_empty());
        assert!(missing_permissions(&json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])).is_empty());
    }

    #[test]
    fn names_what_is_missing() {
        let rules = json!([
            {"apiGroups": [""], "resources": ["pods", "services", "namespaces", "nodes"], "verbs": ["get", "list"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"], "resourceNames": ["one"]},
        ]);
        let missing = missing_permissions(&rules);
        assert!(missing.contains(&"watch pods".to_string()), "{missing:?}");
        assert!(missing.contains(&"list endpointslices.discovery.k8s.io".to_string()), "{missing:?}");
        assert!(!missing.contains(&"list pods".to_string()), "{missing:?}");
        assert_eq!(missing_permissions(&Value::Null).len(), 10);
    }
}
