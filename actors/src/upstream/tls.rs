//! The TLS client configuration for the broker (rustls, ring): the CA the broker's
//! certificate must chain to, and for mutual TLS the client certificate and key. Every
//! file is read and checked here (`crate::pem`), once, so that a bad one is named with
//! what is wrong with it (unreadable, not PEM, expired, key and certificate not a pair)
//! before Eliot ever connects.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::settings::UpstreamSettings;

/// What is wrong with the TLS settings, naming the key and the file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("upstream.{key}: {message}")]
pub struct TlsError {
    pub key: &'static str,
    pub message: String,
}

fn problem(key: &'static str, path: &Path, what: impl std::fmt::Display) -> TlsError {
    TlsError {
        key,
        message: format!("`{}`: {what}", path.display()),
    }
}

/// The configuration every upstream connection shares; `None` without TLS.
pub fn client_config(settings: &UpstreamSettings) -> Result<Option<Arc<ClientConfig>>, TlsError> {
    if !settings.tls {
        return Ok(None);
    }
    let roots = match settings.ca_file() {
        Some(path) => roots_from(path)?,
        None if settings.system_roots => system_roots()?,
        None => {
            return Err(TlsError {
                key: "ca_file",
                message: "TLS needs a CA file (or system_roots = true)".into(),
            })
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError {
            key: "tls",
            message: e.to_string(),
        })?
        .with_root_certificates(roots);
    let config = match (settings.client_cert_file(), settings.client_key_file()) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "client_cert_file")?;
            let private_key = private_key(key)?;
            builder
                .with_client_auth_cert(chain, private_key)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => problem(
                        "client_key_file",
                        key,
                        format!("is not the key of the certificate in `{}`", cert.display()),
                    ),
                    other => problem("client_key_file", key, other),
                })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

fn roots_from(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, "ca_file")? {
        roots
            .add(cert)
            .map_err(|e| problem("ca_file", path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(TlsError {
            key: "system_roots",
            message: "no CA certificate found in the system's store".into(),
        });
    }
    Ok(roots)
}

fn certificates(path: &Path, key: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    crate::pem::certificates(path).map_err(|why| problem(key, path, why))
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    crate::pem::private_key(path).map_err(|why| problem("client_key_file", path, why))
}
