//! What each settings section checks about itself, beyond its types: ranges and the
//! relations between its keys. A section reports problems by key; the configuration
//! loader prefixes the section's name and says which layer the value came from.

use std::fmt::Display;
use std::time::Duration;

/// One problem with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key, e.g. `mqtt.max_in_flight`.
    pub key: String,
    pub message: String,
}

/// The problems found so far, with the dotted prefix of the section being checked.
#[derive(Debug, Default)]
pub struct Problems {
    prefix: String,
    found: Vec<Problem>,
}

impl Problems {
    pub fn new() -> Self {
        Problems::default()
    }

    /// Checks the section `name` (e.g. `breakers.store`) with `check`.
    pub fn section(&mut self, name: &str, check: impl FnOnce(&mut Problems)) {
        let inner = format!("{}{name}.", self.prefix);
        let outer = std::mem::replace(&mut self.prefix, inner);
        check(self);
        self.prefix = outer;
    }

    pub fn add(&mut self, key: &str, message: impl Into<String>) {
        self.found.push(Problem {
            key: format!("{}{key}", self.prefix),
            message: message.into(),
        });
    }

    pub fn check(&mut self, ok: bool, key: &str, message: &str) {
        if !ok {
            self.add(key, message);
        }
    }

    pub fn at_least<T: PartialOrd + Display>(&mut self, key: &str, value: T, min: T) {
        if value < min {
            self.add(key, format!("expected at least {min}"));
        }
    }

    /// Windows, intervals and timeouts: zero would mean "never" or "spin".
    pub fn positive(&mut self, key: &str, value: Duration) {
        if value.is_zero() {
            self.add(key, "expected a duration above zero");
        }
    }

    /// `low ≤ high`, e.g. an initial backoff and its cap.
    pub fn ordered<T: PartialOrd>(&mut self, low: (&str, T), high: (&str, T)) {
        if low.1 > high.1 {
            let high_key = format!("{}{}", self.prefix, high.0);
            self.add(low.0, format!("expected at most {high_key}"));
        }
    }

    /// Problems found so far (a section may check whether it added any).
    pub fn len(&self) -> usize {
        self.found.len()
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    pub fn into_vec(self) -> Vec<Problem> {
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_carry_the_section_prefix() {
        let mut p = Problems::new();
        p.section("breakers.device", |p| {
            p.positive("window", Duration::ZERO);
            p.ordered(
                ("cooldown", Duration::from_secs(2)),
                ("cooldown_max", Duration::from_secs(1)),
            );
            p.at_least("max_rejections", 1, 1);
        });
        p.at_least("top", 0, 1);
        let keys: Vec<String> = p
            .into_vec()
            .into_iter()
            .map(|p| p.key + ": " + &p.message)
            .collect();
        assert_eq!(
            keys,
            [
                "breakers.device.window: expected a duration above zero",
                "breakers.device.cooldown: expected at most breakers.device.cooldown_max",
                "top: expected at least 1",
            ]
        );
    }
}
