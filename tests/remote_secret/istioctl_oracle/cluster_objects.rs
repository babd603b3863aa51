//! What the tests make on the sandbox before either tool runs (namespaces,
//! an account and its token Secret), and what the tools made there (the
//! reader account and its RBAC), compared field by field.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, PostParams};
use kube::runtime::wait::await_condition;
use serde_json::{Value, json};

use super::produced::APPLYSET_LABEL;
use crate::support;

async fn create<K>(api: Api<K>, object: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("test object");
    api.create(&PostParams::default(), &object).await.expect("create");
}

pub(super) async fn create_namespace(client: &kube::Client, name: &str) {
    create(Api::<Namespace>::all(client.clone()), json!({"metadata": {"name": name}})).await;
}

/// The account and its token Secret `<sa>-istio-remote-secret-token`, made
/// before either tool runs so both embed the same token; returns the token
/// once kube-controller-manager has filled it (with `ca.crt`).
pub(super) async fn account_with_token(dp: &kube::Client, namespace: &str, account: &str) -> String {
    create(
        Api::<ServiceAccount>::namespaced(dp.clone(), namespace),
        json!({"metadata": {"name": account}}),
    )
    .await;
    let name = format!("{account}-istio-remote-secret-token");
    let secrets = Api::<Secret>::namespaced(dp.clone(), namespace);
    create(
        secrets.clone(),
        json!({"metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": account}},
               "type": "kubernetes.io/service-account-token"}),
    )
    .await;
    token_of(&secrets, &name).await
}

/// The token of a token Secret, once filled (a timeout names the keys only).
pub(super) async fn token_of(secrets: &Api<Secret>, name: &str) -> String {
    let filled = |s: Option<&Secret>| {
        let data = s.and_then(|s| s.data.as_ref());
        data.is_some_and(|d| ["token", "ca.crt"].iter().all(|k| d.get(*k).is_some_and(|v| !v.0.is_empty())))
    };
    let waited = tokio::time::timeout(Duration::from_secs(30), await_condition(secrets.clone(), name, filled)).await;
    let secret = match waited {
        Ok(Ok(Some(secret))) => secret,
        _ => {
            let keys = secrets
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .and_then(|s| s.data)
                .map(|d| d.into_keys().collect::<Vec<_>>());
            panic!("token Secret {name} not filled with token and ca.crt within 30s; its data keys: {keys:?}")
        }
    };
    String::from_utf8(secret.data.unwrap()["token"].0.clone()).expect("token is text")
}

pub(super) async fn minor(client: &kube::Client) -> u32 {
    support::server_minor(client).await
}

/// What `create_service_account` made in `ns`: the reader account, and the
/// ClusterRole and binding with `ns` replaced by `<ns>`.
pub(super) async fn reader_objects(dp: &kube::Client, ns: &str) -> (Value, Value, Value) {
    let role_name = format!("istio-reader-clusterrole-{ns}");
    let account = Api::<ServiceAccount>::namespaced(dp.clone(), ns)
        .get("istio-reader-service-account")
        .await
        .unwrap_or_else(|e| panic!("reader account in {ns}: {e}"));
    let role = Api::<ClusterRole>::all(dp.clone())
        .get(&role_name)
        .await
        .unwrap_or_else(|e| panic!("{role_name}: {e}"));
    let binding = Api::<ClusterRoleBinding>::all(dp.clone())
        .get(&role_name)
        .await
        .unwrap_or_else(|e| panic!("binding {role_name}: {e}"));
    let neutral = |v: Value| -> Value { serde_json::from_str(&v.to_string().replace(ns, "<ns>")).unwrap() };
    (
        neutral(json!({"labels": account.metadata.labels})),
        neutral(json!({"labels": role.metadata.labels, "rules": role.rules})),
        neutral(json!({"labels": binding.metadata.labels, "roleRef": binding.role_ref, "subjects": binding.subjects})),
    )
}

/// Labels that differ by istioctl build (its charts' version) or claim Helm: mesh-run leaves them out.
const VERSION_LABELS: &[&str] = &["app.kubernetes.io/version", "helm.sh/chart", "app.kubernetes.io/managed-by"];

/// `field` of istioctl's and mesh-run's object, equal (labels: but for `VERSION_LABELS` and `APPLYSET_LABEL`).
pub(super) fn assert_same_field(what: &str, field: &str, istioctl: &Value, ours: &Value) {
    let (mut theirs, mut ours) = (istioctl[field].clone(), ours[field].clone());
    if field == "labels" {
        theirs
            .as_object_mut()
            .into_iter()
            .for_each(|m| m.retain(|k, _| !VERSION_LABELS.contains(&k.as_str())));
        ours.as_object_mut().into_iter().for_each(|m| {
            m.remove(APPLYSET_LABEL);
        });
    }
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap();
    assert!(
        theirs == ours,
        "{what} {field}: istioctl\n{}\nmesh-run\n{}",
        pretty(&theirs),
        pretty(&ours)
    );
}
