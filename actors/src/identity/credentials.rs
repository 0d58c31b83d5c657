//! Device credentials: the `devices` table of the store's database, holding for each
//! device only a slow, salted hash of its secret (Argon2id, PHC string format). The secret
//! itself is generated here, shown once by `eliot device add` or `rotate`, and never kept.
//! A device added with `--certificate` has no secret: it logs in by client certificate
//! only. A certificate login is let in only for a device in the table, so removing a
//! device revokes its certificate too.

use std::path::Path;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::message::{format_micros, is_device_id};
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("`{0}` is not a device id: 1 to 64 of ASCII letters, digits, `_`, `.`, `:`, `-`")]
    BadId(String),
    #[error("device `{0}` already exists (rotate its secret with `eliot device rotate`)")]
    Exists(String),
    #[error("no device `{0}`")]
    Unknown(String),
    #[error("device `{0}` logs in by certificate only: it has no secret to rotate")]
    CertificateOnly(String),
    #[error("cannot hash the secret: {0}")]
    Hash(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// How a provisioned device may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// With its secret, or with a client certificate naming it where `auth.mode` accepts
    /// certificates.
    Secret,
    /// With a client certificate naming it, only (`eliot device add --certificate`).
    CertificateOnly,
}

impl Login {
    pub fn name(self) -> &'static str {
        match self {
            Login::Secret => "secret",
            Login::CertificateOnly => "certificate",
        }
    }
}

/// One provisioned device, as `eliot device list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub device_id: String,
    pub login: Login,
    pub created_at: String,
    pub rotated_at: Option<String>,
}

/// 32 random bytes from the OS, as 64 hexadecimal characters.
fn new_secret() -> Secret {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn hash(secret: &Secret) -> Result<String, CredentialsError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CredentialsError::Hash(e.to_string()))
}

fn now() -> String {
    let micros = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
    format_micros(micros as i64)
}

fn checked(device_id: &str) -> Result<(), CredentialsError> {
    match is_device_id(device_id) {
        true => Ok(()),
        false => Err(CredentialsError::BadId(device_id.to_owned())),
    }
}

/// Creates `device_id` with a new secret, and answers the secret (shown once).
pub fn add(db: &Connection, device_id: &str) -> Result<Secret, CredentialsError> {
    checked(device_id)?;
    let secret = new_secret();
    let inserted = db.execute(
        "INSERT OR IGNORE INTO devices (device_id, secret_hash, created_at) VALUES (?1, ?2, ?3)",
        params![device_id, hash(&secret)?, now()],
    )?;
    match inserted {
        1 => Ok(secret),
        _ => Err(CredentialsError::Exists(device_id.to_owned())),
    }
}

/// Creates `device_id` without a secret: it can log in by client certificate only.
pub fn add_certificate_only(db: &Connection, device_id: &str) -> Result<(), CredentialsError> {
    checked(device_id)?;
    let inserted = db.execute(
        "INSERT OR IGNORE INTO devices (device_id, secret_hash, created_at) VALUES (?1, NULL, ?2)",
        params![device_id, now()],
    )?;
    match inserted {
        1 => Ok(()),
        _ => Err(CredentialsError::Exists(device_id.to_owned())),
    }
}

/// Gives `device_id` a new secret; the old one stops working at once, and a running
/// Eliot closes the device's connections (the `devices_rotated` trigger tells it).
pub fn rotate(db: &Connection, device_id: &str) -> Result<Secret, CredentialsError> {
    let secret = new_secret();
    let updated = db.execute(
        "UPDATE devices SET secret_hash = ?2, rotated_at = ?3 \
         WHERE device_id = ?1 AND secret_hash IS NOT NULL",
        params![device_id, hash(&secret)?, now()],
    )?;
    match (updated, login_of(db, device_id)?) {
        (1, _) => Ok(secret),
        (_, Some(Login::CertificateOnly)) => {
            Err(CredentialsError::CertificateOnly(device_id.to_owned()))
        }
        _ => Err(CredentialsError::Unknown(device_id.to_owned())),
    }
}

