// In tests/remote_secret/ (not tests/remote_secret.rs): Cargo would build every tests/*.rs as a test binary of its own.
//! `create_remote_secret` against real API servers: the Secret lands on the
//! other cluster with istioctl's name, label, annotation and key, its
//! kubeconfig names the source's API server, and its token really
//! authenticates there (checked with kubectl); failures use istioctl's words.

use std::process::Command;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::support::{self, SandboxHandle, Test};

mod istioctl_oracle;

const CLUSTERS: &[&str] = &["control-plane", "data-plane"];

async fn create_namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

async fn create_service_account(client: &kube::Client, namespace: &str, name: &str) {
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &sa)
        .await
        .expect("create service account");
}

/// The applied Secret on the control plane, and its kubeconfig (text and parsed).
async fn applied(client: &kube::Client, namespace: &str, name: &str, key: &str) -> (Secret, String, Value) {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .expect("remote secret applied");
    let data = secret.data.clone().unwrap_or_default();
    assert_eq!(data.keys().collect::<Vec<_>>(), vec![key], "one key: the kubeconfig");
    let text = String::from_utf8(data[key].0.clone()).unwrap();
    let parsed: Value = serde_saphyr::from_str(&text).unwrap();
    (secret, text, parsed)
}

fn assert_istio_metadata(secret: &Secret, cluster_name: &str) {
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("istio/multiCluster").map(String::as_str), Some("true"));
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("networking.istio.io/cluster").map(String::as_str),
        Some(cluster_name)
    );
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
}

/// kubectl with the extracted kubeconfig (optionally pointed at `server`): its output.
fn kubectl(sandbox: &SandboxHandle, kubeconfig: &str, server: Option<&str>, args: &[&str]) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), kubeconfig).unwrap();
    let mut command = Command::new(sandbox.kubectl());
    command.arg("--kubeconfig").arg(file.path()).env_remove("KUBECONFIG");
    if let Some(server) = server {
        command.args(["--server", server]);
    }
    let out = command.args(args).output().expect("run kubectl");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "kubectl {args:?} with the remote secret's kubeconfig failed:\n{stdout}\n{stderr}"
    );
    stdout.into_owned()
}

/// The data plane's Kubernetes minor version (a KUBEBUILDER_ASSETS folder may hold an older one).
async fn minor(sandbox: &SandboxHandle) -> u32 {
    support::server_minor(&sandbox.client("data-plane").await).await
}

/// The token authenticates as `user` (SelfSubjectReview: Kubernetes ≥ 1.28;
/// older servers only get the discovery check below).
async fn assert_authenticates(sandbox: &SandboxHandle, kubeconfig: &str, server: Option<&str>, user: &str) {
    if minor(sandbox).await >= 28 {
        let whoami = kubectl(
            sandbox,
            kubeconfig,
            server,
            &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
        );
        assert_eq!(whoami, user);
    }
    kubectl(sandbox, kubeconfig, server, &["get", "--raw", "/api"]);
}

fn token_of(kubeconfig: &Value) -> String {
    kubeconfig["users"][0]["user"]["token"].as_str().expect("bearer token").to_string()
}

#[tokio::test]
async fn remote_type_creates_the_reader_account_and_its_token_works() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let cp = sandbox.client("control-plane").await;
    create_namespace(&cp, "rs-remote").await;
    let out = Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .playbook(
            "p.rhai",
            r#"
            let dp = cluster("data-plane");
            let secret = create_remote_secret(dp, #{ namespace: "rs-remote", name: "dp1" });
            print(secret);
            print(`name=${secret.name}`);
            cluster("control-plane").apply(secret);
            "#,
        )
        .args(["run", "p.rhai"])
        .own_set()
        .run();
    out.status(0)
        .stdout_contains("Secret rs-remote/istio-remote-secret-dp1 (contents hidden: they hold credentials)")
        .stdout_contains("name=istio-remote-secret-dp1")
        .stdout_contains("ClusterRoleBinding istio-reader-clusterrole-rs-remote")
        .stderr_contains("server in Kubeconfig is https://127.0.0.1");
    if minor(sandbox).await >= 24 {
        // Before 1.24 the token controller made one itself.
        let dp = sandbox.client("data-plane").await;
        let name = "istio-reader-service-account-istio-remote-secret-token";
        let token_secret = Api::<Secret>::namespaced(dp, "rs-remote")
            .get(name)
            .await
            .expect("token Secret created on the data plane");
        assert_eq!(token_secret.type_.as_deref(), Some("kubernetes.io/service-account-token"));
    }

    let (secret, text, kubeconfig) = applied(&cp, "rs-remote", "istio-remote-secret-dp1", "dp1").await;
    assert_istio_metadata(&secret, "dp1");
    let dp_server = sandbox.server("data-plane");
    assert_eq!(kubeconfig["clusters"][0]["cluster"]["server"], dp_server.as_str());
    assert_eq!(kubeconfig["current-context"], "dp1");
    assert_eq!(
        kubeconfig["contexts"][0],
        json!({"name": "dp1", "context": {"cluster": "dp1", "user": "dp1"}})
    );
    let token = token_of(&kubeconfig);
    out.stdout_lacks(&token).stderr_lacks(&token);

    assert_authenticates(sandbox, &text, None, "system:serviceaccount:rs-remote:istio-reader-service-account").await;
    // The reader ClusterRole is bound: the account may list namespaces.
    assert!(kubectl(sandbox, &text, None, &["get", "namespaces", "-o", "name"]).contains("namespace/rs-remote"));
}

