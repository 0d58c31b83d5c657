//! A throwaway PKI for TLS tests, made fresh per test with rcgen: a CA, a broker
//! certificate for `localhost` / `127.0.0.1`, and client certificates good and bad
//! (expired, or signed by an unrelated CA). Everything is PEM in a temporary directory,
//! as Mosquitto and its clients read it.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::mosquitto::TlsFiles;

/// The names a broker's certificate is valid for: clients must connect with one of them.
pub const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// A certificate authority: its certificate (to sign with and to trust) and its key.
struct Authority {
    cert: Certificate,
    key: KeyPair,
    file: PathBuf,
}

impl Authority {
    /// A self-signed CA named `common_name`, written to `file`. It is valid from long
    /// before any test certificate (an expired client cert must fail for its own dates,
    /// not for its issuer's) until long after.
    fn new(common_name: &str, file: PathBuf) -> Authority {
        let mut params = params_named(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = days_from_now(-365);
        params.not_after = days_from_now(365);
        let key = new_key();
        let cert = params.self_signed(&key).expect("rcgen signs the CA");
        write(&file, &cert.pem());
        Authority { cert, key, file }
    }

    /// Signs `params` (with a fresh key) and writes `<stem>.pem` and `<stem>.key` to `dir`.
    fn issue(&self, params: CertificateParams, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let key = new_key();
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("rcgen signs the certificate");
        let cert_file = dir.join(format!("{stem}.pem"));
        let key_file = dir.join(format!("{stem}.key"));
        write(&cert_file, &cert.pem());
        write(&key_file, &key.serialize_pem());
        (cert_file, key_file)
    }
}

/// The test PKI. Its files live as long as `dir`.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca: Authority,
    /// A CA nobody configured to trust: its clients must be refused.
    other_ca: Authority,
    server: TlsFiles,
}

impl Pki {
    /// Creates the CA ("Eliot Test CA"), an unrelated CA, and the broker's certificate.
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("a temporary directory for certificates");
        let ca = Authority::new("Eliot Test CA", dir.path().join("ca.pem"));
        let other_ca = Authority::new("Unrelated Test CA", dir.path().join("other-ca.pem"));
        let server = server_certificate(&ca, dir.path());
        Pki {
            dir,
            ca,
            other_ca,
            server,
        }
    }

    /// The CA that signed the broker's and the good clients' certificates.
    pub fn ca_file(&self) -> PathBuf {
        self.ca.file.clone()
    }

    /// The unrelated CA: for a client that trusts the wrong authority.
    pub fn other_ca_file(&self) -> PathBuf {
        self.other_ca.file.clone()
    }

    /// What the broker needs: its certificate and key, and the CA to check clients with.
    pub fn server_files(&self) -> TlsFiles {
        self.server.clone()
    }

    /// Another certificate for the same server names, with the subject CN `name`: a
    /// renewed certificate, to swap in while a server runs.
    pub fn server_named(&self, name: &str) -> TlsFiles {
        let names = SERVER_NAMES.map(str::to_owned).to_vec();
        let mut params = CertificateParams::new(names).expect("valid server names");
        params.distinguished_name = common_name(name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = days_from_now(-1);
        params.not_after = days_from_now(30);
        let (cert, key) = self.ca.issue(params, self.dir.path(), &file_stem(name));
        TlsFiles {
            ca: self.ca.file.clone(),
            cert,
            key,
        }
    }

    /// A client certificate (CN = `name`) signed by the CA, valid from yesterday for 30
    /// days: (certificate, key).
    pub fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        let params = client_params(name, days_from_now(-1), days_from_now(30));
        self.ca.issue(
            params,
            self.dir.path(),
            &format!("client-{}", file_stem(name)),
        )
    }

    /// A client certificate signed by the CA that expired yesterday (valid from 30 days
    /// ago): (certificate, key).
    pub fn expired_client(&self, name: &str) -> (PathBuf, PathBuf) {
        let params = client_params(name, days_from_now(-30), days_from_now(-1));
        self.ca.issue(
            params,
            self.dir.path(),
            &format!("expired-{}", file_stem(name)),
        )
    }

    /// A currently valid client certificate signed by the unrelated CA: (certificate, key).
    pub fn foreign_client(&self, name: &str) -> (PathBuf, PathBuf) {
        let params = client_params(name, days_from_now(-1), days_from_now(30));
        self.other_ca.issue(
            params,
            self.dir.path(),
            &format!("foreign-{}", file_stem(name)),
        )
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

/// The broker's certificate: valid for `SERVER_NAMES`, for server authentication.
fn server_certificate(ca: &Authority, dir: &Path) -> TlsFiles {
    let names = SERVER_NAMES.map(str::to_owned).to_vec();
    let mut params = CertificateParams::new(names).expect("valid server names");
    params.distinguished_name = common_name(SERVER_NAMES[0]);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = days_from_now(-1);
    params.not_after = days_from_now(30);
    let (cert, key) = ca.issue(params, dir, "server");
    TlsFiles {
        ca: ca.file.clone(),
        cert,
        key,
    }
}

fn client_params(
    name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = params_named(name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    params
}

/// Parameters with no subject alternative names and the subject CN = `name` (rcgen's
/// default subject is "rcgen self signed cert", which would make every CA look alike).
fn params_named(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names to check");
    params.distinguished_name = common_name(name);
    params
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

/// An ECDSA P-256 key (rcgen's default), which OpenSSL, and so Mosquitto, reads as PKCS#8 PEM.
fn new_key() -> KeyPair {
    KeyPair::generate().expect("rcgen generates a key")
}

fn days_from_now(days: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + Duration::days(days)
}

/// `name` made safe for a file name.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn write(file: &Path, pem: &str) {
    fs::write(file, pem).unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
}
