//! Watch mode prunes after each successful rerun (issue 14): deleting an
//! object from the playbook and saving deletes it from the cluster.

use super::*;

#[tokio::test]
async fn saving_an_edit_that_removes_an_object_prunes_it() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let ns = "watch-prune";
    let extra = format!(
        "cp.apply(`{{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"extra\", \"namespace\": \"{ns}\"}}}}`);\n"
    );
    let test = Test::new()
        .playbook("prune-main.rhai", &format!("{}{extra}", playbook(ns, "one")))
        .playbook("lib.rhai", &module("lib"));
    let main = test.dir().join("prune-main.rhai");
    let mut watch = Watching::start(test.dir(), sandbox, "prune-main.rhai");
    assert!(summary_ok(&watch.run()), "first run");
    let configmaps = Api::<ConfigMap>::namespaced(sandbox.client("control-plane").await, ns);
    assert!(configmaps.get_opt("extra").await.unwrap().is_some());

    edit(&main, &extra, "");
    let (_, events) = watch.rerun();
    assert!(summary_ok(&events));
    let pruned: Vec<&Value> = events.iter().filter(|e| e["action"] == "prune").collect();
    assert_eq!(pruned.len(), 1, "{events:#?}");
    assert_eq!(pruned[0]["object"], format!("ConfigMap {ns}/extra"));
    assert!(configmaps.get_opt("extra").await.unwrap().is_none(), "extra is still there");
    assert!(configmaps.get_opt("watched").await.unwrap().is_some());
    let (code, _) = watch.interrupt();
    assert_eq!(code, Some(130));
}
