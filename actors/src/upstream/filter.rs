//! Topic filters subscribed at the broker, with MQTT 5 shared subscriptions:
//! `$share/<group>/<filter>` is subscribed as written, but matched without its prefix.

use std::fmt;

use crate::ingest::{TopicPattern, DEVICE_ID_PLACEHOLDER};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// As subscribed, `$share/...` included.
    subscribed: String,
    /// The shared subscription's group, if any.
    group: Option<String>,
    /// What topics are matched against.
    filter: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("empty")]
    Empty,
    #[error("`#` must be the last level, alone")]
    Hash,
    #[error("`+` must fill a whole level")]
    Plus,
    #[error(
        "a shared subscription is `$share/<group>/<filter>`, with a group free of `/`, `+` and `#`"
    )]
    Share,
    #[error("contains a NUL character")]
    Nul,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        if text.contains('\0') {
            return Err(FilterError::Nul);
        }
        let (group, filter) = match text.strip_prefix("$share/") {
            Some(rest) => {
                let (group, filter) = rest.split_once('/').ok_or(FilterError::Share)?;
                if group.is_empty() || group.contains(['+', '#']) {
                    return Err(FilterError::Share);
                }
                (Some(group.to_owned()), filter)
            }
            None => (None, text),
        };
        check_levels(filter)?;
        Ok(Filter {
            subscribed: text.to_owned(),
            group,
            filter: filter.to_owned(),
        })
    }

    /// The filter as sent in SUBSCRIBE.
    pub fn subscribed(&self) -> &str {
        &self.subscribed
    }

    pub fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// Whether a topic named by `pattern` can match this filter: if not, every message
    /// it brings would be dead-lettered for its topic.
    pub fn can_match(&self, pattern: &TopicPattern) -> bool {
        let pattern = pattern.to_string();
        let mut topic = pattern.split('/');
        for level in self.filter.split('/') {
            if level == "#" {
                return true;
            }
            let Some(t) = topic.next() else {
                return false;
            };
            // The device level stands for any id, so a literal id matches it too.
            let matches = level == "+" || t == DEVICE_ID_PLACEHOLDER || level == t;
            if !matches {
                return false;
            }
        }
        topic.next().is_none()
    }
}

fn check_levels(filter: &str) -> Result<(), FilterError> {
    if filter.is_empty() {
        return Err(FilterError::Empty);
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err(FilterError::Hash);
        }
        if level.contains('+') && *level != "+" {
            return Err(FilterError::Plus);
        }
    }
    Ok(())
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subscribed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern() -> TopicPattern {
        TopicPattern::parse("devices/{device_id}/telemetry").unwrap()
    }

    #[test]
    fn a_shared_subscription_is_matched_without_its_prefix() {
        let f = Filter::parse("$share/eliot/devices/+/telemetry").unwrap();
        assert_eq!(f.group(), Some("eliot"));
        assert_eq!(f.subscribed(), "$share/eliot/devices/+/telemetry");
        assert!(f.can_match(&pattern()));
        assert_eq!(Filter::parse("$share/eliot"), Err(FilterError::Share));
        assert_eq!(Filter::parse("$share//x"), Err(FilterError::Share));
        assert_eq!(Filter::parse("$share/a+/x"), Err(FilterError::Share));
    }

    #[test]
    fn filters_that_cannot_reach_the_telemetry_topic_are_found() {
        for good in [
            "devices/+/telemetry",
            "devices/#",
            "#",
            "+/+/telemetry",
            "devices/robot_1/telemetry",
        ] {
            assert!(Filter::parse(good).unwrap().can_match(&pattern()), "{good}");
        }
        for bad in [
            "sensors/#",
            "devices/+",
            "devices/+/telemetry/x",
            "devices/+/status",
        ] {
            assert!(!Filter::parse(bad).unwrap().can_match(&pattern()), "{bad}");
        }
    }

    #[test]
    fn wildcards_must_fill_whole_levels() {
        assert_eq!(Filter::parse("devices/#/x"), Err(FilterError::Hash));
        assert_eq!(Filter::parse("devices/a#"), Err(FilterError::Hash));
        assert_eq!(Filter::parse("devices/a+/x"), Err(FilterError::Plus));
        assert_eq!(Filter::parse(""), Err(FilterError::Empty));
        assert_eq!(Filter::parse("a\0b"), Err(FilterError::Nul));
    }
}
