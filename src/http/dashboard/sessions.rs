//! The dashboard's sessions: made by a login with an API token, kept in memory only (a
//! restart logs everyone out), each with its role and its CSRF token, ending after
//! `LIFETIME` or at logout. Bounded per token and in all: a token holds `PER_TOKEN`
//! sessions at most (its own oldest goes first), and past `MAX_SESSIONS` the expired go,
//! then the oldest of the token holding the most. So whoever holds a token can end only
//! its own sessions by logging in again and again, never another token's (an admin's).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

use crate::http::v1::tokens::Role;

/// Sessions kept at most.
pub const MAX_SESSIONS: usize = 1_000;
/// Sessions one token holds at most.
pub const PER_TOKEN: usize = 100;
/// How long a session lasts after its login.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3_600);
/// The cookie carrying a session's id.
pub const COOKIE: &str = "eliot_session";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub role: Role,
    /// Which token logged it in (a digest of it).
    holder: [u8; 8],
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

/// The oldest session of `holder`, if it has one.
fn oldest_of(by_id: &HashMap<String, Session>, holder: [u8; 8]) -> Option<String> {
    by_id
        .iter()
        .filter(|(_, s)| s.holder == holder)
        .min_by_key(|(_, s)| s.expires)
        .map(|(id, _)| id.clone())
}

impl Sessions {
    /// A new session of `role`, logged in with `token`: its id (the cookie's value).
    pub fn open(&self, role: Role, token: &str) -> String {
        let id = random_hex();
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut holder = [0u8; 8];
        holder.copy_from_slice(&digest.as_ref()[..8]);
        let session = Session {
            role,
            holder,
            csrf: random_hex(),
            expires: Instant::now() + LIFETIME,
        };
        let mut by_id = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        let held = by_id.values().filter(|s| s.holder == holder).count();
        if held >= PER_TOKEN {
            if let Some(oldest) = oldest_of(&by_id, holder) {
                by_id.remove(&oldest);
            }
        }
        if by_id.len() >= MAX_SESSIONS {
            let now = Instant::now();
            by_id.retain(|_, s| s.expires > now);
        }
        if by_id.len() >= MAX_SESSIONS {
            let mut held: HashMap<[u8; 8], usize> = HashMap::new();
            for s in by_id.values() {
                *held.entry(s.holder).or_default() += 1;
            }
            let most = held.into_iter().max_by_key(|(_, n)| *n).map(|(h, _)| h);
            if let Some(oldest) = most.and_then(|most| oldest_of(&by_id, most)) {
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
        let id = sessions.open(Role::Read, "read-token");
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
    fn a_token_holds_its_own_bounded_sessions_and_ends_no_other_tokens() {
        let sessions = Sessions::default();
        let admin = sessions.open(Role::Admin, "admin-token");
        let first_read = sessions.open(Role::Read, "read-token");
        for _ in 0..MAX_SESSIONS * 2 {
            sessions.open(Role::Read, "read-token");
        }
        assert_eq!(sessions.len(), 1 + PER_TOKEN);
        assert!(sessions.get(&admin).is_some(), "the admin's session stays");
        assert!(
            sessions.get(&first_read).is_none(),
            "the token's oldest went"
        );
    }

    #[test]
    fn past_the_bound_in_all_the_token_holding_most_gives_up_its_oldest() {
        let sessions = Sessions::default();
        let admin = sessions.open(Role::Admin, "admin-token");
        let tokens: Vec<String> = (0..MAX_SESSIONS / PER_TOKEN + 1)
            .map(|i| format!("read-token-{i}"))
            .collect();
        for token in &tokens {
            for _ in 0..PER_TOKEN {
                sessions.open(Role::Read, token);
            }
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(
            sessions.get(&admin).is_some(),
            "the admin's one session stays"
        );
    }
}
