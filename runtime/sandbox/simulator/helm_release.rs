//! Installs a rendered chart the way the Sail Operator's Helm post-renderer
//! and `helm upgrade` do: every object labelled `managed-by: sail-operator`,
//! owned by the IstioRevision (or IstioCNI), applied server-side in Helm's
//! install order; objects the previous render had and this one has not are
//! deleted. Deleting the owner lets kube-controller-manager's garbage
//! collector remove the rest.

use std::collections::{BTreeSet, HashMap};

use futures::future::try_join_all;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{ApiCapabilities, Scope, pinned_kind};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// An object a release installed: (apiVersion, kind, namespace, name).
pub type ObjectKey = (String, String, String, String);

/// Helm's `InstallOrder` (pkg/release/util/kind_sorter.go), the kinds the Istio charts use.
const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "EndpointSlice",
    "DaemonSet",
    "Pod",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn rank(kind: &str) -> usize {
    INSTALL_ORDER.iter().position(|k| *k == kind).unwrap_or(INSTALL_ORDER.len())
}

/// Groups `objects` by install rank, in order.
pub fn in_install_order(mut objects: Vec<Value>) -> Vec<Vec<Value>> {
    objects.sort_by_key(|o| rank(o.get("kind").and_then(Value::as_str).unwrap_or("")));
    let mut groups: Vec<Vec<Value>> = Vec::new();
    let mut last = None;
    for object in objects {
        let r = rank(object.get("kind").and_then(Value::as_str).unwrap_or(""));
        if last != Some(r) {
            groups.push(Vec::new());
            last = Some(r);
        }
        if let Some(group) = groups.last_mut() {
            group.push(object);
        }
    }
    groups
}

/// The post-renderer: `managed-by: sail-operator` and the controlling owner.
/// Also one entry per env name in each container, the last one: the charts
/// repeat a name when `pilot.env` sets one they set too (the procedure's
/// `CLUSTER_ID`). Helm creates such objects as they are and the process sees
/// the last value; server-side apply refuses duplicate keys, so the sandbox
/// stores what the process would see.
pub fn post_render(object: &mut Value, owner: &Value) {
    if let Some(pod) = object.pointer_mut("/spec/template/spec") {
        for list in ["containers", "initContainers"] {
            for container in pod.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(env) = container.get_mut("env").and_then(Value::as_array_mut) {
                    last_of_each_name(env);
                }
            }
        }
    }
    let metadata = &mut object["metadata"];
    if !metadata["labels"].is_object() {
        metadata["labels"] = json!({});
    }
    metadata["labels"]["managed-by"] = json!("sail-operator");
    metadata["ownerReferences"] = json!([owner]);
}

/// Keeps, for every `name`, its last entry, at the place of the first.
fn last_of_each_name(entries: &mut Vec<Value>) {
    let mut last: HashMap<String, Value> = HashMap::new();
    for entry in entries.iter() {
        last.insert(entry["name"].as_str().unwrap_or("").to_string(), entry.clone());
    }
    let mut seen = std::collections::HashSet::new();
    entries.retain(|e| seen.insert(e["name"].as_str().unwrap_or("").to_string()));
    for entry in entries.iter_mut() {
        if let Some(winner) = last.get(entry["name"].as_str().unwrap_or("")) {
            *entry = winner.clone();
        }
    }
}

