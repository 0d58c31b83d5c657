//! Device identity: who a client is, and the limits keyed by it.
//!
//! - `credentials`: the `devices` table, Argon2 hashes of generated secrets (none for a
//!   device that logs in by certificate only).
//! - `authenticator`: CONNECT → the device id it authenticated as, by secret or client
//!   certificate (of a device in `devices`) as `auth.mode` allows, hashing off the
//!   connections' thread.
//! - `provisioning`: `credentials`' changes for async callers (the HTTP API), hashing on
//!   the blocking pool, one at a time.
//! - `hashing_turns`: turns at the secrets' checks, shared fairly between addresses.
//! - `revocations`: the devices whose credentials were rotated or removed since the last
//!   look, read by the running Eliot from the log the `devices` triggers keep.
//! - `server_tls`: the devices' TLS server configuration from the `[tls]` files (mutual
//!   TLS where a client CA is set), and the names a client certificate gives its holder.
//!   The `TlsListener` that uses them is the endpoint's.
//! - `address_limits`: new connections, per remote address.
//! - `login_attempts`: failed logins, per remote address and claimed device.
//! - `rate`: a device's messages and bytes per second.
//! - `unverified_name`: a claimed name no check confirmed, as a log line shows it.
//! - `settings`: the `[auth]` and `[tls]` sections, and which modes a listener allows.

mod address_limits;
mod authenticator;
pub mod credentials;
mod hashing_turns;
mod login_attempts;
mod provisioning;
mod rate;
mod revocations;
mod server_tls;
mod settings;
mod unverified_name;

pub use address_limits::AddressLimits;
pub use authenticator::{claimed_name, Authenticated, Authenticator, Claim};
pub use login_attempts::{Attempt, LoginAttempts};
pub use provisioning::{Provisioning, ProvisioningError};
pub use rate::DeviceRate;
pub use revocations::{Cause, Revocation, RevocationLog, Revoked};
pub use server_tls::{certificate_names, server_config, ServerTlsError};
pub use settings::{check_mode, AuthMode, AuthSettings, TlsSettings};
