//! The reader account and ClusterRole istioctl applies when the remote
//! secret's service account is missing.

use serde_json::{Value, json};

/// The only service account istioctl ever creates, whatever `--service-account` says.
pub const READER_SERVICE_ACCOUNT: &str = "istio-reader-service-account";

/// What istioctl applies when the service account is missing: the
/// `istio-reader-service-account` and the `istio-reader-clusterrole-<ns>`
/// ClusterRole + binding, as it renders them from the base and istiod charts
/// (default profile; `reader-clusterrole.yaml` without the `istiodRemote`
/// extras): get/list/watch of what istiod reads from a remote cluster,
/// `create` of TokenReviews and SubjectAccessReviews (which change nothing
/// but let istiod authenticate that cluster's workloads), and create/delete
/// of MCS ServiceExports. The rules are in the chart's order, so mesh-run and
/// istioctl, run one after the other on a cluster, leave the same ClusterRole.
/// The labels are the chart's, less those naming a chart version
/// (`app.kubernetes.io/version`, `helm.sh/chart`) or claiming Helm
/// (`app.kubernetes.io/managed-by`).
pub fn reader_rbac(namespace: &str) -> Vec<Value> {
    let read = ["get", "list", "watch"];
    let name = format!("istio-reader-clusterrole-{namespace}");
    let labels = json!({"app": "istio-reader", "app.kubernetes.io/name": "istio-reader", "app.kubernetes.io/part-of": "istio",
        "app.kubernetes.io/instance": "istio", "release": "istio"});
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": READER_SERVICE_ACCOUNT, "namespace": namespace, "labels": labels}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels},
        "rules": [
            {"apiGroups": ["config.istio.io", "security.istio.io", "networking.istio.io", "authentication.istio.io",
                "rbac.istio.io", "telemetry.istio.io", "extensions.istio.io"], "resources": ["*"], "verbs": read},
            {"apiGroups": [""], "resources": ["endpoints", "pods", "services", "nodes", "replicationcontrollers",
                "namespaces", "secrets", "configmaps"], "verbs": read},
            {"apiGroups": ["networking.istio.io"], "verbs": ["get", "watch", "list"], "resources": ["workloadentries"]},
            {"apiGroups": ["networking.x-k8s.io", "gateway.networking.k8s.io"], "resources": ["gateways"],
                "verbs": ["get", "watch", "list"]},
            {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": read},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
            {"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceexports"],
                "verbs": ["get", "list", "watch", "create", "delete"]},
            {"apiGroups": ["multicluster.x-k8s.io"], "resources": ["serviceimports"], "verbs": read},
            {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": read},
            {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
            {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": READER_SERVICE_ACCOUNT, "namespace": namespace}]}),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_rbac_binds_the_reader_account() {
        let objs = reader_rbac("istio-system");
        assert_eq!(objs[0]["metadata"]["name"], READER_SERVICE_ACCOUNT);
        assert_eq!(objs[1]["metadata"]["name"], "istio-reader-clusterrole-istio-system");
        assert_eq!(objs[2]["roleRef"]["name"], "istio-reader-clusterrole-istio-system");
        assert_eq!(
            objs[2]["subjects"][0],
            json!({"kind": "ServiceAccount", "name": READER_SERVICE_ACCOUNT, "namespace": "istio-system"})
        );
        // Writes: only reviews (which change nothing) and MCS ServiceExports, as in the chart.
        let writes: Vec<String> = objs[1]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| !["get", "list", "watch"].contains(&v.as_str().unwrap()))
            })
            .map(|r| r["resources"][0].as_str().unwrap().to_string())
            .collect();
        assert_eq!(writes, ["serviceexports", "tokenreviews", "subjectaccessreviews"]);
    }
}