/// `{apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true}` of `owner`.
pub fn owner_reference(owner: &DynamicObject, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": owner.metadata.name,
        "uid": owner.metadata.uid,
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Applies releases on one cluster; remembers the kinds it resolved.
pub struct Installer {
    client: kube::Client,
    kinds: Mutex<HashMap<(String, String), (ApiResource, ApiCapabilities)>>,
}

impl Installer {
    pub fn new(client: kube::Client) -> Installer {
        Installer {
            client,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// Installs `objects` (already post-rendered) into `namespace`, then deletes
    /// what `previous` had and this render has not. Returns what is installed now.
    pub async fn install(
        &self,
        namespace: &str,
        objects: Vec<Value>,
        previous: &BTreeSet<ObjectKey>,
    ) -> Result<BTreeSet<ObjectKey>, String> {
        let mut installed = BTreeSet::new();
        for group in in_install_order(objects) {
            let applied = try_join_all(group.into_iter().map(|object| self.apply(namespace, object))).await?;
            installed.extend(applied);
        }
        for gone in previous.difference(&installed) {
            self.delete(gone).await?;
        }
        Ok(installed)
    }

    async fn resolve(&self, api_version: &str, kind: &str) -> Result<(ApiResource, ApiCapabilities), String> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.kinds.lock().await.get(&key) {
            return Ok(found.clone());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| format!("resource mapping not found for kind \"{kind}\" in version \"{api_version}\": {e}"))?;
        self.kinds.lock().await.insert(key, found.clone());
        Ok(found)
    }

    fn api(&self, resource: &ApiResource, caps: &ApiCapabilities, namespace: &str) -> Api<DynamicObject> {
        match caps.scope {
            Scope::Namespaced => Api::namespaced_with(self.client.clone(), namespace, resource),
            Scope::Cluster => Api::all_with(self.client.clone(), resource),
        }
    }

    async fn apply(&self, release_namespace: &str, mut object: Value) -> Result<ObjectKey, String> {
        let api_version = object["apiVersion"].as_str().unwrap_or("").to_string();
        let kind = object["kind"].as_str().unwrap_or("").to_string();
        let name = object["metadata"]["name"].as_str().unwrap_or("").to_string();
        let (resource, caps) = self.resolve(&api_version, &kind).await?;
        // Helm puts namespaced objects without a namespace into the release's.
        let namespace = match caps.scope {
            Scope::Namespaced => object["metadata"]["namespace"].as_str().unwrap_or(release_namespace).to_string(),
            Scope::Cluster => String::new(),
        };
        if !namespace.is_empty() {
            object["metadata"]["namespace"] = json!(namespace);
        }
        let params = PatchParams::apply("sail-operator").force();
        self.api(&resource, &caps, &namespace)
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|e| {
                format!(
                    "{kind} {}{name}: {e}",
                    if namespace.is_empty() {
                        String::new()
                    } else {
                        format!("{namespace}/")
                    }
                )
            })?;
        Ok((api_version, kind, namespace, name))
    }

    async fn delete(&self, (api_version, kind, namespace, name): &ObjectKey) -> Result<(), String> {
        let (resource, caps) = self.resolve(api_version, kind).await?;
        match self
            .api(&resource, &caps, namespace)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(format!("deleting {kind} {name}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_come_last_and_accounts_before_deployments() {
        let objects = [
            "MutatingWebhookConfiguration",
            "Deployment",
            "ServiceAccount",
            "Deployment",
            "Unknown",
        ]
        .iter()
        .map(|k| json!({"kind": k}))
        .collect();
        let kinds: Vec<Vec<String>> = in_install_order(objects)
            .iter()
            .map(|g| g.iter().map(|o| o["kind"].as_str().unwrap().to_string()).collect())
            .collect();
        assert_eq!(
            kinds,
            [
                vec!["ServiceAccount"],
                vec!["Deployment", "Deployment"],
                vec!["MutatingWebhookConfiguration"],
                vec!["Unknown"]
            ]
        );
    }

    #[test]
    fn a_repeated_env_name_keeps_the_value_the_process_sees() {
        let mut object = json!({"kind": "Deployment", "metadata": {"name": "istiod"}, "spec": {"template": {"spec": {"containers": [
            {"name": "discovery", "env": [{"name": "CLUSTER_ID", "value": "a"}, {"name": "X", "value": "1"}, {"name": "CLUSTER_ID", "value": "b"}]}]}}}});
        post_render(&mut object, &json!({}));
        assert_eq!(
            object["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name": "CLUSTER_ID", "value": "b"}, {"name": "X", "value": "1"}])
        );
    }

    #[test]
    fn post_render_labels_and_owns() {
        let mut object = json!({"kind": "Service", "metadata": {"name": "istiod", "labels": {"app": "istiod"}}});
        post_render(&mut object, &json!({"kind": "IstioRevision", "name": "default"}));
        assert_eq!(
            object["metadata"]["labels"],
            json!({"app": "istiod", "managed-by": "sail-operator"})
        );
        assert_eq!(object["metadata"]["ownerReferences"][0]["kind"], "IstioRevision");
    }
}
