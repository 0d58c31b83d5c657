//! Integers in JSON bodies, also when written with a zero fraction (`100.0`): JSON Schema
//! calls any number with an integral value an integer, and so do the clients generated
//! from the OpenAPI document. Any other fraction, or a value out of the field's range, is
//! refused with a message that says so. For `#[serde(deserialize_with = ...)]`.

use serde::de::Error;
use serde::{Deserialize, Deserializer};

/// A required integer.
pub fn required<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    whole(serde_json::Number::deserialize(deserializer)?)
}

/// An integer that may be absent or `null` (with `#[serde(default)]`).
pub fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    Option::<serde_json::Number>::deserialize(deserializer)?
        .map(whole)
        .transpose()
}

fn whole<E: Error, T: TryFrom<i64>>(number: serde_json::Number) -> Result<T, E> {
    let whole = match (number.as_i64(), number.as_f64()) {
        (Some(n), _) => n,
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
        _ => return Err(E::custom(format!("{number}: expected an integer"))),
    };
    T::try_from(whole).map_err(|_| E::custom(format!("{number}: out of range")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::required")]
        count: u32,
        #[serde(default, deserialize_with = "super::optional")]
        limit: Option<u32>,
    }

    fn read(body: &str) -> Result<(u32, Option<u32>), String> {
        serde_json::from_str::<Body>(body)
            .map(|b| (b.count, b.limit))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn an_integer_may_be_written_with_a_zero_fraction_and_nothing_else_passes() {
        assert_eq!(read(r#"{"count": 1, "limit": 25}"#), Ok((1, Some(25))));
        assert_eq!(
            read(r#"{"count": 3506.0, "limit": 32664.0}"#),
            Ok((3506, Some(32664)))
        );
        assert_eq!(read(r#"{"count": 1, "limit": null}"#), Ok((1, None)));
        assert_eq!(read(r#"{"count": 1}"#), Ok((1, None)));
        for (body, says) in [
            (r#"{"count": 1, "limit": 2.5}"#, "expected an integer"),
            (r#"{"count": 2.5}"#, "expected an integer"),
            (r#"{"count": 1, "limit": -1}"#, "out of range"),
            (r#"{"count": 5000000000}"#, "out of range"),
            (r#"{"count": 1e300}"#, "expected an integer"),
            (r#"{"count": null}"#, "invalid type"),
            (r#"{"count": "7"}"#, "invalid type"),
            (r#"{}"#, "missing field `count`"),
        ] {
            let error = read(body).unwrap_err();
            assert!(error.contains(says), "{body}: {error}");
        }
    }
}
