//! The v5 CONNECT properties rumqttc reads without checking for repeats: it keeps the last
//! of a property given twice, where MQTT 5 says a repeat is a protocol error (§3.1.2.11).
//! This walks them as bytes, before rumqttc parses the packet.

/// How each CONNECT property's value is laid out.
enum Layout {
    Byte,
    TwoBytes,
    FourBytes,
    /// A two-byte length, then that many bytes (UTF-8 strings and binary data).
    Prefixed,
    /// Two prefixed strings (a user property; the only one that may repeat).
    Pair,
}

fn layout(id: u8) -> Option<Layout> {
    Some(match id {
        0x17 | 0x19 => Layout::Byte,
        0x21 | 0x22 => Layout::TwoBytes,
        0x11 | 0x27 => Layout::FourBytes,
        0x15 | 0x16 => Layout::Prefixed,
        0x26 => Layout::Pair,
        _ => return None,
    })
}

/// Checks the property block that starts at `bytes[0]` (its variable-length size first).
/// Unknown ids and truncated values are left to rumqttc, which refuses them.
pub fn check_connect_properties(bytes: &[u8]) -> Result<(), String> {
    let Some((size, header)) = varint(bytes) else {
        return Ok(());
    };
    let end = (header + size).min(bytes.len());
    let (mut at, mut seen) = (header, [false; 256]);
    while at < end {
        let id = bytes[at];
        at += 1;
        let Some(layout) = layout(id) else {
            return Ok(());
        };
        if !matches!(layout, Layout::Pair) && std::mem::replace(&mut seen[usize::from(id)], true) {
            return Err(format!("CONNECT with property {id:#04x} twice"));
        }
        let prefixed = |at: usize| -> Option<usize> {
            let len = u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]);
            Some(at + 2 + usize::from(len))
        };
        at = match layout {
            Layout::Byte => at + 1,
            Layout::TwoBytes => at + 2,
            Layout::FourBytes => at + 4,
            Layout::Prefixed => match prefixed(at) {
                Some(next) => next,
                None => return Ok(()),
            },
            Layout::Pair => match prefixed(at).and_then(prefixed) {
                Some(next) => next,
                None => return Ok(()),
            },
        };
    }
    Ok(())
}

/// A variable byte integer: its value and how many bytes it took.
fn varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, byte) in bytes.iter().take(4).enumerate() {
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_property_is_refused_but_user_properties_may_repeat() {
        // Session Expiry Interval twice.
        let twice = [10, 0x11, 0, 0, 0, 60, 0x11, 0, 0, 0, 61];
        assert!(check_connect_properties(&twice)
            .unwrap_err()
            .contains("0x11"));
        // Receive Maximum, then two user properties ("a"="b" twice).
        let fine = [
            17, 0x21, 0, 10, 0x26, 0, 1, b'a', 0, 1, b'b', 0x26, 0, 1, b'a', 0, 1, b'b',
        ];
        assert_eq!(check_connect_properties(&fine), Ok(()));
        assert_eq!(check_connect_properties(&[]), Ok(()));
        assert_eq!(check_connect_properties(&[0]), Ok(()));
    }
}
