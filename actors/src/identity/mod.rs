//! Device identity: who a client is, and the limits keyed by it.
//!
//! - `credentials`: the `devices` table, Argon2 hashes of generated secrets (none for a
//!   device that logs in by certificate only).
//! - `authenticator`: CONNECT → the device id it authenticated as, by secret or client
//!   certificate (of a device in `devices`) as `auth.mode` allows, off the connections'
//!   thread.
//! - `revocations`: the devices whose credentials were rotated or removed since the last
//!   look, read by the running Eliot from the log the `devices` triggers keep.
//! - `tls_listener`: the `TlsListener` actor, devices over TLS (mutual TLS where a client
//!   CA is set), its files reloaded on SIGHUP.
//! - `address_limits`: failed logins and new connections, per remote address.
//! - `rate`: a device's messages and bytes per second.
//! - `settings`: the `[auth]` and `[tls]` sections, and which modes a listener allows.

mod address_limits;
mod authenticator;
pub mod credentials;
mod rate;
mod revocations;
mod settings;
mod tls_listener;

pub use address_limits::AddressLimits;
pub use authenticator::{Authenticator, Claim};
pub use rate::DeviceRate;
pub use revocations::{Cause, RevocationLog, Revoked};
pub use settings::{check_mode, AuthMode, AuthSettings, TlsSettings};
pub use tls_listener::{
    server_config, StopTls, TlsListener, TlsListenerError, NAME as TLS_LISTENER,
};