fn login_of(db: &Connection, device_id: &str) -> Result<Option<Login>, CredentialsError> {
    let hashed: Option<bool> = db
        .query_row(
            "SELECT secret_hash IS NOT NULL FROM devices WHERE device_id = ?1",
            [device_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(hashed.map(|hashed| match hashed {
        true => Login::Secret,
        false => Login::CertificateOnly,
    }))
}

/// Removes `device_id`: neither its secret nor a certificate naming it logs in any more,
/// and a running Eliot closes its connections (the `devices_removed` trigger tells it).
pub fn remove(db: &Connection, device_id: &str) -> Result<(), CredentialsError> {
    match db.execute("DELETE FROM devices WHERE device_id = ?1", [device_id])? {
        1 => Ok(()),
        _ => Err(CredentialsError::Unknown(device_id.to_owned())),
    }
}

pub fn list(db: &Connection) -> Result<Vec<DeviceRecord>, CredentialsError> {
    let mut stmt = db.prepare(
        "SELECT device_id, secret_hash IS NOT NULL, created_at, rotated_at \
         FROM devices ORDER BY device_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(DeviceRecord {
            device_id: r.get(0)?,
            login: match r.get(1)? {
                true => Login::Secret,
                false => Login::CertificateOnly,
            },
            created_at: r.get(2)?,
            rotated_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A stand-in hash, checked when the device is unknown, so that an unknown device costs
/// (and takes) as long to refuse as a wrong secret.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&new_secret()).expect("hashing a random secret"))
}

/// What checking a secret found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Verified,
    WrongSecret,
    /// No such device: the name may be anything a client typed, a secret included, so it
    /// is not to be logged as it is.
    UnknownDevice,
}

/// Where the revocation log was when credentials were checked: its newest row's `seq` (0
/// with none). Read in the same statement as the credentials, so in the same snapshot: a
/// revocation this check saw has a `seq` at most this, one it did not see, a greater one
/// (AUTOINCREMENT never reuses a number, even once old rows are deleted).
pub type LogPosition = i64;

/// The revocation log's position, as a scalar subquery of the credentials' read.
const LOG_POSITION: &str = "(SELECT coalesce(max(seq), 0) FROM device_revocations)";

/// Whether `secret` is `device_id`'s, and the revocation log's position as it was checked.
/// Slow on purpose (Argon2id): run it off the connections' thread. `db` is the database
/// file; it is opened read-only.
pub(crate) fn verify(
    db: &Path,
    device_id: &str,
    secret: &Secret,
) -> Result<(Verdict, LogPosition), CredentialsError> {
    let conn = read_only(db)?;
    // A device without a secret (certificate only) is checked against the decoy too.
    let (stored, position): (Option<String>, LogPosition) = conn.query_row(
        &format!("SELECT (SELECT secret_hash FROM devices WHERE device_id = ?1), {LOG_POSITION}"),
        [device_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let known = stored.is_some();
    let phc = stored.unwrap_or_else(|| decoy().to_owned());
    let parsed = PasswordHash::new(&phc).map_err(|e| CredentialsError::Hash(e.to_string()))?;
    let matches = Argon2::default()
        .verify_password(secret.expose().as_bytes(), &parsed)
        .is_ok();
    let verdict = match (known, matches) {
        (true, true) => Verdict::Verified,
        (true, false) => Verdict::WrongSecret,
        (false, _) => Verdict::UnknownDevice,
    };
    Ok((verdict, position))
}

/// Whether `device_id` is provisioned (a certificate naming it may then log in), and the
/// revocation log's position as it was looked up. `db` is the database file; it is opened
/// read-only.
pub(crate) fn exists(db: &Path, device_id: &str) -> Result<(bool, LogPosition), CredentialsError> {
    let found = read_only(db)?.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = ?1), {LOG_POSITION}"),
        [device_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(found)
}

fn read_only(db: &Path) -> Result<Connection, CredentialsError> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(std::time::Duration::from_secs(2))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("eliot.db")).unwrap();
        conn.execute_batch(crate::store::DEVICES_TABLE).unwrap();
        (dir, conn)
    }

    #[test]
    fn only_the_current_secret_verifies_and_only_a_hash_is_kept() {
        let (dir, conn) = db();
        let path = dir.path().join("eliot.db");
        let first = add(&conn, "robot_001").unwrap();
        assert_eq!(first.expose().len(), 64);
        assert_eq!(
            verify(&path, "robot_001", &first).unwrap().0,
            Verdict::Verified
        );
        let guess = Secret::new("guess");
        assert_eq!(
            verify(&path, "robot_001", &guess).unwrap().0,
            Verdict::WrongSecret
        );
        assert_eq!(
            verify(&path, "robot_002", &first).unwrap().0,
            Verdict::UnknownDevice
        );
        let stored: String = conn
            .query_row("SELECT secret_hash FROM devices", [], |r| r.get(0))
            .unwrap();
        assert!(stored.starts_with("$argon2id$") && !stored.contains(first.expose()));

        let second = rotate(&conn, "robot_001").unwrap();
        assert_eq!(
            verify(&path, "robot_001", &first).unwrap().0,
            Verdict::WrongSecret,
            "the old secret is gone"
        );
        assert_eq!(
            verify(&path, "robot_001", &second).unwrap().0,
            Verdict::Verified
        );
        remove(&conn, "robot_001").unwrap();
        assert_eq!(
            verify(&path, "robot_001", &second).unwrap().0,
            Verdict::UnknownDevice
        );
    }

    #[test]
    fn a_check_tells_the_newest_revocation_it_saw() {
        let (dir, conn) = db();
        let path = dir.path().join("eliot.db");
        let first = add(&conn, "robot_1").unwrap();
        add_certificate_only(&conn, "robot_c").unwrap();
        assert_eq!(verify(&path, "robot_1", &first).unwrap().1, 0, "none yet");
        let second = rotate(&conn, "robot_1").unwrap();
        assert_eq!(
            verify(&path, "robot_1", &second).unwrap(),
            (Verdict::Verified, 1)
        );
        assert_eq!(exists(&path, "robot_c").unwrap(), (true, 1));
        remove(&conn, "robot_c").unwrap();
        assert_eq!(exists(&path, "robot_c").unwrap(), (false, 2));
        // With the old rows deleted the position falls back, but no number is reused: the
        // next revocation is still past every check made before it.
        conn.execute("DELETE FROM device_revocations", []).unwrap();
        assert_eq!(verify(&path, "robot_1", &second).unwrap().1, 0);
        rotate(&conn, "robot_1").unwrap();
        assert_eq!(exists(&path, "robot_1").unwrap(), (true, 3));
    }

    #[test]
    fn ids_are_checked_and_each_is_added_once() {
        let (_dir, conn) = db();
        assert!(matches!(add(&conn, "a/b"), Err(CredentialsError::BadId(_))));
        add(&conn, "robot_001").unwrap();
        assert!(matches!(
            add(&conn, "robot_001"),
            Err(CredentialsError::Exists(_))
        ));
        assert!(matches!(
            rotate(&conn, "nobody"),
            Err(CredentialsError::Unknown(_))
        ));
        assert!(matches!(
            remove(&conn, "nobody"),
            Err(CredentialsError::Unknown(_))
        ));
        let listed = list(&conn).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].device_id, "robot_001");
    }

    #[test]
    fn a_certificate_only_device_exists_but_has_no_secret_to_verify_or_rotate() {
        let (dir, conn) = db();
        let path = dir.path().join("eliot.db");
        add_certificate_only(&conn, "robot_c").unwrap();
        assert!(matches!(
            add_certificate_only(&conn, "robot_c"),
            Err(CredentialsError::Exists(_))
        ));
        assert!(matches!(
            add_certificate_only(&conn, "a b"),
            Err(CredentialsError::BadId(_))
        ));
        assert!(exists(&path, "robot_c").unwrap().0);
        assert!(!exists(&path, "robot_x").unwrap().0);
        let verdict = verify(&path, "robot_c", &Secret::new("")).unwrap().0;
        assert!(
            !matches!(verdict, Verdict::Verified),
            "no secret logs it in"
        );
        assert!(matches!(
            rotate(&conn, "robot_c"),
            Err(CredentialsError::CertificateOnly(_))
        ));
        add(&conn, "robot_s").unwrap();
        let logins: Vec<Login> = list(&conn).unwrap().iter().map(|d| d.login).collect();
        assert_eq!(logins, [Login::CertificateOnly, Login::Secret]);
        remove(&conn, "robot_c").unwrap();
        assert!(!exists(&path, "robot_c").unwrap().0);
    }
}
