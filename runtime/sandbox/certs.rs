//! Per-cluster PKI: a CA, the API server's serving certificate, client
//! certificates for the admin, the controller manager, the scheduler and
//! kwok, the service-account signing keypair, and etcd's own CA with its
//! serving certificate and kube-apiserver's client certificate. Everything is generated
//! fresh for each cluster, so a kubeconfig of one cluster can never talk to
//! another.

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::error::{Error, Result};

/// A certificate and its private key, both PEM.
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Everything one cluster's control plane and its clients need.
pub struct ClusterCerts {
    pub ca: CertifiedKey,
    pub serving: CertifiedKey,
    /// `admin`, group `system:masters`: the identity in DIR/kubeconfig.
    pub admin: CertifiedKey,
    /// `system:kube-controller-manager`, also in `system:masters` because with
    /// `--use-service-account-credentials=false` its controllers act as itself.
    pub controller_manager: CertifiedKey,
    /// `system:kube-scheduler`: the bootstrap RBAC roles for that user are all it needs.
    pub scheduler: CertifiedKey,
    /// `kwok`, in `system:masters`: it plays kubelets for every Node and Pod it manages.
    pub kwok: CertifiedKey,
    /// Signs service-account tokens (kube-apiserver and the token controller).
    pub service_account_key_pem: String,
    pub service_account_pub_pem: String,
    pub etcd: EtcdCerts,
}

/// etcd's own PKI, apart from the cluster CA (as kubeadm does): etcd holds
/// every Secret in clear, so only kube-apiserver's client certificate may
/// read it, not any certificate the cluster CA signed (issue 15: another
/// local user could read tokens through etcd's plain-HTTP loopback port).
pub struct EtcdCerts {
    pub ca: CertifiedKey,
    /// etcd's serving and peer certificate (127.0.0.1).
    pub server: CertifiedKey,
    /// kube-apiserver's client certificate for etcd.
    pub apiserver_client: CertifiedKey,
}

/// Names the serving certificate is valid for: the loopback address the
/// sandbox listens on, and the in-cluster names a kubeconfig may carry.
const SERVING_NAMES: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "10.96.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

impl ClusterCerts {
    pub fn generate(cluster: &str) -> Result<ClusterCerts> {
        let (ca, issuer) = authority(&format!("mesh-run sandbox CA {cluster}"))?;

        let names: Vec<String> = SERVING_NAMES.iter().map(|s| s.to_string()).collect();
        let serving = leaf(&issuer, "kube-apiserver", None, names, ExtendedKeyUsagePurpose::ServerAuth)?;
        let admin = leaf(
            &issuer,
            "admin",
            Some("system:masters"),
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let controller_manager = leaf(
            &issuer,
            "system:kube-controller-manager",
            Some("system:masters"),
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let scheduler = leaf(&issuer, "system:kube-scheduler", None, vec![], ExtendedKeyUsagePurpose::ClientAuth)?;
        let kwok = leaf(&issuer, "kwok", Some("system:masters"), vec![], ExtendedKeyUsagePurpose::ClientAuth)?;
        let sa = KeyPair::generate().map_err(pki_error)?;
        let etcd = EtcdCerts::generate(cluster)?;
        Ok(ClusterCerts {
            ca,
            serving,
            admin,
            controller_manager,
            scheduler,
            kwok,
            service_account_key_pem: sa.serialize_pem(),
            service_account_pub_pem: sa.public_key_pem(),
            etcd,
        })
    }
}

impl EtcdCerts {
    fn generate(cluster: &str) -> Result<EtcdCerts> {
        let (ca, issuer) = authority(&format!("mesh-run sandbox etcd CA {cluster}"))?;
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        // Serving and peer in one: the single member's peer port speaks TLS too.
        let both = [ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let server = leaf_for(&issuer, "etcd", None, names, &both)?;
        let apiserver_client = leaf(
            &issuer,
            "kube-apiserver-etcd-client",
            None,
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(EtcdCerts {
            ca,
            server,
            apiserver_client,
        })
    }
}

/// A fresh self-signed CA named `common_name`, and the issuer that signs with it.
fn authority(common_name: &str) -> Result<(CertifiedKey, Issuer<'static, KeyPair>)> {
    let ca_key = KeyPair::generate().map_err(pki_error)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
    ca_params.distinguished_name.push(DnType::CommonName, common_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(pki_error)?;
    let ca = CertifiedKey {
        cert_pem: ca_cert.pem(),
        key_pem: ca_key.serialize_pem(),
    };
    Ok((ca, Issuer::new(ca_params, ca_key)))
}

/// A certificate signed by the cluster CA. Kubernetes reads the user from
/// the CommonName and the groups from the Organization.
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    common_name: &str,
    organization: Option<&str>,
    names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertifiedKey> {
    leaf_for(issuer, common_name, organization, names, &[usage])
}

fn leaf_for(
    issuer: &Issuer<'_, KeyPair>,
    common_name: &str,
    organization: Option<&str>,
    names: Vec<String>,
    usages: &[ExtendedKeyUsagePurpose],
) -> Result<CertifiedKey> {
    let key = KeyPair::generate().map_err(pki_error)?;
    let mut params = CertificateParams::new(names).map_err(pki_error)?;
    params.distinguished_name.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        params.distinguished_name.push(DnType::OrganizationName, org);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = usages.to_vec();
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, issuer).map_err(pki_error)?;
    Ok(CertifiedKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn pki_error(err: rcgen::Error) -> Error {
    Error::Sandbox {
        message: format!("cannot generate certificates: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pems_parse_and_differ_per_cluster() {
        let a = ClusterCerts::generate("a").unwrap();
        let b = ClusterCerts::generate("b").unwrap();
        assert_ne!(a.ca.cert_pem, b.ca.cert_pem);
        // etcd trusts its own CA only, not the one every cluster client's certificate comes from.
        assert_ne!(a.ca.cert_pem, a.etcd.ca.cert_pem);
        for pem in [
            &a.ca.cert_pem,
            &a.serving.cert_pem,
            &a.admin.cert_pem,
            &a.controller_manager.cert_pem,
            &a.scheduler.cert_pem,
            &a.kwok.cert_pem,
            &a.etcd.ca.cert_pem,
            &a.etcd.server.cert_pem,
            &a.etcd.apiserver_client.cert_pem,
        ] {
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        }
        // The keys load back, i.e. kube-apiserver gets well-formed PKCS#8.
        for key in [&a.serving.key_pem, &a.admin.key_pem, &a.service_account_key_pem] {
            KeyPair::from_pem(key).unwrap();
        }
        assert!(a.service_account_pub_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    }
}