#[tokio::test]
async fn config_type_uses_the_given_account_server_and_kube_system_uid() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let (cp, dp) = (sandbox.client("control-plane").await, sandbox.client("data-plane").await);
    create_namespace(&cp, "rs-config").await;
    create_namespace(&dp, "rs-config").await;
    create_service_account(&dp, "rs-config", "istiod-rs-config").await;
    let out = Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .playbook(
            "p.rhai",
            r#"
            let dp = cluster("data-plane");
            let secret = dp.create_remote_secret(#{ type: "config", namespace: "rs-config",
                service_account: "istiod-rs-config", create_service_account: false, server: "https://10.9.8.7:6443" });
            cluster("control-plane").apply(secret);
            // A second call reuses the token Secret.
            cluster("control-plane").apply(dp.create_remote_secret(#{ type: "config", namespace: "rs-config",
                service_account: "istiod-rs-config", create_service_account: false, server: "https://10.9.8.7:6443" }));
            "#,
        )
        .args(["run", "p.rhai"])
        .own_set()
        .run();
    out.status(0)
        .stderr_lacks("server in Kubeconfig")
        .stdout_contains("Secret rs-config/istio-kubeconfig");

    let uid = Api::<Namespace>::all(dp.clone())
        .get("kube-system")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let (secret, text, kubeconfig) = applied(&cp, "rs-config", "istio-kubeconfig", "config").await;
    assert_istio_metadata(&secret, &uid);
    assert_eq!(kubeconfig["clusters"][0]["name"], uid.as_str());
    assert_eq!(kubeconfig["clusters"][0]["cluster"]["server"], "https://10.9.8.7:6443");
    out.stdout_lacks(&token_of(&kubeconfig)).stderr_lacks(&token_of(&kubeconfig));

    let token_secrets = Api::<Secret>::namespaced(dp.clone(), "rs-config")
        .list(&Default::default())
        .await
        .unwrap();
    let of_the_account = |s: &&Secret| {
        s.type_.as_deref() == Some("kubernetes.io/service-account-token")
            && s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .map(String::as_str)
                == Some("istiod-rs-config")
    };
    assert_eq!(
        token_secrets.items.iter().filter(of_the_account).count(),
        1,
        "one token Secret, reused by the second call"
    );

    // The kubeconfig names an address the sandbox does not have: point kubectl at the real one.
    let dp_server = sandbox.server("data-plane");
    assert_authenticates(sandbox, &text, Some(&dp_server), "system:serviceaccount:rs-config:istiod-rs-config").await;
}

#[tokio::test]
async fn missing_account_fails_in_istioctl_words_and_dry_run_creates_nothing() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let dp = sandbox.client("data-plane").await;
    create_namespace(&dp, "rs-missing").await;
    Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .playbook(
            "p.rhai",
            r#"
            let dp = cluster("data-plane");
            try {
                dp.create_remote_secret(#{ type: "config", namespace: "rs-missing", service_account: "nope",
                    create_service_account: false });
            } catch (e) {
                print(`kind=${e.kind}`);
            }
            create_remote_secret(dp, #{ namespace: "rs-missing", service_account: "nope", create_service_account: false });
            "#,
        )
        .args(["run", "p.rhai"])
        .own_set()
        .run()
        .status(1)
        .stdout_contains("kind=remote_secret")
        .stderr_contains(
            "could not get access token to read resources from local kube-apiserver: failed retrieving service account nope.rs-missing required for creating the remote secret (hint: try installing a minimal Istio profile on the cluster first, or run with '--create-service-account=true'): serviceaccounts \"nope\" not found",
        );

    Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .playbook(
            "p.rhai",
            r#"print(create_remote_secret(cluster("data-plane"), #{ namespace: "rs-missing", name: "dry" }));"#,
        )
        .args(["run", "--dry-run", "p.rhai"])
        .own_set()
        .run()
        .status(0)
        .stdout_contains("Secret rs-missing/istio-remote-secret-dry (contents hidden")
        .stderr_contains("a dry run cannot mint one");

    // A loopback `server` given on purpose is warned about too (istioctl stays silent); another is not.
    for (server, warned) in [("https://127.0.0.1:6443", true), ("https://172.18.0.3:6443", false)] {
        let out = Test::new()
            .kubeconfig(sandbox.kubeconfig())
            .playbook(
                "p.rhai",
                &format!(
                    r#"create_remote_secret(cluster("data-plane"), #{{ namespace: "rs-missing", name: "dry", server: "{server}" }});"#
                ),
            )
            .args(["run", "--dry-run", "p.rhai"])
            .own_set()
            .run();
        out.status(0);
        let warning = format!("the `server` option is {server}, a loopback address");
        if warned {
            out.stderr_contains(&warning);
        } else {
            out.stderr_lacks("a loopback address");
        }
    }
    let reader = Api::<ServiceAccount>::namespaced(dp.clone(), "rs-missing")
        .get_opt("istio-reader-service-account")
        .await
        .unwrap();
    assert!(reader.is_none(), "a dry run created the reader service account");

    Test::new()
        .kubeconfig(sandbox.kubeconfig())
        .playbook("p.rhai", r#"create_remote_secret(cluster("data-plane"), #{ namspace: "x" });"#)
        .args(["run", "p.rhai"])
        .own_set()
        .run()
        .status(2)
        .stderr_contains(
            "unknown option \"namspace\" for create_remote_secret; did you mean \"namespace\"? (valid options: type, name, namespace",
        );
}
