//! Per-cluster PKI: a CA, the API server's serving certificate, client
//! certificates for the admin, the controller manager, the scheduler and
//! kwok, and the service-account signing keypair. Everything is generated
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
        let ca_key = KeyPair::generate().map_err(pki_error)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("mesh-run sandbox CA {cluster}"));
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
        let issuer = Issuer::new(ca_params, ca_key);

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
        Ok(ClusterCerts {
            ca,
            serving,
            admin,
            controller_manager,
            scheduler,
            kwok,
            service_account_key_pem: sa.serialize_pem(),
            service_account_pub_pem: sa.public_key_pem(),
        })
    }
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
    let key = KeyPair::generate().map_err(pki_error)?;
    let mut params = CertificateParams::new(names).map_err(pki_error)?;
    params.distinguished_name.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        params.distinguished_name.push(DnType::OrganizationName, org);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![usage];
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
        for pem in [
            &a.ca.cert_pem,
            &a.serving.cert_pem,
            &a.admin.cert_pem,
            &a.controller_manager.cert_pem,
            &a.scheduler.cert_pem,
            &a.kwok.cert_pem,
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
