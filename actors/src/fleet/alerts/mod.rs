//! Alerting, where the device's state lives: each (rule, device) alert is owned by the
//! device's shard, changed one message at a time, so two connections crossing a threshold
//! at the same instant raise it once.
//!
//! - `rules.rs`: rules as configured, checked, and the set a shard evaluates;
//!   `settings.rs`: the `[alerts]` section.
//! - `machine.rs`: one alert's state machine (inactive → pending → firing → resolved).
//! - `silences.rs`: the silences in force, shared by the shards and the API.
//! - `device.rs`: a device's alerts (`DeviceAlerts`) and the rows a change writes.
//! - `evaluate.rs`: what the shard does: threshold rules judged on each reading *before*
//!   its commit (the change travels with the reading into the store's transaction, and is
//!   undone if the reading was not stored as judged); absence on presence changes; dead
//!   letters and anomaly scores as the shard hears them; the rules' `for` by timers.

mod device;
mod evaluate;
mod machine;
mod rules;
mod settings;
mod silences;

use std::sync::Arc;

pub use device::DeviceAlerts;
pub use evaluate::{Acked, AlertTimers, Evaluate, Judged, ToJudge, Undo, Unsettled};
pub use rules::{Kind, RuleConfig, RuleSet};
pub use settings::{AlertSettings, WebhookSettings};
pub use silences::Silences;

/// What every shard shares of alerting.
pub struct Alerting {
    pub rules: RuleSet,
    pub silences: Arc<Silences>,
    /// A webhook is configured: events to notify get a delivery row.
    pub notify: bool,
    /// Alert changes a shard may hold unwritten (`alerts.max_pending`).
    pub max_pending: usize,
    /// Some rule is of each kind (the shard skips a kind with no rule at once).
    pub absence: bool,
    pub dead_letters: bool,
    pub anomaly: bool,
}

impl Alerting {
    pub fn new(settings: &AlertSettings, silences: Arc<Silences>) -> Alerting {
        let rules = settings.rule_set();
        let any = |kind: fn(&Kind) -> bool| rules.iter().any(|(_, r)| kind(&r.kind));
        Alerting {
            absence: any(|k| matches!(k, Kind::Absence { .. })),
            dead_letters: any(|k| matches!(k, Kind::DeadLetters { .. })),
            anomaly: any(|k| matches!(k, Kind::Anomaly { .. })),
            rules,
            silences,
            notify: !settings.webhook.url.is_empty(),
            max_pending: settings.max_pending,
        }
    }
}
