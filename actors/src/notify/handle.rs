//! `AlertsHandle`: what the HTTP API asks of alerting that is not a device's live state
//! (acknowledging is the fleet's: `FleetHandle::acknowledge`): the rules (listed, and the
//! API's own created, replaced and deleted), the alerts and their history as committed,
//! the silences, and retrying a failed notification. Reads
//! are on read-only connections of their own, on the blocking pool; silences are written
//! on an administration connection, as provisioning does (rare, and they wait for no
//! reading).

use std::path::PathBuf;
use std::sync::Arc;

use actix::Addr;
use rusqlite::Connection;

use super::notifier::{Notifier, RetryDelivery};
use crate::fleet::{now_micros, Alerting, FleetHandle, RuleConfig, RuleSet};
use crate::settings::Problems;
use crate::store::{
    add_silence, alert_event, alert_events, alert_states, delete_alert_rule, open_for_reading,
    put_alert_rule, remove_silence, AlertEventQuery, AlertEventView, AlertQuery, AlertStateRow,
    AlertWrites, Delivery, DeliveryUpdate, FleetWrites, PersistFleet, SilenceRow, StoreWriter,
};

#[derive(Clone)]
pub struct AlertsHandle {
    pub(crate) alerting: Arc<Alerting>,
    /// The configuration's rules (not changed through the API).
    pub(crate) configured: Vec<RuleConfig>,
    /// The API's rules, in force; held across a change, so that changes go one at a time.
    pub(crate) api_rules: Arc<tokio::sync::Mutex<Vec<RuleConfig>>>,
    /// Told when the rules change.
    pub(crate) fleet: FleetHandle,
    pub(crate) store: Addr<StoreWriter>,
    pub(crate) notifier: Option<Addr<Notifier>>,
    pub(crate) db_path: PathBuf,
}

/// Why an alerts call failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("reading the alerts failed: {0}")]
    Read(String),
    #[error("writing failed: {0}")]
    Write(String),
}

/// Where a rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSource {
    /// `[[alerts.rules]]`: changed by editing the configuration only.
    Configuration,
    Api,
}

/// What changing a rule through the API did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleChange {
    Created,
    Replaced,
    Deleted,
    /// No rule of that name (a delete).
    Unknown,
    /// The configuration has a rule of that name: the API does not change it.
    Configured,
    /// What is wrong with it, by key.
    Refused(Vec<String>),
}

/// What a retry found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    Again,
    /// Its notification is not failed (delivered, waiting, or none was due).
    NotFailed,
    Unknown,
}

impl AlertsHandle {
    /// The rules in force, each with where it comes from.
    pub fn rules(&self) -> Vec<(RuleConfig, RuleSource)> {
        let configured = |name: &str| self.configured.iter().any(|c| c.name == name);
        self.alerting
            .rules()
            .iter()
            .map(|(_, r)| {
                let source = match configured(&r.name) {
                    true => RuleSource::Configuration,
                    false => RuleSource::Api,
                };
                (r.config.clone(), source)
            })
            .collect()
    }

