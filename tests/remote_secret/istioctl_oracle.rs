//! `create_remote_secret` against the real `istioctl create-remote-secret`
//! (the test bed's build) on the same data-plane cluster. Given the same
//! service account, server and token Secret, both must produce the same
//! Secret: name, namespace, labels, annotations, key, and the kubeconfig
//! inside byte for byte. Where the service account is missing, both must
//! fail or succeed alike, in istioctl's words, and create the same objects.
//! Tokens never appear in a failure message: they are compared, then redacted.

mod call;
mod cluster_objects;
mod produced;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::Api;

use self::call::{Call, istioctl, istioctl_token, redact, run_playbook};
use self::cluster_objects::{account_with_token, assert_same_field, create_namespace, minor, reader_objects, token_of};
use self::produced::{Produced, assert_same};
use crate::support;

const CLUSTERS: &[&str] = &["control-plane", "data-plane"];

/// Both tools on the same account, token and server; the Secrets must match.
async fn assert_same_secret(call: Call, secret_name_of: impl Fn(&str) -> String) {
    let sandbox = support::sandbox("default", CLUSTERS);
    let (cp, dp) = (sandbox.client("control-plane").await, sandbox.client("data-plane").await);
    let (ns, account) = (call.namespace, call.service_account.expect("an explicit account"));
    create_namespace(&cp, ns).await;
    create_namespace(&dp, ns).await;
    let token = account_with_token(&dp, ns, account).await;

    let reference = istioctl(sandbox, &call).await;
    let token_used = istioctl_token(&reference);
    if minor(&dp).await >= 24 {
        assert!(
            token_used == token,
            "istioctl did not reuse the token Secret {account}-istio-remote-secret-token"
        );
    }
    let expected = Produced::from_istioctl(&reference, &token_used);

    let out = run_playbook(sandbox, &call);
    out.status(0).stdout_lacks(&token_used).stderr_lacks(&token_used);
    let cluster_name = match call.name {
        Some(name) => name.to_string(),
        None => Api::<Namespace>::all(dp.clone())
            .get("kube-system")
            .await
            .unwrap()
            .metadata
            .uid
            .unwrap(),
    };
    let ours = Produced::from_applied(&cp, ns, &secret_name_of(&cluster_name), &token_used).await;
    assert_same(&expected, &ours);

    // The loopback warning: given by both or by neither, in istioctl's words.
    match reference.warning() {
        Some(warning) => {
            out.stderr_contains(warning);
        }
        None => {
            out.stderr_lacks("server in Kubeconfig");
        }
    }
}

#[tokio::test]
async fn config_type_matches_istioctl() {
    // The Sail external-control-plane call: no --name (the kube-system UID), an explicit server.
    let call = Call {
        namespace: "rs-oracle-config",
        secret_type: Some("config"),
        service_account: Some("istiod-rs-oracle"),
        create_service_account: Some(false),
        server: Some("https://172.18.0.3:6443"),
        ..Call::default()
    };
    assert_same_secret(call, |_| "istio-kubeconfig".to_string()).await;
}

#[tokio::test]
async fn remote_type_matches_istioctl() {
    // The kubeconfig's own (loopback) server, which both warn about.
    let call = Call {
        namespace: "rs-oracle-remote",
        secret_type: Some("remote"),
        service_account: Some("istio-reader-service-account"),
        create_service_account: Some(false),
        name: Some("oracle-dp"),
        ..Call::default()
    };
    assert_same_secret(call, |cluster| format!("istio-remote-secret-{cluster}")).await;
}

