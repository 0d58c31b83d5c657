//! The dashboard's sessions: made by a login with an API token, kept in memory only (a
//! restart logs everyone out), each with its role and its CSRF token, ending after
//! `LIFETIME` or at logout. Bounded: past `MAX_SESSIONS` the expired go, then the oldest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

use crate::http::v1::tokens::Role;

/// Sessions kept at most.
pub const MAX_SESSIONS: usize = 1_000;
/// How long a session lasts after its login.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3_600);
/// The cookie carrying a session's id.
pub const COOKIE: &str = "eliot_session";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub role: Role,
    /// Sent back with every form; a mutation without it is refused.
    pub csrf: String,
    expires: Instant,
}

#[derive(Clone, Default)]
pub struct Sessions {
    by_id: Arc<Mutex<HashMap<String, Session>>>,
}

/// 32 random bytes, as hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source answers");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    /// A new session of `role`: its id (the cookie's value).
    pub fn open(&self, role: Role) -> String {
        let id = random_hex();
        let session = Session {
            role,
            csrf: random_hex(),
            expires: Instant::now() + LIFETIME,
        };
        let mut by_id = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        if by_id.len() >= MAX_SESSIONS {
            let now = Instant::now();
            by_id.retain(|_, s| s.expires > now);
        }
        if by_id.len() >= MAX_SESSIONS {
            let oldest = by_id
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                by_id.remove(&oldest);
            }
        }
        by_id.insert(id.clone(), session);
        id
    }

    /// The session of `id`, if it is one and has not ended.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut by_id = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        match by_id.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                by_id.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, id: &str) {
        self.by_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_id.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_until_closed() {
        let sessions = Sessions::default();
        let id = sessions.open(Role::Read);
        assert_eq!(id.len(), 64);
        let session = sessions.get(&id).unwrap();
        assert_eq!(session.role, Role::Read);
        assert_eq!(session.csrf.len(), 64);
        assert_ne!(session.csrf, id);
        assert!(sessions.get("not-an-id").is_none());
        sessions.close(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn sessions_are_bounded_the_oldest_going_first() {
        let sessions = Sessions::default();
        let first = sessions.open(Role::Admin);
        for _ in 0..MAX_SESSIONS {
            sessions.open(Role::Read);
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(sessions.get(&first).is_none(), "the oldest went");
    }
}
