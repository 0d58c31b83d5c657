//! `AlertsHandle`: what the HTTP API asks of alerting that is not a device's live state
//! (acknowledging is the fleet's: `FleetHandle::acknowledge`): the rules, the alerts and
//! their history as committed, the silences, and retrying a failed notification. Reads
//! are on read-only connections of their own, on the blocking pool; silences are written
//! on an administration connection, as provisioning does (rare, and they wait for no
//! reading).

use std::path::PathBuf;
use std::sync::Arc;

use actix::Addr;
use rusqlite::Connection;

use super::notifier::{Notifier, RetryDelivery};
use crate::fleet::{now_micros, Alerting, RuleConfig};
use crate::store::{
    add_silence, alert_event, alert_events, alert_states, open_for_reading, remove_silence,
    AlertEventQuery, AlertEventView, AlertQuery, AlertStateRow, AlertWrites, Delivery,
    DeliveryUpdate, FleetWrites, PersistFleet, SilenceRow, StoreWriter,
};

#[derive(Clone)]
pub struct AlertsHandle {
    pub(crate) alerting: Arc<Alerting>,
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

/// What a retry found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retried {
    Again,
    /// Its notification is not failed (delivered, waiting, or none was due).
    NotFailed,
    Unknown,
}

impl AlertsHandle {
    /// The rules, as configured (with their severity and kind).
    pub fn rules(&self) -> Vec<RuleConfig> {
        self.alerting
            .rules
            .iter()
            .map(|(_, r)| r.config.clone())
            .collect()
    }

    /// The severity of rule `name` (`None`: no longer configured).
    pub fn severity(&self, name: &str) -> Option<&'static str> {
        self.alerting
            .rules
            .by_name(name)
            .map(|(_, r)| r.severity.name())
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
        let path = self.db_path.clone();
        let row = silence.clone();
        let id = tokio::task::spawn_blocking(move || {
            let conn = admin_connection(&path)?;
            add_silence(&conn, &row)
        })
        .await
        .map_err(|e| AlertsError::Write(e.to_string()))?
        .map_err(|e| AlertsError::Write(e.to_string()))?;
        silence.id = id;
        self.alerting.silences.add(silence.clone());
        Ok(silence)
    }

    /// Ends a silence; false if there was none with that id.
    pub async fn unsilence(&self, id: i64) -> Result<bool, AlertsError> {
        let path = self.db_path.clone();
        let removed = tokio::task::spawn_blocking(move || {
            let conn = admin_connection(&path)?;
            remove_silence(&conn, id)
        })
        .await
        .map_err(|e| AlertsError::Write(e.to_string()))?
        .map_err(|e| AlertsError::Write(e.to_string()))?;
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
