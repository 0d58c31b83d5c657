//! Alerts as stored:
//!
//! - `alert_states`: each alert raised now, one row per (rule, device), pending or firing;
//!   the row goes when the alert is over. Written in the transaction of the reading that
//!   changed it (threshold rules), or with the fleet's next hand-over (timers, presence,
//!   dead letters, anomaly scores, acknowledgements).
//! - `alert_events`: the history: every firing, resolution and acknowledgement.
//! - `alert_deliveries`: the webhook's outbox and its log, a row per event to notify,
//!   inserted with the event (so a notification exists exactly when its event does);
//!   the notifier records each attempt, and the delivery or the failure.
//! - `alert_silences`: a rule, a device or both silenced until a time: their events are
//!   recorded, not notified.
//! - `alert_rules`: the rules made through the API (the configuration's are in the
//!   configuration), each as its JSON.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::message::{format_micros, utc_micros};

pub const ALERT_TABLES: &str = "
CREATE TABLE IF NOT EXISTS alert_states (
    rule      TEXT NOT NULL,
    device_id TEXT NOT NULL,
    phase     TEXT NOT NULL CHECK (phase IN ('pending', 'firing')),
    since     TEXT NOT NULL,
    value     REAL,
    acked_at  TEXT,
    PRIMARY KEY (rule, device_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alert_states_device ON alert_states (device_id, rule);
CREATE TABLE IF NOT EXISTS alert_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    rule      TEXT NOT NULL,
    device_id TEXT NOT NULL,
    at        TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('fired', 'resolved', 'acknowledged')),
    severity  TEXT NOT NULL,
    value     REAL,
    summary   TEXT NOT NULL,
    silenced  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS alert_events_device ON alert_events (device_id, id);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    event_id     INTEGER PRIMARY KEY,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_attempt TEXT,
    last_error   TEXT,
    delivered_at TEXT,
    failed_at    TEXT
);
CREATE INDEX IF NOT EXISTS alert_deliveries_waiting ON alert_deliveries (event_id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE TABLE IF NOT EXISTS alert_rules (
    name       TEXT PRIMARY KEY,
    rule       TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_silences (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    rule       TEXT,
    device_id  TEXT,
    until      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    comment    TEXT NOT NULL DEFAULT ''
);
";

/// An alert raised now, or (`phase: None`) one that is over: its row goes.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertStateRow {
    pub rule: String,
    pub device_id: String,
    /// `pending` or `firing`; `None`: over.
    pub phase: Option<&'static str>,
    /// Microseconds since 1970: when it became pending, or fired.
    pub since: i64,
    pub value: Option<f64>,
    pub acked_at: Option<i64>,
}

/// One event of an alert's history; `id` is set when read back.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEventRow {
    pub id: i64,
    pub rule: String,
    pub device_id: String,
    pub at: i64,
    /// `fired`, `resolved` or `acknowledged`.
    pub kind: &'static str,
    pub severity: &'static str,
    pub value: Option<f64>,
    pub summary: String,
    /// Recorded, not notified: a silence covered it.
    pub silenced: bool,
    /// To be delivered by the webhook (a row in `alert_deliveries` comes with it).
    pub notify: bool,
}

/// What became of one webhook attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Delivered,
    /// It failed and will be tried again.
    Retrying(String),
    /// It failed for the last time: kept, retryable through the API.
    Failed(String),
    /// Asked to be tried again (a failed one, through the API).
    Again,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryUpdate {
    pub event_id: i64,
    pub at: i64,
    pub delivery: Delivery,
}

/// Alert rows written together, in one transaction.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AlertWrites {
    pub states: Vec<AlertStateRow>,
    pub events: Vec<AlertEventRow>,
    pub deliveries: Vec<DeliveryUpdate>,
}

impl AlertWrites {
    pub fn is_empty(&self) -> bool {
        self.states.is_empty() && self.events.is_empty() && self.deliveries.is_empty()
    }

    pub fn rows(&self) -> usize {
        self.states.len() + self.events.len() + self.deliveries.len()
    }

    pub fn append(&mut self, later: AlertWrites) {
        self.states.extend(later.states);
        self.events.extend(later.events);
        self.deliveries.extend(later.deliveries);
    }