    /// The severity of rule `name` (`None`: no longer in force).
    pub fn severity(&self, name: &str) -> Option<&'static str> {
        self.alerting
            .rules()
            .by_name(name)
            .map(|(_, r)| r.severity.name())
    }

    /// Creates or replaces the API's rule `rule.name`: checked with every other rule,
    /// written, then in force in every shard.
    pub async fn put_rule(&self, rule: RuleConfig) -> Result<RuleChange, AlertsError> {
        if self.configured.iter().any(|c| c.name == rule.name) {
            return Ok(RuleChange::Configured);
        }
        let mut api = self.api_rules.lock().await;
        let mut next = api.clone();
        let replaced = match next.iter_mut().find(|r| r.name == rule.name) {
            Some(old) => {
                *old = rule.clone();
                true
            }
            None => {
                next.push(rule.clone());
                false
            }
        };
        let mut problems = Problems::new();
        let mut all = self.configured.clone();
        all.extend(next.iter().cloned());
        let set = RuleSet::compile(&all, &mut problems);
        let refused: Vec<String> = problems
            .into_vec()
            .into_iter()
            .map(|p| {
                // `rules[i].key`: the key alone, as the caller wrote it.
                let key = p.key.split_once("].").map_or(p.key.as_str(), |(_, k)| k);
                format!("{key}: {}", p.message)
            })
            .collect();
        if !refused.is_empty() {
            return Ok(RuleChange::Refused(refused));
        }
        let json = serde_json::to_string(&rule).map_err(|e| AlertsError::Write(e.to_string()))?;
        let name = rule.name.clone();
        self.admin(move |conn| put_alert_rule(conn, &name, &json, now_micros()))
            .await?;
        *api = next;
        self.in_force(set);
        Ok(match replaced {
            true => RuleChange::Replaced,
            false => RuleChange::Created,
        })
    }

    /// Deletes the API's rule `name`: its alerts are over (a firing one resolved).
    pub async fn delete_rule(&self, name: &str) -> Result<RuleChange, AlertsError> {
        if self.configured.iter().any(|c| c.name == name) {
            return Ok(RuleChange::Configured);
        }
        let mut api = self.api_rules.lock().await;
        if !api.iter().any(|r| r.name == name) {
            return Ok(RuleChange::Unknown);
        }
        let owned = name.to_owned();
        self.admin(move |conn| delete_alert_rule(conn, &owned))
            .await?;
        api.retain(|r| r.name != name);
        let mut all = self.configured.clone();
        all.extend(api.iter().cloned());
        self.in_force(RuleSet::compile(&all, &mut Problems::new()));
        Ok(RuleChange::Deleted)
    }

    fn in_force(&self, set: RuleSet) {
        let set = Arc::new(set);
        self.alerting.replace(set.clone());
        self.fleet.rules_changed(set);
    }

    async fn admin<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, AlertsError> {
        let path = self.db_path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = admin_connection(&path)?;
            write(&conn)
        })
        .await
        .map_err(|e| AlertsError::Write(e.to_string()))?
        .map_err(|e| AlertsError::Write(e.to_string()))
    }

    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, AlertsError> {
        let path = self.db_path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = open_for_reading(&path)?;
            read(&conn)
        })
        .await
        .map_err(|e| AlertsError::Read(e.to_string()))?
        .map_err(|e| AlertsError::Read(e.to_string()))
    }

    /// The alerts raised now, as committed.
    pub async fn states(&self, query: AlertQuery) -> Result<Vec<AlertStateRow>, AlertsError> {
        self.read(move |conn| alert_states(conn, &query)).await
    }

    /// The alerts' history, with each notification's delivery.
    pub async fn events(&self, query: AlertEventQuery) -> Result<Vec<AlertEventView>, AlertsError> {
        self.read(move |conn| alert_events(conn, &query)).await
    }

    pub async fn event(&self, id: i64) -> Result<Option<AlertEventView>, AlertsError> {
        self.read(move |conn| alert_event(conn, id)).await
    }

    /// Tries a failed notification again: it is queued behind none (it was the head once,
    /// and gave up); the notifier sends it as soon as the reset is committed.
    pub async fn retry(&self, event_id: i64) -> Result<Retried, AlertsError> {
        let Some(view) = self.event(event_id).await? else {
            return Ok(Retried::Unknown);
        };
        if !view
            .delivery
            .is_some_and(|d| d.failed_at.is_some() && d.delivered_at.is_none())
        {
            return Ok(Retried::NotFailed);
        }
        let again = FleetWrites {
            alerts: AlertWrites {
                deliveries: vec![DeliveryUpdate {
                    event_id,
                    at: now_micros(),
                    delivery: Delivery::Again,
                }],
                ..AlertWrites::default()
            },
            ..FleetWrites::default()
        };
        self.store
            .send(PersistFleet(again))
            .await
            .map_err(|e| AlertsError::Write(e.to_string()))?;
        if let Some(notifier) = &self.notifier {
            notifier.do_send(RetryDelivery(event_id));
        }
        Ok(Retried::Again)
    }

    /// The silences in force.
    pub fn silences(&self) -> Vec<SilenceRow> {
        self.alerting.silences.in_force(now_micros())
    }

    /// Adds a silence, written before it holds; answers it with its id.
    pub async fn silence(&self, mut silence: SilenceRow) -> Result<SilenceRow, AlertsError> {
        let row = silence.clone();
        let id = self.admin(move |conn| add_silence(conn, &row)).await?;
        silence.id = id;
        self.alerting.silences.add(silence.clone());
        Ok(silence)
    }

    /// Ends a silence; false if there was none with that id.
    pub async fn unsilence(&self, id: i64) -> Result<bool, AlertsError> {
        let removed = self.admin(move |conn| remove_silence(conn, id)).await?;
        self.alerting.silences.remove(id);
        Ok(removed)
    }
}

/// A read-write connection for an administrative change, waiting for the writer's lock
/// for up to 5 s.
fn admin_connection(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA busy_timeout = 5000")?;
    Ok(conn)
}
