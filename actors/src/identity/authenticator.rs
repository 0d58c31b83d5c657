//! Who a connecting client is: from its client certificate (checked by the TLS listener)
//! or its username and secret (checked here, off the connections' thread), as the auth
//! mode allows. The answer is the device id it authenticated as, or a refusal with the
//! CONNACK code that says why. A certificate proves a name; the name must also be a
//! device in `devices` (`eliot device add --certificate`), so that removing the device
//! revokes the certificate, which Eliot has no other way to do.
//!
//! Each check also tells where the revocation log was as it read `devices`
//! (`Authenticated::checked_at`): a revocation logged after that is one the check did not
//! see, and closes the login (`endpoint::revoking`); one logged before it did not let the
//! login in, and leaves it alone.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::credentials::{self, LogPosition, Verdict};
use super::hashing_turns::{HashingTurns, NoTurn};
use super::settings::{AuthMode, AuthSettings};
use super::unverified_name::UnverifiedName;
use crate::mqtt::packet::{Connect, ConnectCode};
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRefusal {
    pub code: ConnectCode,
    pub reason: String,
}

impl AuthRefusal {
    fn credentials(reason: impl Into<String>) -> Self {
        AuthRefusal {
            code: ConnectCode::BadCredentials,
            reason: reason.into(),
        }
    }

    fn not_authorized(reason: impl Into<String>) -> Self {
        AuthRefusal {
            code: ConnectCode::NotAuthorized,
            reason: reason.into(),
        }
    }
}

/// Who a client authenticated as, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub device: String,
    /// The revocation log's newest `seq` when its credentials were read (see
    /// `credentials::LogPosition`): only a later revocation revokes this login.
    pub checked_at: LogPosition,
}

/// What a connection brings to be judged by.
pub struct Claim {
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub client_id: String,
    /// The names (subject CN, then SANs) of the client certificate the TLS listener
    /// verified; empty without one.
    pub certified: Arc<[String]>,
    /// The remote address: its logins take their turns at the checks together.
    pub peer: IpAddr,
}

/// The name a client claims: its username, else its client id, else (with no client id)
/// the first its certificate names.
pub fn claimed_name<'a>(
    username: Option<&'a str>,
    client_id: &'a str,
    certified: &'a [String],
) -> &'a str {
    match (username, certified.first()) {
        (Some(username), _) => username,
        (None, Some(first)) if client_id.is_empty() => first,
        (None, _) => client_id,
    }
}

impl Claim {
    pub fn claimed(&self) -> &str {
        claimed_name(self.username.as_deref(), &self.client_id, &self.certified)
    }

    pub fn of(connect: &Connect, certified: Arc<[String]>, peer: IpAddr) -> Claim {
        Claim {
            username: connect.username.clone(),
            password: connect.password.clone(),
            client_id: connect.client_id.clone(),
            certified,
            peer,
        }
    }
}

#[derive(Clone)]
pub struct Authenticator {
    mode: AuthMode,
    /// The database holding the `devices` table.
    db: PathBuf,
    hashing: HashingTurns,
}

impl Authenticator {
    pub fn new(settings: &AuthSettings, db: PathBuf) -> Self {
        Authenticator {
            mode: settings.mode,
            db,
            hashing: HashingTurns::new(settings.max_waiting_logins_per_address),
        }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The database holding `devices` (and the revocation log).
    pub fn db(&self) -> &std::path::Path {
        &self.db
    }

    /// The device id `claim` authenticates as (`None` in mode `none`).
    pub async fn authenticate(&self, claim: Claim) -> Result<Option<Authenticated>, AuthRefusal> {
        if self.mode == AuthMode::None {
            return Ok(None);
        }
        let claimed = claim.claimed().to_owned();
        if !claim.certified.is_empty() && self.mode.accepts_certificate() {
            return match claim.certified.contains(&claimed) {
                true => self.provisioned(claimed).await,
                false => Err(AuthRefusal::not_authorized(format!(
                    "the client certificate names {:?}, not the name claimed ({})",
                    claim.certified,
                    UnverifiedName(&claimed)
                ))),
            };
        }
        match (claim.username, claim.password) {
            (Some(device), Some(secret)) if self.mode.accepts_password() => {
                self.verify(device, secret, claim.peer).await
            }
            _ => Err(AuthRefusal::not_authorized(match self.mode {
                AuthMode::Certificate => {
                    "a client certificate is required (auth.mode = certificate)"
                }
                AuthMode::Password => "a username (the device id) and password are required",
                _ => {
                    "a client certificate, or a username (the device id) and password, are required"
                }
            })),
        }
    }

    /// `device`, certified, if it is in `devices`: one indexed read, no hashing.
    async fn provisioned(&self, device: String) -> Result<Option<Authenticated>, AuthRefusal> {
        let db = self.db.clone();
        let name = device.clone();
        let found = tokio::task::spawn_blocking(move || credentials::exists(&db, &name)).await;
        match found {
            Ok(Ok((true, checked_at))) => Ok(Some(Authenticated { device, checked_at })),
            Ok(Ok((false, _))) => Err(AuthRefusal::not_authorized(format!(
                "the client certificate names `{device}`, which is not a provisioned device \
                 (eliot device add --certificate {device}), or was removed"
            ))),
            Ok(Err(e)) => Err(AuthRefusal {
                code: ConnectCode::ServerUnavailable,
                reason: format!("cannot look the device up: {e}"),
            }),
            Err(e) => Err(AuthRefusal {
                code: ConnectCode::ServerUnavailable,
                reason: format!("device look-up failed: {e}"),
            }),
        }
    }

    async fn verify(
        &self,
        device: String,
        secret: Secret,
        peer: IpAddr,
    ) -> Result<Option<Authenticated>, AuthRefusal> {
        let turn = match self.hashing.take(peer).await {
            Ok(turn) => turn,
            Err(NoTurn::Busy(waiting)) => {
                return Err(AuthRefusal {
                    code: ConnectCode::ServerUnavailable,
                    reason: format!(
                        "{waiting} logins from {peer} are waiting for their check already \
                         (auth.max_waiting_logins_per_address)"
                    ),
                })
            }
            Err(NoTurn::ShuttingDown) => {
                return Err(AuthRefusal::not_authorized("shutting down"));
            }
        };
        let db = self.db.clone();
        let name = device.clone();
        // The turn goes with the check: a login given up (its CONNACK too late) does not
        // free it while its check still takes the core.
        let checked = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            credentials::verify(&db, &name, &secret)
        })
        .await;
        match checked {
            Ok(Ok((Verdict::Verified, checked_at))) => {
                Ok(Some(Authenticated { device, checked_at }))
            }
            Ok(Ok((Verdict::WrongSecret, _))) => Err(AuthRefusal::credentials(format!(
                "wrong secret for device `{device}`"
            ))),
            Ok(Ok((Verdict::UnknownDevice, _))) => Err(AuthRefusal::credentials(format!(
                "no device of that username ({})",
                UnverifiedName(&device)
            ))),
            Ok(Err(e)) => Err(AuthRefusal {
                code: ConnectCode::ServerUnavailable,
                reason: format!("cannot check credentials: {e}"),
            }),
            Err(e) => Err(AuthRefusal {
                code: ConnectCode::ServerUnavailable,
                reason: format!("credential check failed: {e}"),
            }),
        }
    }
}
