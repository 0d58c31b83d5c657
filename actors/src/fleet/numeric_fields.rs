//! The numeric fields of a reading's `data`, walked in place: every number, with its path
//! (keys joined by dots), straight from the JSON text, without building a `Value` or
//! allocating per field (a key is borrowed from the text unless it has escapes). Anomaly
//! detection walks every reading's data this way, on the fleet's shards.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Calls `each(path, value)` for every number in the JSON object `data`, in the text's
/// order, nested objects included down to `max_depth` keys; arrays, and paths longer than
/// `max_path` bytes, are left out. False if `data` is not a JSON object (nothing called,
/// or only some of it, if it breaks part way).
pub fn numeric_fields(
    data: &str,
    max_depth: usize,
    max_path: usize,
    each: &mut dyn FnMut(&str, f64),
) -> bool {
    let mut path = String::new();
    let mut walker = serde_json::Deserializer::from_str(data);
    let walk = Walk {
        path: &mut path,
        depth: 0,
        max_depth,
        max_path,
        each,
    };
    walker.deserialize_map(walk).is_ok()
}

/// Where the walk is: the path so far and its depth (0 at `data` itself).
struct Walk<'p, 'f> {
    path: &'p mut String,
    depth: usize,
    max_depth: usize,
    max_path: usize,
    each: &'f mut dyn FnMut(&str, f64),
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let len = self.path.len();
            if len > 0 {
                self.path.push('.');
            }
            self.path.push_str(&key);
            if self.path.len() <= self.max_path && self.depth < self.max_depth {
                map.next_value_seed(Walk {
                    path: &mut *self.path,
                    depth: self.depth + 1,
                    max_depth: self.max_depth,
                    max_path: self.max_path,
                    each: &mut *self.each,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            self.path.truncate(len);
        }
        Ok(())
    }

    // A value: a number is a field; an object is walked; anything else is passed over.
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        (self.each)(self.path, v);
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, value: D) -> Result<(), D::Error> {
        value.deserialize_any(self)
    }
}

/// An object's key: borrowed from the text, or owned when it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(data: &str, max_depth: usize, max_path: usize) -> (bool, Vec<(String, f64)>) {
        let mut found = Vec::new();
        let ok = numeric_fields(data, max_depth, max_path, &mut |path, v| {
            found.push((path.to_owned(), v))
        });
        (ok, found)
    }

    #[test]
    fn numbers_come_with_their_paths_in_the_texts_order() {
        let data = r#"{"speed":3,"gps":{"lat":1.5,"lon":-2,"fix":"3d","ok":true,"n":null},
            "tags":[1,{"x":2}],"k\"ey":7,"big":18446744073709551615}"#;
        let (ok, found) = fields(data, 4, 64);
        assert!(ok);
        let expected = [
            ("speed", 3.0),
            ("gps.lat", 1.5),
            ("gps.lon", -2.0),
            ("k\"ey", 7.0),
            ("big", 18446744073709551615.0),
        ];
        let expected: Vec<(String, f64)> =
            expected.iter().map(|(p, v)| (p.to_string(), *v)).collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn depth_and_path_length_are_bounded() {
        let data = r#"{"a":{"b":{"c":{"d":1,"e":{"f":2}}}},"long_key":3}"#;
        let (_, found) = fields(data, 4, 64);
        assert_eq!(
            found,
            [("a.b.c.d".to_string(), 1.0), ("long_key".to_string(), 3.0)]
        );
        let (_, found) = fields(data, 4, 7);
        assert_eq!(
            found,
            [("a.b.c.d".to_string(), 1.0)],
            "`long_key` is 8 bytes"
        );
        let (_, found) = fields(data, 1, 64);
        assert_eq!(found, [("long_key".to_string(), 3.0)]);
    }

    #[test]
    fn what_is_not_an_object_gives_nothing() {
        for bad in ["[1,2]", "3", "\"x\"", "not json", ""] {
            let (ok, found) = fields(bad, 4, 64);
            assert!(!ok && found.is_empty(), "{bad}");
        }
    }
}
