//! The dead letters a replay takes up again: by id, or those matching a filter, a bounded
//! page at a time in id order. Read on the writer's connection, between its commits: the
//! replay's outcomes then come back through `Store::write`, which deletes each dead letter
//! in the transaction storing its readings (and finds it gone if it left meanwhile).

use actix::prelude::*;
use bytes::Bytes;
use rusqlite::{params_from_iter, types::Value};

use super::database::{naming, Store, StoreError};
use super::writer::{NotStored, StoreWriter};
use crate::message::format_micros;

/// Which device a dead letter is counted as, for a filter: the device it was attributed to
/// when refused (its sender's identity, else its topic's device id).
const DEVICE_OF_DEAD_LETTER: &str = "device_id";

/// Which dead letters a replay by filter takes; every part given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    pub device: Option<String>,
    /// The reason starts with this (case as written).
    pub reason_prefix: Option<String>,
    /// Received at or after this, microseconds since 1970.
    pub from: Option<i64>,
    /// Received before this.
    pub to: Option<i64>,
}

/// The dead letters to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These, those still kept (in id order).
    Ids(Vec<i64>),
    /// At most `limit` of those matching, with an id above `after`, in id order.
    Matching {
        filter: DeadLetterFilter,
        after: i64,
        limit: usize,
    },
}

/// A dead letter as a replay takes it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptDeadLetter {
    pub id: i64,
    pub topic: String,
    pub payload: Bytes,
    pub client_id: String,
    /// As stored (`format_utc`).
    pub received_at: String,
    /// Its client id names a provisioned device (in `devices`).
    pub provisioned: bool,
}

const COLUMNS: &str = "id, topic, payload, client_id, received_at, \
    EXISTS (SELECT 1 FROM devices WHERE devices.device_id = dead_letters.client_id)";

impl Store {
    /// The dead letters `selection` names that are still kept.
    pub fn dead_letters_to_replay(
        &self,
        selection: &Selection,
    ) -> Result<Vec<KeptDeadLetter>, StoreError> {
        let (sql, values) = query(selection);
        let mut statement = self.conn.prepare(&sql).map_err(naming(&self.path))?;
        let rows = statement
            .query_map(params_from_iter(values), |row| {
                Ok(KeptDeadLetter {
                    id: row.get(0)?,
                    topic: row.get(1)?,
                    payload: Bytes::from(row.get::<_, Vec<u8>>(2)?),
                    client_id: row.get(3)?,
                    received_at: row.get(4)?,
                    provisioned: row.get(5)?,
                })
            })
            .map_err(naming(&self.path))?;
        rows.collect::<Result<_, _>>().map_err(naming(&self.path))
    }
}

/// The SQL of `selection`, and its parameters in order.
fn query(selection: &Selection) -> (String, Vec<Value>) {
    match selection {
        Selection::Ids(ids) => {
            let marks = vec!["?"; ids.len()].join(", ");
            let sql =
                format!("SELECT {COLUMNS} FROM dead_letters WHERE id IN ({marks}) ORDER BY id");
            (sql, ids.iter().map(|id| Value::Integer(*id)).collect())
        }
        Selection::Matching {
            filter,
            after,
            limit,
        } => {
            let mut clauses = vec!["id > ?".to_owned()];
            let mut values = vec![Value::Integer(*after)];
            if let Some(device) = &filter.device {
                clauses.push(format!("{DEVICE_OF_DEAD_LETTER} = ?"));
                values.push(Value::Text(device.clone()));
            }
            if let Some(prefix) = &filter.reason_prefix {
                // Not LIKE: its wildcards and case folding would widen the filter.
                clauses.push("substr(reason, 1, length(?)) = ?".to_owned());
                values.push(Value::Text(prefix.clone()));
                values.push(Value::Text(prefix.clone()));
            }
            if let Some(from) = filter.from {
                clauses.push("received_at >= ?".to_owned());
                values.push(Value::Text(format_micros(from)));
            }
            if let Some(to) = filter.to {
                clauses.push("received_at < ?".to_owned());
                values.push(Value::Text(format_micros(to)));
            }
            let limit = i64::try_from(*limit).unwrap_or(i64::MAX);
            values.push(Value::Integer(limit));
            let sql = format!(
                "SELECT {COLUMNS} FROM dead_letters WHERE {} ORDER BY id LIMIT ?",
                clauses.join(" AND ")
            );
            (sql, values)
        }
    }
}

/// Loads the dead letters a replay takes up (see `Selection`).
#[derive(Message)]
#[rtype(result = "Result<Vec<KeptDeadLetter>, NotStored>")]
pub struct LoadDeadLetters(pub Selection);

impl Handler<LoadDeadLetters> for StoreWriter {
    type Result = Result<Vec<KeptDeadLetter>, NotStored>;

    fn handle(&mut self, msg: LoadDeadLetters, _: &mut Context<Self>) -> Self::Result {
        match self.store.as_ref() {
            None => Err(NotStored("the database is not open".into())),
            Some(store) => store
                .dead_letters_to_replay(&msg.0)
                .map_err(|e| NotStored(e.to_string())),
        }
    }
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
