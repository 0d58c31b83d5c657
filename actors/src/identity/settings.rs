//! The `[auth]` and `[tls]` sections: how devices prove who they are, the TLS listener,
//! and the limits keyed by who a client is.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::settings::Problems;

/// How a device proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Anyone who reaches the port is whoever its client id says: loopback listeners only.
    None,
    /// Username = device id, password = its secret (`eliot device add`).
    Password,
    /// A client certificate, signed by `tls.client_ca_file`, naming the device (TLS only).
    Certificate,
    PasswordOrCertificate,
}

impl AuthMode {
    pub(crate) fn accepts_password(self) -> bool {
        matches!(self, AuthMode::Password | AuthMode::PasswordOrCertificate)
    }

    pub(crate) fn accepts_certificate(self) -> bool {
        matches!(
            self,
            AuthMode::Certificate | AuthMode::PasswordOrCertificate
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Password => "password",
            AuthMode::Certificate => "certificate",
            AuthMode::PasswordOrCertificate => "password_or_certificate",
        }
    }
}

/// The `[auth]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// Failed logins (counted from their start) as one device from one address within
    /// `failed_login_window`; past it, that device is refused unchecked from that address
    /// until the window has passed. Never applied to a verified client certificate.
    pub max_failed_logins: u32,
    #[serde(with = "humantime_serde")]
    pub failed_login_window: Duration,
    /// New connections per second from one address, with a burst; more are closed at once.
    pub new_connections_per_second: u32,
    pub new_connections_burst: u32,
    /// Per device (0: no limit). Past them, Eliot stops reading the device's socket until
    /// it is within them again.
    pub device_messages_per_second: u32,
    pub device_bytes_per_second: u32,
    /// Logins from one address waiting for their secret's check (or being checked) at
    /// most; more are refused at once (CONNACK server unavailable), unchecked. Addresses
    /// take turns at the checks.
    pub max_waiting_logins_per_address: usize,
    /// Addresses tracked at most by the per-address limits, and (address, device) pairs by
    /// the failed logins.
    pub max_tracked_addresses: usize,
}

impl AuthSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.at_least("max_failed_logins", self.max_failed_logins, 1);
        problems.positive("failed_login_window", self.failed_login_window);
        problems.at_least(
            "new_connections_per_second",
            self.new_connections_per_second,
            1,
        );
        problems.at_least("new_connections_burst", self.new_connections_burst, 1);
        problems.at_least(
            "max_waiting_logins_per_address",
            self.max_waiting_logins_per_address,
            1,
        );
        problems.at_least("max_tracked_addresses", self.max_tracked_addresses, 1);
    }
}

/// The `[tls]` section: the TLS listener for devices.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// PEM certificate chain and private key; reloaded on SIGHUP.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// PEM CA that signs device certificates; empty: no client certificate is asked for.
    pub client_ca_file: PathBuf,
    /// A TLS handshake must finish within this.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
}

impl TlsSettings {
    pub fn client_ca_file(&self) -> Option<&Path> {
        (!self.client_ca_file.as_os_str().is_empty()).then_some(&self.client_ca_file)
    }

    pub fn validate(&self, problems: &mut Problems) {
        if !self.enabled {
            return;
        }
        problems.check(
            !self.cert_file.as_os_str().is_empty(),
            "cert_file",
            "the TLS listener needs a certificate (PEM)",
        );
        problems.check(
            !self.key_file.as_os_str().is_empty(),
            "key_file",
            "the TLS listener needs the certificate's private key (PEM)",
        );
        problems.positive("handshake_timeout", self.handshake_timeout);
    }
}

/// `none` lets anyone be anyone: only where nobody else can connect. Answers why not.
pub fn check_mode(
    mode: AuthMode,
    plain: Option<SocketAddr>,
    tls: Option<&TlsSettings>,
) -> Result<(), String> {
    let mut listeners = plain.into_iter().chain(tls.map(|t| t.listen));
    if mode == AuthMode::None {
        if let Some(open) = listeners.find(|addr| !addr.ip().is_loopback()) {
            return Err(format!(
                "auth.mode = \"none\" lets anyone who reaches {open} publish as any device: \
                 it is allowed on loopback addresses only. Choose password, certificate or \
                 password_or_certificate (ELIOT_AUTH_MODE), or listen on 127.0.0.1"
            ));
        }
    }
    if mode == AuthMode::Certificate && tls.and_then(TlsSettings::client_ca_file).is_none() {
        return Err(
            "auth.mode = \"certificate\" needs the TLS listener with tls.client_ca_file".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `[auth]` as `config/default.toml` has it, in password mode.
    pub fn settings() -> AuthSettings {
        AuthSettings {
            mode: AuthMode::Password,
            max_failed_logins: 10,
            failed_login_window: Duration::from_secs(60),
            new_connections_per_second: 1000,
            new_connections_burst: 5000,
            device_messages_per_second: 0,
            device_bytes_per_second: 0,
            max_waiting_logins_per_address: 4,
            max_tracked_addresses: 100_000,
        }
    }
}