#[tokio::test]
async fn a_missing_account_fails_like_istioctl() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let dp = sandbox.client("data-plane").await;
    let ns = "rs-oracle-missing";
    create_namespace(&dp, ns).await;
    for secret_type in ["config", "remote"] {
        let call = Call {
            namespace: ns,
            secret_type: Some(secret_type),
            service_account: Some("istiod-missing"),
            create_service_account: Some(false),
            ..Call::default()
        };
        let reference = istioctl(sandbox, &call).await;
        assert!(
            !reference.success,
            "istioctl succeeded without the account:\n{}",
            redact(&reference.stdout)
        );
        assert_eq!(reference.stdout, "", "istioctl printed a Secret although it failed");
        let out = run_playbook(sandbox, &call);
        out.status(1)
            .stderr_contains(reference.error())
            .stdout_lacks("contents hidden")
            .stderr_lacks("server in Kubeconfig");
        assert!(
            reference.warning().is_none(),
            "istioctl warns on failure: {:?}",
            reference.warning()
        );
    }
    // Neither created anything for the account.
    let secrets = Api::<Secret>::namespaced(dp.clone(), ns).list(&Default::default()).await.unwrap();
    let names: Vec<_> = secrets.items.iter().filter_map(|s| s.metadata.name.clone()).collect();
    assert!(!names.iter().any(|n| n.contains("istio-remote-secret-token")), "{names:?}");
}

#[tokio::test]
async fn a_missing_reader_account_is_created_like_istioctl() {
    let sandbox = support::sandbox("default", CLUSTERS);
    let (cp, dp) = (sandbox.client("control-plane").await, sandbox.client("data-plane").await);
    // Separate namespaces, left to both tools to create on the data plane.
    let (theirs, ours) = ("rs-oracle-create-i", "rs-oracle-create-m");
    create_namespace(&cp, ours).await;
    let call = |namespace| Call {
        namespace,
        name: Some("oracle-created"),
        server: Some("https://172.18.0.4:6443"),
        ..Call::default()
    };
    let reference = istioctl(sandbox, &call(theirs)).await;
    let their_token = istioctl_token(&reference);
    let mut expected = Produced::from_istioctl(&reference, &their_token);
    let out = run_playbook(sandbox, &call(ours));
    out.status(0);

    let token_secret = "istio-reader-service-account-istio-remote-secret-token";
    let our_token = if minor(&dp).await >= 24 {
        let made = token_of(&Api::namespaced(dp.clone(), theirs), token_secret).await;
        assert!(made == their_token, "istioctl used the token Secret it made");
        token_of(&Api::namespaced(dp.clone(), ours), token_secret).await
    } else {
        let applied = Api::<Secret>::namespaced(cp.clone(), ours)
            .get("istio-remote-secret-oracle-created")
            .await
            .unwrap();
        let text = String::from_utf8(applied.data.unwrap()["oracle-created"].0.clone()).unwrap();
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix("token: "))
            .unwrap()
            .to_string()
    };
    let mut produced = Produced::from_applied(&cp, ours, "istio-remote-secret-oracle-created", &our_token).await;
    (expected.namespace, produced.namespace) = (expected.namespace.replace(theirs, "<ns>"), produced.namespace.replace(ours, "<ns>"));
    assert_same(&expected, &produced);

    let (their_account, their_role, their_binding) = reader_objects(&dp, theirs).await;
    let (our_account, our_role, our_binding) = reader_objects(&dp, ours).await;
    assert_same_field("ServiceAccount", "labels", &their_account, &our_account);
    for field in ["labels", "rules"] {
        assert_same_field("ClusterRole", field, &their_role, &our_role);
    }
    for field in ["labels", "roleRef", "subjects"] {
        assert_same_field("ClusterRoleBinding", field, &their_binding, &our_binding);
    }

    // A missing account other than the reader: both create the reader account, then fail alike.
    let ns = "rs-oracle-create-other";
    let call = Call {
        namespace: ns,
        secret_type: Some("config"),
        service_account: Some("istiod-not-there"),
        ..Call::default()
    };
    let reference = istioctl(sandbox, &call).await;
    assert!(!reference.success, "istioctl made up the account:\n{}", redact(&reference.stdout));
    run_playbook(sandbox, &call).status(1).stderr_contains(reference.error());
}
