//! JSON parsing that refuses what serde_json lets slip, so that a stored reading says what
//! its payload says:
//! - a duplicated key in an object: serde_json keeps the last, so
//!   `{"device_id":"a","device_id":"b"}` would validate as device `b` while a reader of the
//!   payload sees `a`;
//! - an integer beyond 64 bits: serde_json turns it into a float, so
//!   `18446744073709551616` would be stored as `1.8446744073709552e19`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::rules::Quoted;

/// Parses `bytes` as JSON, refusing duplicated keys at any depth and integers beyond 64
/// bits.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    if let Some(integer) = wide_integer(bytes) {
        let integer = Quoted::from(integer);
        return Err(format!("integer {integer} does not fit in 64 bits"));
    }
    serde_json::from_slice::<Strict>(bytes)
        .map(|strict| strict.0)
        .map_err(|e| e.to_string())
}

/// The first integer literal outside a string that neither `i64` nor `u64` holds (the
/// payload is scanned as JSON tokens; a malformed payload is left to the parser).
fn wide_integer(bytes: &[u8]) -> Option<&str> {
    let (mut i, mut in_string) = (0, false);
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            i += 1;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit()
                    || matches!(bytes[i], b'.' | b'e' | b'E' | b'+' | b'-'))
            {
                i += 1;
            }
            let token = std::str::from_utf8(&bytes[start..i]).ok()?;
            let integer = !token.contains(['.', 'e', 'E']);
            if integer && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
                return Some(token);
            }
            continue;
        }
        i += 1;
    }
    None
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let key = Quoted::from(key);
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicated_key_is_refused_at_any_depth() {
        let top = parse(br#"{"device_id":"a","device_id":"b"}"#).unwrap_err();
        assert!(
            top.to_string().contains("duplicate key `device_id`"),
            "{top}"
        );
        let deep = parse(br#"{"data":[{"x":1,"x":2}]}"#).unwrap_err();
        assert!(deep.to_string().contains("duplicate key `x`"), "{deep}");
    }

    #[test]
    fn an_integer_beyond_64_bits_is_refused_not_rounded() {
        let error = parse(br#"{"n":18446744073709551616}"#).unwrap_err();
        assert!(
            error.contains("integer 18446744073709551616 does not fit"),
            "{error}"
        );
        assert!(parse(br#"{"n":-9223372036854775809}"#).is_err());
        // In a string, or as a float, it is what it says.
        assert!(
            parse(br#"{"n":"18446744073709551616","m":1.8e19,"k":-9223372036854775808}"#).is_ok()
        );
        assert!(parse(br#"{"s":"a \" 99999999999999999999"}"#).is_ok());
    }

    #[test]
    fn everything_else_parses_as_serde_json_does() {
        let text = br#"{"a":[1,-2,3.5,true,null,"s"],"b":{"c":18446744073709551615}}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
        assert!(parse(b"{").is_err());
    }
}
