//! The SNI of a TLS ClientHello, read from the first bytes a client sends, as
//! Envoy's `tls_inspector` does: the bytes are only looked at, the caller
//! replays them upstream unchanged.

/// What the bytes read so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHello {
    /// A ClientHello has started and is not complete yet: read more.
    Incomplete,
    /// A whole ClientHello, with its server_name (if it sent one).
    Complete { sni: Option<String> },
    /// Not a TLS ClientHello (plain bytes, or a malformed one): no SNI.
    NotTls,
}

/// Larger handshakes are not ClientHellos we can wait for.
const MAX_HELLO: usize = 64 * 1024;
const RECORD_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXTENSION_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST_NAME: u8 = 0;

/// Reads `bytes` (everything received so far) as TLS records carrying a
/// ClientHello; the handshake message may span several records.
pub fn parse(bytes: &[u8]) -> ClientHello {
    let mut handshake = Vec::new();
    let mut rest = bytes;
    loop {
        if rest.is_empty() {
            return ClientHello::Incomplete;
        }
        if rest[0] != RECORD_HANDSHAKE {
            return ClientHello::NotTls;
        }
        // type(1) version(2) length(2); SSL 3.0 up to TLS 1.3 all say 3.x here.
        if rest.len() >= 2 && rest[1] != 3 {
            return ClientHello::NotTls;
        }
        if rest.len() < 5 {
            return ClientHello::Incomplete;
        }
        let length = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if length == 0 {
            return ClientHello::NotTls;
        }
        let Some(fragment) = rest.get(5..5 + length) else {
            return ClientHello::Incomplete;
        };
        handshake.extend_from_slice(fragment);
        rest = &rest[5 + length..];
        if handshake[0] != HANDSHAKE_CLIENT_HELLO {
            return ClientHello::NotTls;
        }
        if handshake.len() < 4 {
            continue;
        }
        let body_length = usize::from_be_bytes([0, 0, 0, 0, 0, handshake[1], handshake[2], handshake[3]]);
        if body_length > MAX_HELLO {
            return ClientHello::NotTls;
        }
        if let Some(body) = handshake.get(4..4 + body_length) {
            return match server_name(body) {
                Some(sni) => ClientHello::Complete { sni },
                None => ClientHello::NotTls,
            };
        }
    }
}

/// The host_name of the server_name extension of a ClientHello body;
/// `None` when the body is malformed, `Some(None)` when it names no server.
fn server_name(body: &[u8]) -> Option<Option<String>> {
    let mut reader = Reader(body);
    reader.take(2 + 32)?; // client_version, random
    reader.vector(1)?; // session_id
    reader.vector(2)?; // cipher_suites
    reader.vector(1)?; // compression_methods
    if reader.0.is_empty() {
        return Some(None); // no extensions at all
    }
    let mut extensions = Reader(reader.vector(2)?);
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vector(2)?;
        if kind != EXTENSION_SERVER_NAME {
            continue;
        }
        let mut names = Reader(Reader(data).vector(2)?);
        while !names.0.is_empty() {
            let name_type = names.take(1)?[0];
            let name = names.vector(2)?;
            if name_type == NAME_TYPE_HOST_NAME {
                let name = std::str::from_utf8(name).ok()?;
                return Some(Some(name.to_ascii_lowercase()));
            }
        }
        return Some(None);
    }
    Some(None)
}

/// Big-endian, length-prefixed fields, as TLS lays them out.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// A field preceded by its length in `width` bytes (1 or 2).
    fn vector(&mut self, width: usize) -> Option<&'a [u8]> {
        let length = match width {
            1 => usize::from(self.take(1)?[0]),
            _ => usize::from(self.u16()?),
        };
        self.take(length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// The first flight of a real client (rustls), naming `sni` if any.
    fn rustls_hello(sni: &str) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from(sni.to_string()).unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut bytes = Vec::new();
        client.write_tls(&mut bytes).unwrap();
        bytes
    }

    fn sni(name: &str) -> ClientHello {
        ClientHello::Complete {
            sni: Some(name.to_string()),
        }
    }

    #[test]
    fn a_real_client_hello_names_its_server() {
        let hello = rustls_hello("Istiod.External-Istiod.svc");
        assert_eq!(parse(&hello), sni("istiod.external-istiod.svc"));
    }

    #[test]
    fn an_ip_address_is_sent_without_sni() {
        // RFC 6066: literal addresses are not server names; rustls leaves the extension out.
        assert_eq!(parse(&rustls_hello("198.18.5.130")), ClientHello::Complete { sni: None });
    }

    #[test]
    fn every_prefix_of_a_client_hello_asks_for_more() {
        let hello = rustls_hello("a.example");
        for end in 0..hello.len() {
            assert_eq!(parse(&hello[..end]), ClientHello::Incomplete, "{end} of {} bytes", hello.len());
        }
        let mut more = hello.clone();
        more.extend_from_slice(b"application data after the hello");
        assert_eq!(parse(&more), sni("a.example"));
    }

    #[test]
    fn a_hello_split_over_records_is_reassembled() {
        let hello = rustls_hello("b.example");
        let handshake = &hello[5..];
        let mut split = Vec::new();
        for chunk in handshake.chunks(50) {
            split.extend_from_slice(&[RECORD_HANDSHAKE, 3, 1]);
            split.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            split.extend_from_slice(chunk);
        }
        assert_eq!(parse(&split), sni("b.example"));
    }

    #[test]
    fn plain_bytes_are_not_tls() {
        assert_eq!(parse(b"hello\n"), ClientHello::NotTls);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), ClientHello::NotTls);
        // A handshake record carrying a ServerHello (type 2), and a record of SSL 2 shape.
        assert_eq!(parse(&[22, 3, 3, 0, 4, 2, 0, 0, 0]), ClientHello::NotTls);
        assert_eq!(parse(&[22, 2, 0]), ClientHello::NotTls);
    }

    #[test]
    fn a_malformed_hello_is_not_tls() {
        let mut hello = rustls_hello("a.example");
        // A handshake length that ends the message inside its session_id.
        hello[6..9].copy_from_slice(&[0, 0, 40]);
        assert_eq!(parse(&hello), ClientHello::NotTls);
    }
}
