//! API tokens: who may call `/api/v1`, with which role.
//!
//! A token is a random string given to a client; Eliot keeps only its SHA-256 (a token
//! has 256 random bits, so a fast hash is as good as a slow one: no dictionary covers
//! it). The `[api] tokens` list holds `"read:sha256:<hex>"` strings or
//! `{ role = "admin", sha256 = "<hex>" }` tables; `ELIOT_API_TOKENS` holds plain tokens
//! (`role:token,role:token`), hashed as they are read. A presented token is hashed and its
//! digest compared with every kept digest, in constant time and without stopping at a
//! match, so the time taken says nothing about how close a guess was. Tokens are never
//! logged, printed or shown by `Debug`.

use std::fmt;

use base64::Engine;
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every `GET`.
    Read,
    /// Everything: reads and mutations (`POST`, `DELETE`).
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Result<Role, String> {
        match text {
            "read" => Ok(Role::Read),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{}` (expected read or admin)",
                other.escape_debug()
            )),
        }
    }
}

/// A kept token: its role and the SHA-256 of the token.
#[derive(Clone, PartialEq, Eq)]
pub struct HashedToken {
    pub role: Role,
    pub sha256: [u8; 32],
}

/// Shortest token accepted, in characters: `eliot api-token new` makes 43.
pub const MIN_TOKEN_LEN: usize = 16;

impl HashedToken {
    /// The kept form of a plain token.
    pub fn of(role: Role, token: &str) -> HashedToken {
        HashedToken {
            role,
            sha256: sha256(token),
        }
    }

    /// `role:sha256:<64 hex digits>`, as `[api] tokens` holds it.
    pub fn line(&self) -> String {
        let hex: String = self.sha256.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:sha256:{hex}", self.role.name())
    }

    fn parse_line(text: &str) -> Result<HashedToken, String> {
        let mut parts = text.splitn(3, ':');
        let (Some(role), Some("sha256"), Some(hex)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("expected \"read:sha256:<64 hex digits>\" or \"admin:sha256:...\"".into());
        };
        Ok(HashedToken {
            role: Role::parse(role)?,
            sha256: parse_hex(hex)?,
        })
    }
}

impl fmt::Debug for HashedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashedToken({})", self.role.name())
    }
}

fn sha256(token: &str) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

fn parse_hex(hex: &str) -> Result<[u8; 32], String> {
    let bad = || "sha256: expected 64 hex digits".to_owned();
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The two ways a kept token is written in the configuration.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Line(String),
    Table(TokenTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenTable {
    role: String,
    sha256: String,
}

impl<'de> Deserialize<'de> for HashedToken {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = match Written::deserialize(d)? {
            Written::Line(line) => HashedToken::parse_line(&line),
            Written::Table(t) => Role::parse(&t.role).and_then(|role| {
                Ok(HashedToken {
                    role,
                    sha256: parse_hex(&t.sha256)?,
                })
            }),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

impl Serialize for HashedToken {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.line())
    }
}

/// Plain tokens as `ELIOT_API_TOKENS` gives them (`role:token,role:token`), hashed. An
/// error never quotes a token.
pub fn from_env(value: &str) -> Result<Vec<HashedToken>, String> {
    let mut tokens = Vec::new();
    for (n, entry) in value.split(',').map(str::trim).enumerate() {
        let n = n + 1;
        if entry.is_empty() {
            continue;
        }
        let Some((role, token)) = entry.split_once(':') else {
            return Err(format!(
                "entry {n}: expected role:token (role read or admin)"
            ));
        };
        // Not quoted: an entry written the wrong way round would show its token.
        let role = Role::parse(role)
            .map_err(|_| format!("entry {n}: the role before `:` must be read or admin"))?;
        if token.chars().count() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
            return Err(format!(
                "entry {n}: a token must have at least {MIN_TOKEN_LEN} characters and no \
                 spaces (`eliot api-token new` makes one)"
            ));
        }
        tokens.push(HashedToken::of(role, token));
    }
    Ok(tokens)
}

/// A fresh token (256 random bits, base64url) and its kept form.
pub fn new_token(role: Role) -> Result<(String, HashedToken), String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| "the system's random source failed".to_owned())?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hashed = HashedToken::of(role, &token);
    Ok((token, hashed))
}

/// The kept tokens, as the API checks them.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    kept: Vec<HashedToken>,
}

impl Tokens {
    pub fn new(kept: Vec<HashedToken>) -> Tokens {
        Tokens { kept }
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// The role of `presented`, if it is a kept token. Every kept digest is compared, in
    /// constant time, whichever matches (the highest role wins if a token is kept twice).
    pub fn role_of(&self, presented: &str) -> Option<Role> {
        let digest = sha256(presented);
        let mut role = None;
        for kept in &self.kept {
            let matched: bool = kept.sha256.ct_eq(&digest).into();
            if matched {
                role = role.max(Some(kept.role));
            }
        }
        role
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_known_by_its_hash_only_and_gives_its_role() {
        let (admin, admin_kept) = new_token(Role::Admin).unwrap();
        assert_eq!(admin.len(), 43);
        let read = "a-read-token-of-some-length";
        let tokens = Tokens::new(vec![admin_kept.clone(), HashedToken::of(Role::Read, read)]);
        assert_eq!(tokens.role_of(&admin), Some(Role::Admin));
        assert_eq!(tokens.role_of(read), Some(Role::Read));
        assert_eq!(tokens.role_of("a-read-token-of-some-lengtH"), None);
        assert_eq!(tokens.role_of(""), None);
        assert!(!format!("{tokens:?}").contains(&admin_kept.line()[12..]));
    }

    #[test]
    fn kept_tokens_read_as_lines_or_tables_and_bad_ones_are_refused() {
        let kept = HashedToken::of(Role::Read, "0123456789abcdef");
        let line = kept.line();
        let hex = &line["read:sha256:".len()..];
        #[derive(Deserialize)]
        struct Api {
            tokens: Vec<HashedToken>,
        }
        let toml = format!(
            "tokens = [\"{line}\", {{ role = \"admin\", sha256 = \"{}\" }}]",
            hex.to_uppercase()
        );
        let api: Api = toml::from_str(&toml).unwrap();
        assert_eq!(api.tokens[0], kept);
        assert_eq!(api.tokens[1].role, Role::Admin);
        assert_eq!(api.tokens[1].sha256, kept.sha256);
        for bad in [
            "tokens = [\"root:sha256:00\"]".to_owned(),
            "tokens = [\"read:md5:00\"]".to_owned(),
            format!("tokens = [\"read:sha256:{}\"]", &hex[1..]),
            format!("tokens = [{{ role = \"read\", sha256 = \"{hex}\", extra = 1 }}]"),
        ] {
            assert!(toml::from_str::<Api>(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_tokens_are_hashed_and_bad_entries_refused_without_quoting_them() {
        let tokens = from_env("read:0123456789abcdef, admin:fedcba9876543210fedc").unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(
            tokens[1],
            HashedToken::of(Role::Admin, "fedcba9876543210fedc")
        );
        for bad in [
            "0123456789abcdef",
            "root:0123456789abcdef",
            "0123456789abcdef:read",
            "read:short",
            "read:0123456789 abcdef",
        ] {
            let error = from_env(bad).unwrap_err();
            assert!(!error.contains("0123456789"), "{error}");
            assert!(error.starts_with("entry 1:"), "{error}");
        }
    }
}
