//! A user who may not write Leases gets one clear `api` error naming the
//! verb and the resource, before the run changes anything.

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;

use super::{configmap, ensure_mesh_run_namespace, sandbox};
use crate::support::Test;

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
