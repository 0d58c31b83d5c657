//! What a device id may be. One rule for every place an id comes in (a reading's
//! `device_id`, a device added with credentials, a read API path), so that an id one of
//! them accepts is an id the others accept too.

/// `[A-Za-z0-9_.:-]{1,64}`
pub fn is_device_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}
