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

use std::sync::{Arc, RwLock};

pub use device::DeviceAlerts;
pub use evaluate::{Acked, AlertTimers, Evaluate, Judged, RulesChanged, ToJudge, Undo, Unsettled};
pub use machine::{Phase, Slot, Transition};
pub use rules::{EliotCondition, Kind, RuleConfig, RuleSet, Severity};
pub use settings::{AlertSettings, WebhookSettings};
pub use silences::Silences;

/// What every shard shares of alerting. The rules in force are swapped whole when the API
/// changes them; each shard keeps its own view, changed by `RulesChanged`, so that one
/// judgment never mixes two sets.
pub struct Alerting {
    current: RwLock<Arc<RuleSet>>,
    pub silences: Arc<Silences>,
    /// A webhook is configured: events to notify get a delivery row.
    pub notify: bool,
    /// Alert changes a shard may hold unwritten (`alerts.max_pending`).
    pub max_pending: usize,
}

impl Alerting {
    pub fn new(settings: &AlertSettings, rules: RuleSet, silences: Arc<Silences>) -> Alerting {
        Alerting {
            current: RwLock::new(Arc::new(rules)),
            silences,
            notify: !settings.webhook.url.is_empty(),
            max_pending: settings.max_pending,
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts `rules` in force (the shards are told by the caller).
    pub fn replace(&self, rules: Arc<RuleSet>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = rules;
    }
}
