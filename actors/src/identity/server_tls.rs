//! The device side's TLS, as identity sees it: the rustls server configuration read from
//! the `[tls]` files (a client certificate asked for when there is a client CA, and
//! required when `auth.mode` accepts nothing else), and the names a verified client
//! certificate gives its holder, which the `Authenticator` matches against device ids.
//!
//! The listener that runs the handshakes is the endpoint's (`endpoint/tls_listener.rs`):
//! it uses these, and identity knows nothing of sockets.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::settings::{AuthMode, TlsSettings};

#[derive(Debug, thiserror::Error)]
#[error("tls.{key}: `{path}`: {message}")]
pub struct ServerTlsError {
    pub key: &'static str,
    pub path: String,
    pub message: String,
}

fn problem(key: &'static str, path: &Path, message: impl std::fmt::Display) -> ServerTlsError {
    ServerTlsError {
        key,
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ServerTlsError> {
    crate::pem::certificates(path).map_err(|why| problem(key, path, why))
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServerTlsError> {
    crate::pem::private_key(path).map_err(|why| problem("key_file", path, why))
}

/// The server configuration from the files of `settings`. Client certificates are asked
/// for when there is a client CA; required when the mode accepts nothing else.
pub fn server_config(
    settings: &TlsSettings,
    mode: AuthMode,
) -> Result<Arc<ServerConfig>, ServerTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| problem("listen", Path::new(""), e))?;
    let builder = match settings.client_ca_file() {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates("client_ca_file", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| problem("client_ca_file", ca, format!("not a usable CA: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match mode {
                AuthMode::Certificate => verifier.build(),
                _ => verifier.allow_unauthenticated().build(),
            }
            .map_err(|e| problem("client_ca_file", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let chain = certificates("cert_file", &settings.cert_file)?;
    let key = private_key(&settings.key_file)?;
    let config = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => problem(
            "key_file",
            &settings.key_file,
            format!(
                "is not the key of the certificate in `{}`",
                settings.cert_file.display()
            ),
        ),
        other => problem("key_file", &settings.key_file, other),
    })?;
    Ok(Arc::new(config))
}

/// The names a client certificate gives its holder: the subject's common names, then its
/// DNS and URI alternative names.
pub fn certificate_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = parsed
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(n)
                | x509_parser::extensions::GeneralName::URI(n) => names.push((*n).to_owned()),
                _ => {}
            }
        }
    }
    names
}
