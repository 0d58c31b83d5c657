//! The dead letters, read back for the HTTP API: a keyset page of them (by id, newest or
//! oldest first, filtered), and one whole, payload included.
//!
//! Like every read, on the `Reader`'s read-only connections, never waiting for the writer.
//! A page is bounded twice: by its `limit`, and by `SCAN_ROWS`, the rows one page may
//! examine to find them. A filter that matches little therefore answers a short (even
//! empty) page with a cursor to go on from, rather than scanning a gigabyte of dead
//! letters in one request. Lists carry no payload (its size only): a payload may be as
//! large as a packet.

use rusqlite::{params, OptionalExtension};

use super::database::StoreError;
use super::readings::Reader;

/// Rows one page examines at most, matching or not.
pub const SCAN_ROWS: usize = 10_000;

/// Which dead letters a page holds.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterQuery {
    /// Only those of this device: the device they were attributed to when refused
    /// (`dead_letters.device_id`: the sender's identity, else its topic's device id;
    /// dead letters kept before schema v7 have none and match no device).
    pub device: Option<String>,
    /// Only those whose reason contains this text.
    pub reason: Option<String>,
    /// Only those received with `from <= received_at < to` (Eliot's time format, which
    /// sorts as text).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Newest (highest id) first; else oldest first.
    pub descending: bool,
    /// Start just after this id (in the page's order); from the first when `None`.
    pub after: Option<i64>,
    pub limit: usize,
}

/// A dead letter as listed: all but its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterSummary {
    pub id: i64,
    pub received_at: String,
    pub client_id: String,
    pub topic: String,
    pub reason: String,
    pub payload_bytes: u64,
}

/// One page of dead letters, and where the next starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetterSummary>,
    /// The id to go on after, when more may follow (a page that examined `SCAN_ROWS`
    /// rows has one even when it found fewer than its limit); `None` at the end.
    pub next: Option<i64>,
}

/// A dead letter whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDeadLetter {
    pub summary: DeadLetterSummary,
    pub payload: Vec<u8>,
}

impl DeadLetterQuery {
    fn matches(&self, d: &DeadLetterSummary) -> bool {
        let reason = self.reason.as_deref().is_none_or(|r| d.reason.contains(r));
        let from = self
            .from
            .as_deref()
            .is_none_or(|from| d.received_at.as_str() >= from);
        let to = self
            .to
            .as_deref()
            .is_none_or(|to| d.received_at.as_str() < to);
        reason && from && to
    }
}

const SUMMARY: &str = "id, received_at, client_id, topic, reason, length(CAST(payload AS BLOB))";

