//! The `[alerts]` section: the rules (`[[alerts.rules]]`), the webhook notified of each
//! firing and resolution, and the bounds on what waits to be written or delivered.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rules::{RuleConfig, RuleSet};
use crate::secret::Secret;
use crate::settings::Problems;
use crate::webhook::WebhookUrl;

/// The `[alerts]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// False: no rule is evaluated. Rules live in the fleet: with `fleet.enabled = false`
    /// none is either.
    pub enabled: bool,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    pub webhook: WebhookSettings,
    /// Alert changes a shard may hold before they are written (those no reading caused:
    /// timers, presence, dead letters, scores); past it the oldest are dropped (counted).
    pub max_pending: usize,
}

/// Where notifications go: a JSON POST per event, signed, retried, in order.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// `http://host:port/path`; empty: no webhook (events are still recorded and logged).
    pub url: String,
    /// Signs each body: header `X-Eliot-Signature: sha256=<hex HMAC-SHA256 of
    /// "<timestamp>.<body>">`, with `X-Eliot-Timestamp`. Empty: unsigned.
    pub secret: Secret,
    /// One attempt's bound, from connecting to the answer's status line.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts of one notification before it is kept as failed (retryable through the
    /// API); the ones after it wait meanwhile, so the order holds.
    pub max_attempts: u32,
    /// The wait after a failed attempt, doubling up to `backoff_max`.
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
}

impl AlertSettings {
    pub fn validate(&self, problems: &mut Problems) {
        RuleSet::compile(&self.rules, problems);
        problems.at_least("max_pending", self.max_pending, 1);
        problems.section("webhook", |p| self.webhook.validate(p));
    }

    /// The configured rules and `more` (the API's) together, compiled; a rule of `more`
    /// that does not compile, or whose name a configured rule has, is left out (and named
    /// in the answer).
    pub fn rule_set(&self, more: &[RuleConfig]) -> (RuleSet, Vec<String>) {
        let mut all = self.rules.clone();
        let mut left_out = Vec::new();
        for rule in more {
            let mut problems = Problems::new();
            let clash = all.iter().any(|r| r.name == rule.name);
            RuleSet::compile(std::slice::from_ref(rule), &mut problems);
            if clash || !problems.is_empty() {
                left_out.push(rule.name.clone());
            } else {
                all.push(rule.clone());
            }
        }
        (RuleSet::compile(&all, &mut Problems::new()), left_out)
    }
}

impl WebhookSettings {
    fn validate(&self, problems: &mut Problems) {
        if !self.url.is_empty() {
            if let Err(why) = WebhookUrl::parse(&self.url) {
                problems.add("url", why);
            }
        }
        problems.positive("timeout", self.timeout);
        problems.at_least("max_attempts", self.max_attempts, 1);
        problems.positive("backoff", self.backoff);
        problems.ordered(("backoff", self.backoff), ("backoff_max", self.backoff_max));
    }
}

#[cfg(test)]
impl AlertSettings {
    pub fn for_tests(rules: Vec<RuleConfig>) -> AlertSettings {
        AlertSettings {
            enabled: true,
            rules,
            webhook: WebhookSettings {
                url: String::new(),
                secret: Secret::default(),
                timeout: Duration::from_secs(5),
                max_attempts: 10,
                backoff: Duration::from_millis(100),
                backoff_max: Duration::from_secs(1),
            },
            max_pending: 1000,
        }
    }
}
