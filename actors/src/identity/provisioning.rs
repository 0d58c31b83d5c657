//! `Provisioning`: `credentials` (add, rotate, remove) for async callers, the HTTP API's
//! handlers. Argon2 is slow on purpose (tens of milliseconds, ~19 MiB each), so every call
//! runs on the blocking pool, one at a time (a burst of calls waits its turn rather than
//! taking the memory of many hashes at once, or every core from the logins' checks).
//!
//! Each call opens an administration connection to the database, as `eliot device` does,
//! and changes `devices` there, not through the store writer: the writer batches what
//! devices send, and a change of credentials must not wait behind a backlog of readings,
//! nor hold a batch up while it hashes. The `devices` triggers log every rotation and
//! removal, and the running Eliot closes the connections they revoke (`revoking.rs`)
//! wherever devices authenticate; with `auth.mode = none` the caller closes them.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::credentials::{self, CredentialsError, Login};
use crate::secret::Secret;
use crate::store::{Store, StoreSettings};

#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The database could not be opened.
    #[error("{0}")]
    Store(String),
    #[error("the provisioning task ended without an answer: {0}")]
    Lost(String),
}

/// Changes the provisioned devices from async code. Cheap to clone: clones share the turn.
#[derive(Clone)]
pub struct Provisioning {
    store: StoreSettings,
    /// One change at a time.
    turn: Arc<Semaphore>,
}

impl Provisioning {
    /// On the database of `store` (which the running Eliot has created).
    pub fn new(store: &StoreSettings) -> Self {
        Provisioning {
            store: store.clone(),
            turn: Arc::new(Semaphore::new(1)),
        }
    }

    /// Creates `device_id`; answers its secret (shown once), or `None` for a device that
    /// logs in by certificate only.
    pub async fn add(
        &self,
        device_id: String,
        login: Login,
    ) -> Result<Option<Secret>, ProvisioningError> {
        self.run(move |db| match login {
            Login::Secret => credentials::add(db, &device_id).map(Some),
            Login::CertificateOnly => {
                credentials::add_certificate_only(db, &device_id).map(|()| None)
            }
        })
        .await
    }

    /// Gives `device_id` a new secret (shown once); the old one stops working at once.
    pub async fn rotate(&self, device_id: String) -> Result<Secret, ProvisioningError> {
        self.run(move |db| credentials::rotate(db, &device_id))
            .await
    }

    /// Removes `device_id`: neither its secret nor a certificate naming it logs in any more.
    pub async fn remove(&self, device_id: String) -> Result<(), ProvisioningError> {
        self.run(move |db| credentials::remove(db, &device_id))
            .await
    }

    /// Runs `change` on an administration connection, on the blocking pool, in turn.
    async fn run<T: Send + 'static>(
        &self,
        change: impl FnOnce(&rusqlite::Connection) -> Result<T, CredentialsError> + Send + 'static,
    ) -> Result<T, ProvisioningError> {
        let _turn = self.turn.acquire().await.expect("the turn is never closed");
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let db =
                Store::admin(&store, false).map_err(|e| ProvisioningError::Store(e.to_string()))?;
            Ok(change(&db)?)
        })
        .await
        .map_err(|e| ProvisioningError::Lost(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::credentials::{verify, Verdict};

    #[tokio::test]
    async fn devices_are_added_rotated_and_removed_from_async_code() {
        let dir = tempfile::tempdir().unwrap();
        let settings = StoreSettings::for_tests(dir.path());
        drop(Store::open(&settings).unwrap());
        let db = settings.db_path();
        let provisioning = Provisioning::new(&settings);
        let first = provisioning
            .add("robot_1".into(), Login::Secret)
            .await
            .unwrap()
            .expect("a secret");
        assert_eq!(verify(&db, "robot_1", &first).unwrap().0, Verdict::Verified);
        let again = provisioning.add("robot_1".into(), Login::Secret).await;
        assert!(matches!(
            again,
            Err(ProvisioningError::Credentials(CredentialsError::Exists(_)))
        ));
        let cert = provisioning
            .add("robot_c".into(), Login::CertificateOnly)
            .await
            .unwrap();
        assert!(cert.is_none());
        // Two at once: each its own secret.
        let (a, b) = tokio::join!(
            provisioning.rotate("robot_1".into()),
            provisioning.rotate("robot_1".into())
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_ne!(a.expose(), b.expose());
        let verified = [&first, &a, &b].map(|s| verify(&db, "robot_1", s).unwrap().0);
        assert_eq!(
            verified.iter().filter(|v| **v == Verdict::Verified).count(),
            1,
            "only the last secret works"
        );
        provisioning.remove("robot_1".into()).await.unwrap();
        assert!(matches!(
            provisioning.remove("robot_1".into()).await,
            Err(ProvisioningError::Credentials(CredentialsError::Unknown(_)))
        ));
        assert!(matches!(
            provisioning.rotate("robot_c".into()).await,
            Err(ProvisioningError::Credentials(
                CredentialsError::CertificateOnly(_)
            ))
        ));
    }

    #[tokio::test]
    async fn a_missing_database_is_an_error_not_a_new_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let settings = StoreSettings::for_tests(&dir.path().join("nowhere"));
        let provisioning = Provisioning::new(&settings);
        let added = provisioning.add("robot_1".into(), Login::Secret).await;
        assert!(
            matches!(added, Err(ProvisioningError::Store(_))),
            "{added:?}"
        );
        assert!(!settings.db_path().exists());
    }
}
