//! The telemetry topic pattern, e.g. `devices/{device_id}/telemetry`.

use std::fmt;

/// The placeholder that stands for the device id in a topic pattern.
pub const DEVICE_ID_PLACEHOLDER: &str = "{device_id}";

/// A topic pattern with exactly one `{device_id}` level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern {
    /// Everything before the placeholder, e.g. `devices/`.
    prefix: String,
    /// Everything after it, e.g. `/telemetry`.
    suffix: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopicPatternError {
    #[error("must contain `{{device_id}}` exactly once, as a whole topic level (e.g. `devices/{{device_id}}/telemetry`)")]
    Placeholder,
    #[error("must not contain the MQTT wildcards `+` or `#`")]
    Wildcard,
}

impl TopicPattern {
    pub fn parse(pattern: &str) -> Result<Self, TopicPatternError> {
        if pattern.contains(['+', '#']) {
            return Err(TopicPatternError::Wildcard);
        }
        let mut parts = pattern.split(DEVICE_ID_PLACEHOLDER);
        let (Some(prefix), Some(suffix), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(TopicPatternError::Placeholder);
        };
        let whole_level = (prefix.is_empty() || prefix.ends_with('/'))
            && (suffix.is_empty() || suffix.starts_with('/'));
        if !whole_level {
            return Err(TopicPatternError::Placeholder);
        }
        Ok(TopicPattern {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }

    /// The device id this topic names, if the topic matches the pattern.
    pub fn device_id<'t>(&self, topic: &'t str) -> Option<&'t str> {
        let id = topic
            .strip_prefix(&self.prefix)?
            .strip_suffix(&self.suffix)?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.prefix, DEVICE_ID_PLACEHOLDER, self.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pattern_extracts_the_device_id() {
        let p = TopicPattern::parse("devices/{device_id}/telemetry").unwrap();
        assert_eq!(
            p.device_id("devices/robot_001/telemetry"),
            Some("robot_001")
        );
        assert_eq!(p.device_id("devices//telemetry"), None);
        assert_eq!(p.device_id("devices/a/b/telemetry"), None);
        assert_eq!(p.device_id("devices/robot_001/status"), None);
        assert_eq!(p.to_string(), "devices/{device_id}/telemetry");
    }

    #[test]
    fn placeholder_must_be_a_whole_level_once() {
        assert!(TopicPattern::parse("devices/telemetry").is_err());
        assert!(TopicPattern::parse("d/{device_id}/{device_id}").is_err());
        assert!(TopicPattern::parse("d/x{device_id}/t").is_err());
        assert!(TopicPattern::parse("d/+/{device_id}").is_err());
        assert!(TopicPattern::parse("{device_id}").is_ok());
    }
}
