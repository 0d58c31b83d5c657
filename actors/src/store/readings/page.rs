//! Keyset pages through one device's readings, for the HTTP API's cursors.
//!
//! A device's readings are totally ordered by their key (time, then sensor type), and that
//! key is unique: a page is the first `limit` readings strictly after the last key the
//! previous page returned, in the order asked, within the filters asked. No offset is
//! kept, so readings committed meanwhile shift nothing: a reader paging on sees every
//! reading that was stored when it started exactly once (those committed later appear if
//! they sort after its position). Each page reads the memtable first and the chunks
//! second, as every read does (`reader`), and keeps each key once.

use std::ops::Bound;
use std::sync::Arc;

use super::super::database::StoreError;
use super::reader::{query_page, Found, Reader, StoredReading};
use crate::message::format_micros;

/// A reading's place in its device's order: its time (microseconds) and sensor type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadingKey {
    pub ts: i64,
    pub sensor_type: String,
}

/// What one page asks for.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Only this sensor type, when given.
    pub sensor_type: Option<String>,
    /// `from <= ts < to`, microseconds.
    pub within: (i64, i64),
    /// Newest first; else oldest first.
    pub descending: bool,
    /// Start just after this key (in the page's order); from the first when `None`.
    pub after: Option<ReadingKey>,
    /// Readings in the page, at most.
    pub limit: usize,
}

/// One page, and where the next starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub readings: Vec<StoredReading>,
    /// The key of the page's last reading when more follow it; `None` at the end.
    pub next: Option<ReadingKey>,
}

impl PageRequest {
    /// The keys the page may hold, as a range of (time, sensor type). The empty name
    /// sorts before every sensor type, so `(from, "")` is the first key at `from`.
    fn bounds(&self) -> (Bound<ReadingKey>, Bound<ReadingKey>) {
        let at = |ts: i64| ReadingKey {
            ts,
            sensor_type: String::new(),
        };
        let (from, to) = self.within;
        match (&self.after, self.descending) {
            (None, _) => (Bound::Included(at(from)), Bound::Excluded(at(to))),
            (Some(after), false) => (
                Bound::Excluded(after.clone().max(at(from))),
                Bound::Excluded(at(to)),
            ),
            (Some(after), true) => (
                Bound::Included(at(from)),
                Bound::Excluded(after.clone().min(at(to))),
            ),
        }
    }
}

impl Reader {
    /// One keyset page of `device`'s readings (see the module's comment).
    pub fn page(&self, device: &str, request: &PageRequest) -> Result<Page, StoreError> {
        // One more than asked: whether it exists says whether a next page does.
        let wanted = request.limit.saturating_add(1);
        let bounds = request.bounds();
        let sensor = request.sensor_type.as_deref();
        let as_memtable_key = |bound: &Bound<ReadingKey>| {
            bound
                .as_ref()
                .map(|k| (k.ts, Arc::<str>::from(k.sensor_type.as_str())))
        };
        let memtable_bounds = (as_memtable_key(&bounds.0), as_memtable_key(&bounds.1));
        let mut found = self.in_memtable(|m| {
            m.device_page(device, memtable_bounds, sensor, request.descending, wanted)
        });
        self.with_snapshot(device, |conn, chunks, _| {
            let (Some(low), Some(high)) = (key_of(&bounds.0), key_of(&bounds.1)) else {
                return Ok(());
            };
            let overlapping = chunks.iter().filter(|chunk| {
                chunk
                    .ts_range
                    .is_some_and(|(min, max)| min <= high.ts && max >= low.ts)
            });
            for chunk in overlapping {
                let text = |b: &Bound<ReadingKey>| {
                    b.as_ref()
                        .map(|k| (format_micros(k.ts), k.sensor_type.clone()))
                };
                let rows = query_page(
                    conn,
                    chunk,
                    device,
                    (text(&bounds.0), text(&bounds.1)),
                    sensor,
                    request.descending,
                    wanted,
                )?;
                found.extend(rows);
            }
            Ok(())
        })?;
        Ok(in_page_order(device, found, request))
    }
}

fn key_of(bound: &Bound<ReadingKey>) -> Option<&ReadingKey> {
    match bound {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }
}

/// `found` sorted in the page's order, each key once, cut to the page.
fn in_page_order(device: &str, mut found: Vec<Found>, request: &PageRequest) -> Page {
    found.sort_unstable_by(|a, b| a.key().cmp(&b.key()));
    found.dedup_by(|a, b| a.key() == b.key());
    if request.descending {
        found.reverse();
    }
    let more = found.len() > request.limit;
    found.truncate(request.limit);
    let next = match (more, found.last()) {
        (true, Some(last)) => Some(ReadingKey {
            ts: last.ts,
            sensor_type: last.sensor.clone(),
        }),
        _ => None,
    };
    Page {
        readings: found.into_iter().map(|f| f.into_reading(device)).collect(),
        next,
    }
}
