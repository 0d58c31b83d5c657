//! Opaque cursors: where the next page starts, with the filters of the listing that gave
//! it, signed so that a client can neither forge a position nor carry a cursor to other
//! filters.
//!
//! A cursor is base64url of `JSON || HMAC-SHA-256(JSON)`, the key drawn at random when
//! the process starts: a cursor is good for the Eliot that issued it, until it stops
//! (after a restart a client starts its listing again; nothing is kept for it). Garbage,
//! an altered cursor, one from another listing or filters: 400 `invalid_cursor`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::ApiError;

/// Longest cursor accepted, in characters (those Eliot issues are far shorter).
pub const MAX_CURSOR_LEN: usize = 2048;
const TAG_LEN: usize = 32;

/// The key cursors are signed with; one per process.
#[derive(Clone)]
pub struct CursorKey(hmac::Key);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    /// Which listing issued it.
    listing: String,
    at: T,
}

impl CursorKey {
    pub fn random() -> CursorKey {
        let rng = ring::rand::SystemRandom::new();
        CursorKey(hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system's random source"))
    }

    /// A cursor for `listing` holding `at` (a position and the filters it belongs to).
    pub fn seal<T: Serialize>(&self, listing: &str, at: T) -> String {
        let envelope = Envelope {
            listing: listing.to_owned(),
            at,
        };
        let mut bytes = serde_json::to_vec(&envelope).expect("a cursor serialises");
        let tag = hmac::sign(&self.0, &bytes);
        bytes.extend_from_slice(tag.as_ref());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// What a cursor of `listing` holds, if this process issued it.
    pub fn open<T: DeserializeOwned>(&self, listing: &str, cursor: &str) -> Result<T, ApiError> {
        let refused = || {
            ApiError::invalid_cursor(
                "not a cursor of this listing: a cursor is only good as it was given, with \
                 the filters it was given with, until Eliot restarts; start again without one",
            )
        };
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(refused());
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| refused())?;
        if bytes.len() <= TAG_LEN {
            return Err(refused());
        }
        let (json, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        hmac::verify(&self.0, json, tag).map_err(|_| refused())?;
        let envelope: Envelope<T> = serde_json::from_slice(json).map_err(|_| refused())?;
        if envelope.listing != listing {
            return Err(refused());
        }
        Ok(envelope.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct At {
        id: i64,
        filter: Option<String>,
    }

    #[test]
    fn a_cursor_opens_only_as_issued_by_this_key_for_its_listing() {
        let key = CursorKey::random();
        let at = At {
            id: 42,
            filter: Some("gps".into()),
        };
        let cursor = key.seal("dead_letters", &at);
        assert_eq!(key.open::<At>("dead_letters", &cursor).unwrap(), at);
        assert!(key.open::<At>("readings", &cursor).is_err());
        assert!(CursorKey::random()
            .open::<At>("dead_letters", &cursor)
            .is_err());
        // Any one character changed: refused.
        for i in 0..cursor.len() {
            let mut altered = cursor.clone().into_bytes();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            let error = key.open::<At>("dead_letters", &altered).unwrap_err();
            assert_eq!(error.code, "invalid_cursor");
        }
        for garbage in ["", "x", "!!!", &"A".repeat(MAX_CURSOR_LEN + 1)] {
            assert!(key.open::<At>("dead_letters", garbage).is_err());
        }
    }
}
