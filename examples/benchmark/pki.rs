//! The benchmark's test PKI for `auth`: a CA, the server's certificate and one client
//! certificate per device, made here with rcgen.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use crate::auth::device;

/// The test PKI: a CA, the server's certificate, and one client certificate per device.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub server: (PathBuf, PathBuf),
    pub ca_pem: String,
    pub clients: Vec<(String, String)>,
}

impl Pki {
    pub fn new(devices: usize) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, "bench CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issue = |names: Vec<String>, cn: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            let cert = params.signed_by(&key, &ca_cert, &ca_key).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let (cert, key) = issue(vec!["127.0.0.1".into()], "127.0.0.1");
        let server = (write("server.pem", &cert), write("server.key", &key));
        write("ca.pem", &ca_cert.pem());
        let clients = (0..devices)
            .map(|d| issue(Vec::new(), &device(d)))
            .collect();
        Pki {
            server,
            ca_pem: ca_cert.pem(),
            clients,
            dir,
        }
    }

    /// A client configuration trusting the CA, presenting device `d`'s certificate if asked.
    pub fn client(&self, d: Option<usize>) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut self.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        Arc::new(match d {
            Some(d) => {
                let (cert, key) = &self.clients[d];
                let chain = rustls_pemfile::certs(&mut cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let key = rustls_pemfile::private_key(&mut key.as_bytes())
                    .unwrap()
                    .unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        })
    }
}
