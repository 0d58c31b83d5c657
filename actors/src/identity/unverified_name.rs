//! How a name a client claimed, and no check confirmed, appears in a log line: as the first
//! 8 hex digits of its BLAKE2b-512 digest, never as it is. A secret typed into the username
//! field is then not written down, and an operator can still match a name they suspect:
//! `printf %s robot_9 | b2sum | cut -c1-8`.

use std::fmt;

use blake2::{Blake2b512, Digest};

pub struct UnverifiedName<'a>(pub &'a str);

impl fmt::Display for UnverifiedName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest = Blake2b512::digest(self.0.as_bytes());
        f.write_str("b2:")?;
        digest[..4].iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_shows_as_its_digest_prefix_only() {
        // `printf %s robot_9 | b2sum | cut -c1-8`
        assert_eq!(UnverifiedName("robot_9").to_string(), "b2:05058bd5");
        assert_ne!(UnverifiedName("robot_8").to_string(), "b2:05058bd5");
    }
}