fn summary(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetterSummary> {
    Ok(DeadLetterSummary {
        id: row.get(0)?,
        received_at: row.get(1)?,
        client_id: row.get(2)?,
        topic: row.get(3)?,
        reason: row.get(4)?,
        payload_bytes: row.get::<_, i64>(5)?.try_into().unwrap_or(0),
    })
}

impl Reader {
    /// One page of dead letters (see the module's comment).
    pub fn dead_letters(&self, query: &DeadLetterQuery) -> Result<DeadLetterPage, StoreError> {
        // A device's dead letters are found by the index on (device_id, id); `?2 IS NULL`
        // (no device asked) leaves the scan to the primary key.
        let device = match query.device {
            Some(_) => "device_id = ?2",
            None => "?2 IS NULL",
        };
        let sql = match query.descending {
            true => format!(
                "SELECT {SUMMARY} FROM dead_letters WHERE {device} AND id < ?1 \
                 ORDER BY id DESC LIMIT {SCAN_ROWS}"
            ),
            false => format!(
                "SELECT {SUMMARY} FROM dead_letters WHERE {device} AND id > ?1 \
                 ORDER BY id ASC LIMIT {SCAN_ROWS}"
            ),
        };
        let start = query.after.unwrap_or(match query.descending {
            true => i64::MAX,
            false => i64::MIN,
        });
        self.in_read_transaction(|conn| {
            let mut statement = conn.prepare_cached(&sql)?;
            let mut rows = statement.query(params![start, query.device])?;
            let (mut found, mut scanned, mut last_scanned) = (Vec::new(), 0, None);
            while let Some(row) = rows.next()? {
                let dead_letter = summary(row)?;
                scanned += 1;
                last_scanned = Some(dead_letter.id);
                if query.matches(&dead_letter) {
                    if found.len() == query.limit {
                        // One more than the page: a next page exists.
                        let next = found.last().map(|d: &DeadLetterSummary| d.id);
                        return Ok(DeadLetterPage {
                            dead_letters: found,
                            next,
                        });
                    }
                    found.push(dead_letter);
                }
            }
            let next = match scanned == SCAN_ROWS {
                true => last_scanned,
                false => None,
            };
            Ok(DeadLetterPage {
                dead_letters: found,
                next,
            })
        })
    }

    /// The dead letter `id`, payload included; `None` if there is none (never was, or
    /// shed since).
    pub fn dead_letter(&self, id: i64) -> Result<Option<StoredDeadLetter>, StoreError> {
        self.in_read_transaction(|conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {SUMMARY}, payload FROM dead_letters WHERE id = ?1"
            ))?;
            statement
                .query_row(params![id], |row| {
                    Ok(StoredDeadLetter {
                        summary: summary(row)?,
                        payload: row.get(6)?,
                    })
                })
                .optional()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::database::Store;
    use super::super::settings::StoreSettings;
    use super::*;
    use crate::message::{DeadLetter, Outcome};

    fn dead_letter(n: usize) -> Outcome {
        let device = if n.is_multiple_of(2) { "even" } else { "odd" };
        Outcome::Rejected(DeadLetter {
            topic: format!("devices/{device}/telemetry"),
            payload: bytes::Bytes::from(format!("payload {n}")),
            client_id: format!("c{n}"),
            device_id: Some(device.into()),
            reason: format!("reason {}", n % 3),
            received_at: format!("2025-01-01T00:00:{n:02}.000000Z"),
            redelivered: false,
            replay_of: None,
        })
    }

    fn ids(page: &DeadLetterPage) -> Vec<i64> {
        page.dead_letters.iter().map(|d| d.id).collect()
    }

    #[test]
    fn pages_of_dead_letters_walk_by_id_with_filters_and_read_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let settings = StoreSettings::for_tests(dir.path());
        let mut store = Store::open(&settings).unwrap();
        let all: Vec<Outcome> = (1..=20).map(dead_letter).collect();
        store.write(&all).unwrap();
        let reader = Reader::new(&settings, store.memtable());

        let mut query = DeadLetterQuery {
            descending: true,
            limit: 6,
            ..Default::default()
        };
        let mut walked = Vec::new();
        loop {
            let page = reader.dead_letters(&query).unwrap();
            walked.extend(ids(&page));
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        assert_eq!(walked, (1..=20).rev().collect::<Vec<_>>());

        let even_reason_0 = DeadLetterQuery {
            device: Some("even".into()),
            reason: Some("reason 0".into()),
            from: Some("2025-01-01T00:00:05.000000Z".into()),
            to: Some("2025-01-01T00:00:18.000000Z".into()),
            limit: 100,
            ..Default::default()
        };
        let page = reader.dead_letters(&even_reason_0).unwrap();
        assert_eq!((ids(&page), page.next), (vec![6, 12], None));
        // The device is the one attributed, not the client id.
        let by_client = DeadLetterQuery {
            device: Some("c7".into()),
            limit: 1,
            ..Default::default()
        };
        assert_eq!(ids(&reader.dead_letters(&by_client).unwrap()), [0_i64; 0]);
        let odd = DeadLetterQuery {
            device: Some("odd".into()),
            limit: 3,
            ..Default::default()
        };
        assert_eq!(ids(&reader.dead_letters(&odd).unwrap()), [1, 3, 5]);

        let seven = reader.dead_letter(7).unwrap().unwrap();
        assert_eq!(seven.payload, b"payload 7");
        assert_eq!(seven.summary.payload_bytes, 9);
        assert_eq!(seven.summary.topic, "devices/odd/telemetry");
        assert_eq!(reader.dead_letter(99).unwrap(), None);
    }
}
