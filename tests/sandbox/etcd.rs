//! etcd holds every Secret in clear and listens on loopback, which every
//! local user can reach: it speaks TLS only, and only to client
//! certificates of its own CA (kube-apiserver's), issue 15.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::CLUSTERS;
use crate::support::{self, control_plane_processes};

const VERSION_REQUEST: &[u8] = b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

/// The client port of the etcd of `cluster`, from its command line.
fn etcd_port(dir: &Path, cluster: &str) -> u16 {
    let folder = dir.join(cluster).display().to_string();
    let etcd = control_plane_processes(dir)
        .into_iter()
        .find(|p| p.contains("/etcd ") && p.contains(&folder))
        .unwrap_or_else(|| panic!("no etcd running for {folder}"));
    let url = etcd
        .split_whitespace()
        .find_map(|a| a.strip_prefix("--listen-client-urls="))
        .expect("--listen-client-urls");
    url.rsplit(':').next().unwrap().parse().expect("etcd client port")
}

/// `GET /version` over TLS trusting etcd's CA, with `client` (cert, key) if given.
async fn tls_version(port: u16, ca: &Path, client: Option<(&Path, &Path)>) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(ca).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(cert).unwrap()],
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let server = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(server, tcp).await.map_err(|e| format!("handshake: {e}"))?;
    tls.write_all(VERSION_REQUEST).await.map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.map_err(|e| format!("read: {e}"))?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn etcd_answers_only_tls_clients_with_its_own_client_certificates() {
    let sandbox = support::sandbox("default", CLUSTERS);
    for cluster in CLUSTERS {
        let dir = sandbox.dir().join(cluster);
        let port = etcd_port(sandbox.dir(), cluster);
        // Plain HTTP, as any local user could try: no data.
        let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        plain.write_all(VERSION_REQUEST).await.unwrap();
        let mut answer = Vec::new();
        let _ = plain.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(!answer.contains("etcdserver"), "{cluster}: etcd answered plain HTTP: {answer}");

        let ca = dir.join("etcd-ca.crt");
        // TLS without a client certificate: refused.
        match tls_version(port, &ca, None).await {
            Ok(answer) => assert!(!answer.contains("etcdserver"), "{cluster}: answered without a client certificate"),
            Err(refused) => assert!(!refused.is_empty()),
        }
        // kube-apiserver's etcd client certificate: the version, so the port is etcd's.
        let client = (dir.join("apiserver-etcd-client.crt"), dir.join("apiserver-etcd-client.key"));
        let answer = tls_version(port, &ca, Some((&client.0, &client.1))).await.unwrap();
        assert!(answer.contains("etcdserver"), "{cluster}: {answer}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&client.1).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "etcd client key must be owner-only");
    }
}
