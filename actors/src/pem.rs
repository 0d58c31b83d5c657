//! PEM files of certificates and keys, read for the TLS listener and the upstream link,
//! each problem said in words a person can act on: unreadable, not PEM, empty, expired.

use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;

/// The certificates of a PEM file, each valid now; `Err` says what is wrong with it.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM file: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    for cert in &certs {
        check_validity(cert, OffsetDateTime::now_utc())?;
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("not a PEM file: {e}"))?
        .ok_or_else(|| "holds no PEM private key".into())
}

/// Refuses a certificate that has expired or is not valid yet, saying since or until when.
fn check_validity(cert: &CertificateDer<'_>, now: OffsetDateTime) -> Result<(), String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| format!("not a valid X.509 certificate: {e}"))?;
    let validity = parsed.validity();
    let subject = parsed.subject().to_string();
    if now > validity.not_after.to_datetime() {
        return Err(format!(
            "the certificate `{subject}` expired on {}",
            validity.not_after
        ));
    }
    if now < validity.not_before.to_datetime() {
        return Err(format!(
            "the certificate `{subject}` is not valid until {}",
            validity.not_before
        ));
    }
    Ok(())
}