    /// Writes the rows in `tx`: events (and their deliveries), then states in order (the
    /// last row of an alert wins), then delivery updates.
    pub fn write(&self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let mut event = tx.prepare_cached(
            "INSERT INTO alert_events (rule, device_id, at, kind, severity, value, summary, silenced) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut outbox =
            tx.prepare_cached("INSERT INTO alert_deliveries (event_id) VALUES (?1)")?;
        for e in &self.events {
            event.execute(params![
                e.rule,
                e.device_id,
                format_micros(e.at),
                e.kind,
                e.severity,
                e.value,
                e.summary,
                e.silenced
            ])?;
            if e.notify && !e.silenced {
                outbox.execute(params![tx.last_insert_rowid()])?;
            }
        }
        let mut upsert = tx.prepare_cached(
            "INSERT OR REPLACE INTO alert_states (rule, device_id, phase, since, value, acked_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut over =
            tx.prepare_cached("DELETE FROM alert_states WHERE rule = ?1 AND device_id = ?2")?;
        for s in &self.states {
            match s.phase {
                Some(phase) => upsert.execute(params![
                    s.rule,
                    s.device_id,
                    phase,
                    format_micros(s.since),
                    s.value,
                    s.acked_at.map(format_micros)
                ])?,
                None => over.execute(params![s.rule, s.device_id])?,
            };
        }
        for d in &self.deliveries {
            let at = format_micros(d.at);
            match &d.delivery {
                Delivery::Delivered => tx.execute(
                    "UPDATE alert_deliveries SET attempts = attempts + 1, last_attempt = ?2, \
                     delivered_at = ?2, last_error = NULL WHERE event_id = ?1",
                    params![d.event_id, at],
                )?,
                Delivery::Retrying(error) => tx.execute(
                    "UPDATE alert_deliveries SET attempts = attempts + 1, last_attempt = ?2, \
                     last_error = ?3 WHERE event_id = ?1",
                    params![d.event_id, at, error],
                )?,
                Delivery::Failed(error) => tx.execute(
                    "UPDATE alert_deliveries SET attempts = attempts + 1, last_attempt = ?2, \
                     last_error = ?3, failed_at = ?2 WHERE event_id = ?1",
                    params![d.event_id, at, error],
                )?,
                Delivery::Again => tx.execute(
                    "UPDATE alert_deliveries SET failed_at = NULL, attempts = 0 \
                     WHERE event_id = ?1 AND delivered_at IS NULL",
                    params![d.event_id],
                )?,
            };
        }
        Ok(())
    }
}

fn micros(text: Option<String>) -> Option<i64> {
    text.and_then(|t| utc_micros(&t))
}

fn phase_name(text: &str) -> Option<&'static str> {
    ["pending", "firing"].into_iter().find(|p| *p == text)
}

fn kind_name(text: &str) -> &'static str {
    ["fired", "resolved", "acknowledged"]
        .into_iter()
        .find(|k| *k == text)
        .unwrap_or("fired")
}

fn severity_name(text: &str) -> &'static str {
    ["info", "warning", "critical"]
        .into_iter()
        .find(|k| *k == text)
        .unwrap_or("warning")
}

fn state_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertStateRow> {
    Ok(AlertStateRow {
        rule: r.get(0)?,
        device_id: r.get(1)?,
        phase: phase_name(&r.get::<_, String>(2)?),
        since: micros(r.get(3)?).unwrap_or(0),
        value: r.get(4)?,
        acked_at: micros(r.get(5)?),
    })
}

const STATE_COLUMNS: &str = "rule, device_id, phase, since, value, acked_at";

/// Every alert raised now, of the devices `mine` owns (a shard's load).
pub fn load_alert_states(
    conn: &Connection,
    mine: impl Fn(&str) -> bool,
) -> rusqlite::Result<Vec<AlertStateRow>> {
    let mut statement = conn.prepare(&format!("SELECT {STATE_COLUMNS} FROM alert_states"))?;
    let rows = statement.query_map([], state_of)?;
    let mut mine_only = Vec::new();
    for row in rows {
        let row = row?;
        if mine(&row.device_id) {
            mine_only.push(row);
        }
    }
    Ok(mine_only)
}

/// What a page of the alerts raised now asks for: ordered by (device, rule).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertQuery {
    pub phase: Option<&'static str>,
    pub rule: Option<String>,
    pub device_id: Option<String>,
    /// After this (device, rule): the previous page's last.
    pub after: Option<(String, String)>,
    pub limit: usize,
}

pub fn alert_states(conn: &Connection, q: &AlertQuery) -> rusqlite::Result<Vec<AlertStateRow>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {STATE_COLUMNS} FROM alert_states \
         WHERE (?1 IS NULL OR phase = ?1) AND (?2 IS NULL OR rule = ?2) \
         AND (?3 IS NULL OR device_id = ?3) AND (device_id, rule) > (?4, ?5) \
         ORDER BY device_id, rule LIMIT ?6"
    ))?;
    let (after_device, after_rule) = q.after.clone().unwrap_or_default();
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let rows = statement.query_map(
        params![
            q.phase,
            q.rule,
            q.device_id,
            after_device,
            after_rule,
            limit
        ],
        state_of,
    )?;
    rows.collect()
}

/// What a page of the alerts' history asks for: by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertEventQuery {
    pub rule: Option<String>,
    pub device_id: Option<String>,
    pub kind: Option<&'static str>,
    /// Only events after this id (before it, newest first).
    pub after: Option<i64>,
    /// Newest (highest id) first; else oldest first.
    pub newest_first: bool,
    pub limit: usize,
}

/// An event with what became of its notification (`None`: none was due).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEventView {
    pub event: AlertEventRow,
    pub delivery: Option<DeliveryView>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryView {
    pub attempts: i64,
    pub last_attempt: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
}

const EVENT_COLUMNS: &str = "e.id, e.rule, e.device_id, e.at, e.kind, e.severity, e.value, \
     e.summary, e.silenced, d.event_id, d.attempts, d.last_attempt, d.last_error, \
     d.delivered_at, d.failed_at";

fn event_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertEventView> {
    let delivery = match r.get::<_, Option<i64>>(9)? {
        None => None,
        Some(_) => Some(DeliveryView {
            attempts: r.get(10)?,
            last_attempt: micros(r.get(11)?),
            last_error: r.get(12)?,
            delivered_at: micros(r.get(13)?),
            failed_at: micros(r.get(14)?),
        }),
    };
    Ok(AlertEventView {
        event: AlertEventRow {
            id: r.get(0)?,
            rule: r.get(1)?,
            device_id: r.get(2)?,
            at: micros(r.get(3)?).unwrap_or(0),
            kind: kind_name(&r.get::<_, String>(4)?),
            severity: severity_name(&r.get::<_, String>(5)?),
            value: r.get(6)?,
            summary: r.get(7)?,
            silenced: r.get(8)?,
            notify: delivery.is_some(),
        },
        delivery,
    })
}

pub fn alert_events(
    conn: &Connection,
    q: &AlertEventQuery,
) -> rusqlite::Result<Vec<AlertEventView>> {
    let (after, order, start) = match q.newest_first {
        true => ("<", "DESC", i64::MAX),
        false => (">", "", 0),
    };
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM alert_events e \
         LEFT JOIN alert_deliveries d ON d.event_id = e.id \
         WHERE e.id {after} ?1 AND (?2 IS NULL OR e.rule = ?2) \
         AND (?3 IS NULL OR e.device_id = ?3) \
         AND (?4 IS NULL OR e.kind = ?4) ORDER BY e.id {order} LIMIT ?5"
    ))?;
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let rows = statement.query_map(
        params![q.after.unwrap_or(start), q.rule, q.device_id, q.kind, limit],
        event_of,
    )?;
    rows.collect()
}

/// One event, with its delivery.
pub fn alert_event(conn: &Connection, id: i64) -> rusqlite::Result<Option<AlertEventView>> {
    conn.query_row(
        &format!(
            "SELECT {EVENT_COLUMNS} FROM alert_events e \
             LEFT JOIN alert_deliveries d ON d.event_id = e.id WHERE e.id = ?1"
        ),
        params![id],
        event_of,
    )
    .optional()
}

/// The oldest notifications not delivered nor given up on, in id order (the notifier's
/// queue: it delivers them in this order).
pub fn waiting_deliveries(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<AlertEventView>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM alert_deliveries d \
         JOIN alert_events e ON e.id = d.event_id \
         WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.event_id > ?1 \
         ORDER BY d.event_id LIMIT ?2"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = statement.query_map(params![after, limit], event_of)?;
    rows.collect()
}

/// A silence: the events of a rule, a device, or a rule on one device, are recorded but
/// not notified until `until`.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRow {
    pub id: i64,
    pub rule: Option<String>,
    pub device_id: Option<String>,
    pub until: i64,
    pub created_at: i64,
    pub comment: String,
}

/// Adds a silence (on an administration connection: silences are rare and wait for
/// nothing else); answers its id.
pub fn add_silence(conn: &Connection, s: &SilenceRow) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO alert_silences (rule, device_id, until, created_at, comment) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            s.rule,
            s.device_id,
            format_micros(s.until),
            format_micros(s.created_at),
            s.comment
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Ends a silence; false if there was none with that id.
pub fn remove_silence(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM alert_silences WHERE id = ?1", params![id])? > 0)
}

/// The silences still in force at `now` (the ones past are deleted as they are read).
pub fn silences(conn: &Connection, now: i64) -> rusqlite::Result<Vec<SilenceRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, rule, device_id, until, created_at, comment FROM alert_silences \
         WHERE until > ?1 ORDER BY id",
    )?;
    let rows = statement.query_map(params![format_micros(now)], |r| {
        Ok(SilenceRow {
            id: r.get(0)?,
            rule: r.get(1)?,
            device_id: r.get(2)?,
            until: micros(r.get(3)?).unwrap_or(0),
            created_at: micros(r.get(4)?).unwrap_or(0),
            comment: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// Deletes silences that ended before `now`.
pub fn expire_silences(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM alert_silences WHERE until <= ?1",
        params![format_micros(now)],
    )
}

/// The rules made through the API, as their JSON text, by name.
pub fn api_alert_rules(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare("SELECT rule FROM alert_rules ORDER BY name")?;
    let rows = statement.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Writes (or replaces) a rule made through the API.
pub fn put_alert_rule(conn: &Connection, name: &str, json: &str, now: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO alert_rules (name, rule, updated_at) VALUES (?1, ?2, ?3)",
        params![name, json, format_micros(now)],
    )?;
    Ok(())
}

/// Deletes a rule made through the API; false if there was none of that name.
pub fn delete_alert_rule(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute("DELETE FROM alert_rules WHERE name = ?1", params![name])? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(ALERT_TABLES).unwrap();
        conn
    }

    fn state(rule: &str, device: &str, phase: Option<&'static str>) -> AlertStateRow {
        AlertStateRow {
            rule: rule.into(),
            device_id: device.into(),
            phase,
            since: 1_000,
            value: Some(31.5),
            acked_at: None,
        }
    }

    fn event(kind: &'static str, notify: bool, silenced: bool) -> AlertEventRow {
        AlertEventRow {
            id: 0,
            rule: "hot".into(),
            device_id: "d1".into(),
            at: 2_000,
            kind,
            severity: "critical",
            value: Some(31.5),
            summary: "temperature.value 31.5 > 30".into(),
            silenced,
            notify,
        }
    }

    fn write(conn: &mut Connection, writes: &AlertWrites) {
        let tx = conn.transaction().unwrap();
        writes.write(&tx).unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn the_last_state_of_an_alert_wins_and_an_alert_over_leaves() {
        let mut conn = database();
        write(
            &mut conn,
            &AlertWrites {
                states: vec![
                    state("hot", "d1", Some("pending")),
                    state("hot", "d1", Some("firing")),
                    state("hot", "d2", Some("pending")),
                    state("cold", "d1", Some("firing")),
                    state("cold", "d1", None),
                ],
                ..AlertWrites::default()
            },
        );
        let all = alert_states(
            &conn,
            &AlertQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
        let seen: Vec<_> = all
            .iter()
            .map(|s| (s.device_id.as_str(), s.rule.as_str(), s.phase))
            .collect();
        assert_eq!(
            seen,
            [
                ("d1", "hot", Some("firing")),
                ("d2", "hot", Some("pending"))
            ]
        );
        let firing = AlertQuery {
            phase: Some("firing"),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(alert_states(&conn, &firing).unwrap().len(), 1);
        let next = AlertQuery {
            after: Some(("d1".into(), "hot".into())),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(alert_states(&conn, &next).unwrap()[0].device_id, "d2");
        let d2 = load_alert_states(&conn, |d| d == "d2").unwrap();
        assert_eq!(d2.len(), 1);
    }

    #[test]
    fn an_event_to_notify_comes_with_its_delivery_and_its_log() {
        let mut conn = database();
        write(
            &mut conn,
            &AlertWrites {
                events: vec![
                    event("fired", true, false),
                    event("fired", true, true),
                    event("acknowledged", false, false),
                    event("resolved", true, false),
                ],
                ..AlertWrites::default()
            },
        );
        let waiting = waiting_deliveries(&conn, 0, 10).unwrap();
        let ids: Vec<i64> = waiting.iter().map(|w| w.event.id).collect();
        assert_eq!(
            ids,
            [1, 4],
            "silenced and acknowledgements are not notified"
        );
        write(
            &mut conn,
            &AlertWrites {
                deliveries: vec![
                    DeliveryUpdate {
                        event_id: 1,
                        at: 3_000,
                        delivery: Delivery::Retrying("503".into()),
                    },
                    DeliveryUpdate {
                        event_id: 1,
                        at: 4_000,
                        delivery: Delivery::Delivered,
                    },
                    DeliveryUpdate {
                        event_id: 4,
                        at: 4_000,
                        delivery: Delivery::Failed("refused".into()),
                    },
                ],
                ..AlertWrites::default()
            },
        );
        assert!(waiting_deliveries(&conn, 0, 10).unwrap().is_empty());
        let first = alert_event(&conn, 1).unwrap().unwrap();
        let delivery = first.delivery.unwrap();
        assert_eq!(delivery.attempts, 2);
        assert_eq!(delivery.delivered_at, Some(4_000));
        assert_eq!(delivery.last_error, None);
        let again = AlertWrites {
            deliveries: vec![DeliveryUpdate {
                event_id: 4,
                at: 5_000,
                delivery: Delivery::Again,
            }],
            ..AlertWrites::default()
        };
        write(&mut conn, &again);
        let waiting = waiting_deliveries(&conn, 0, 10).unwrap();
        assert_eq!(waiting[0].event.id, 4, "a failed delivery is retryable");
        let history = alert_events(
            &conn,
            &AlertEventQuery {
                kind: Some("fired"),
                after: Some(1),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(history.len(), 1);
        assert!(history[0].event.silenced);
        let newest = alert_events(
            &conn,
            &AlertEventQuery {
                newest_first: true,
                limit: 2,
                ..Default::default()
            },
        )
        .unwrap();
        let ids: Vec<i64> = newest.iter().map(|e| e.event.id).collect();
        assert_eq!(ids, [4, 3], "newest first");
        let before = alert_events(
            &conn,
            &AlertEventQuery {
                newest_first: true,
                after: Some(3),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
        let ids: Vec<i64> = before.iter().map(|e| e.event.id).collect();
        assert_eq!(ids, [2, 1], "before the id given");
    }

    #[test]
    fn api_rules_are_kept_by_name() {
        let conn = database();
        put_alert_rule(&conn, "b", r#"{"name":"b"}"#, 1).unwrap();
        put_alert_rule(&conn, "a", r#"{"name":"a"}"#, 1).unwrap();
        put_alert_rule(&conn, "b", r#"{"name":"b","severity":"info"}"#, 2).unwrap();
        let rules = api_alert_rules(&conn).unwrap();
        assert_eq!(
            rules,
            [r#"{"name":"a"}"#, r#"{"name":"b","severity":"info"}"#]
        );
        assert!(delete_alert_rule(&conn, "a").unwrap());
        assert!(!delete_alert_rule(&conn, "a").unwrap());
    }

    #[test]
    fn silences_hold_until_their_end() {
        let conn = database();
        let silence = |until| SilenceRow {
            id: 0,
            rule: Some("hot".into()),
            device_id: None,
            until,
            created_at: 0,
            comment: "maintenance".into(),
        };
        let a = add_silence(&conn, &silence(10_000)).unwrap();
        add_silence(&conn, &silence(20_000)).unwrap();
        assert_eq!(silences(&conn, 15_000).unwrap().len(), 1);
        assert_eq!(expire_silences(&conn, 15_000).unwrap(), 1);
        assert!(!remove_silence(&conn, a).unwrap());
        assert_eq!(silences(&conn, 0).unwrap().len(), 1);
    }
}
