//! A device's page, `/fleet/devices/{id}`: its presence and data quality, a chart of each
//! numeric field of each sensor type, and its last readings, all kept live by the
//! device's feed; its alerts (raised now, and the last events) and its dead letters as of
//! the page's load.
//!
//! The feed, `GET /live/devices/{id}`, sends a `device` event now and each second: the
//! device's facts, and its readings newer than the last it sent (the first event: the
//! newest `FIRST`). A device's readings are ordered by their key (time, then sensor
//! type), so an event holds at most the `PER_EVENT` newest after the last key sent: a
//! device sending faster is charted by its newest readings (the store keeps them all),
//! and a reading that arrives with a time older than one already sent is not charted
//! live (a reload shows it).
//!
//! What a device sends bounds what its page costs: one store read a second per open
//! page, `READS_AT_ONCE` of them at a time (a read holds up to `PER_EVENT` readings of up
//! to a packet each); an event carries `EVENT_BYTES` of readings' data at most, the
//! newest first, and a reading's data over `SHOWN_BYTES` is sent as its size alone.
//! Device feeds count against the same bound as the fleet's (`live`).

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use eliot_actors::{
    is_device_id, rfc3339_micros, AlertEventQuery, AlertQuery, DeadLetterQuery, DeviceState,
    PageRequest, ReadingKey, StoredReading,
};
use serde::Serialize;
use serde_json::value::RawValue;

use super::pages;
use super::{html, live_stream, see_other, unavailable, Dashboard};
use crate::http::v1::END_MICROS;

/// Readings the first event carries, at most.
const FIRST: usize = 100;
/// Readings each later event carries, at most.
const PER_EVENT: usize = 100;
/// Device feeds reading the store at once; the others wait their turn.
pub const READS_AT_ONCE: usize = 4;
/// The readings' data an event carries, at most, in bytes.
const EVENT_BYTES: usize = 256 * 1024;
/// A reading's data larger than this is sent as its size alone.
const SHOWN_BYTES: usize = 16 * 1024;
/// Points a chart keeps (`device.js` drops the oldest past it).
pub const CHARTED: usize = 1_000;
/// Alert events and dead letters the page lists.
const LISTED: usize = 20;

/// The page for an id that cannot be a device's.
fn not_a_device_id() -> HttpResponse {
    html(
        StatusCode::BAD_REQUEST,
        pages::login(Some(
            "a device id has 1 to 64 letters, digits, `_`, `.`, `:` or `-`",
        )),
    )
}

pub async fn page(
    request: HttpRequest,
    dashboard: web::Data<Dashboard>,
    id: web::Path<String>,
) -> HttpResponse {
    let Some(viewer) = dashboard.viewer(&request) else {
        return see_other("/login");
    };
    if !is_device_id(&id) {
        return not_a_device_id();
    }
    let id = id.into_inner();
    let state = match &dashboard.fleet {
        Some(fleet) => match fleet.get(&id).await {
            Ok(state) => state,
            Err(e) => return unavailable(&e.to_string()),
        },
        None => None,
    };
    let (reader, device) = (dashboard.reader.clone(), id.clone());
    let stored = web::block(move || {
        let letters = reader.dead_letters(&DeadLetterQuery {
            device: Some(device.clone()),
            reason: None,
            from: None,
            to: None,
            descending: true,
            after: None,
            limit: LISTED,
        })?;
        Ok::<_, eliot_actors::StoreError>((reader.last(&device, 1)?, letters))
    });
    let (last, letters) = match stored.await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return unavailable(&e.to_string()),
        Err(e) => return unavailable(&e.to_string()),
    };
    if state.is_none() && last.is_empty() && letters.dead_letters.is_empty() {
        return html(
            StatusCode::NOT_FOUND,
            pages::login(Some(
                "no such device: Eliot has no state, reading or dead letter of it",
            )),
        );
    }
    let (raised, history) = match &dashboard.alerts {
        Some(alerts) => {
            let raised = alerts.states(AlertQuery {
                device_id: Some(id.clone()),
                limit: LISTED,
                ..AlertQuery::default()
            });
            let history = alerts.events(AlertEventQuery {
                device_id: Some(id.clone()),
                newest_first: true,
                limit: LISTED,
                ..AlertEventQuery::default()
            });
            match futures_util::future::join(raised, history).await {
                (Ok(raised), Ok(history)) => (raised, history),
                (Err(e), _) | (_, Err(e)) => return unavailable(&e.to_string()),
            }
        }
        None => (Vec::new(), Vec::new()),
    };
    let csrf = viewer.as_ref().map(|(_, s)| s.csrf.as_str());
    let facts = state.as_ref().map(facts).unwrap_or_default();
    let shown = pages::DevicePage {
        id: &id,
        facts: &facts,
        raised: &raised,
        history: &history,
        dead_letters: &letters.dead_letters,
    };
    html(StatusCode::OK, pages::device(&shown, csrf))
}

/// What the page says of a device, each fact by name (the feed's key, the page's
/// `data-fact`), label and value.
pub fn facts(d: &DeviceState) -> Vec<(&'static str, &'static str, String)> {
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".to_owned());
    let rhythm = d.rhythm.as_ref().map_or("not learnt yet".to_owned(), |r| {
        format!(
            "every {:.1} s (± {:.1} s, {} samples)",
            r.interval_ms / 1e3,
            r.spread_ms / 1e3,
            r.samples
        )
    });
    let quarantine = d.quarantine.as_ref().map_or("no".to_owned(), |q| {
        format!(
            "since {} until {}: {}",
            q.since,
            q.until.as_deref().unwrap_or("released"),
            q.reason
        )
    });
    let (c, q) = (&d.counts, &d.quality);
    vec![
        ("status", "Status", d.status.name().to_owned()),
        ("since", "Since", format!("{} ({})", d.since, d.reason)),
        ("last_seen", "Last seen", text(&d.last_seen)),
        (
            "connected_since",
            "Connected since",
            text(&d.connected_since),
        ),
        ("peer", "From", text(&d.peer)),
        ("protocol", "Protocol", text(&d.protocol)),
        ("rhythm", "Reports", rhythm),
        ("quarantine", "Quarantined", quarantine),
        ("messages", "Messages", c.messages.to_string()),
        ("readings", "Readings", c.readings.to_string()),
        ("duplicates", "Duplicates", c.duplicates.to_string()),
        ("dead_letters", "Dead letters", c.dead_letters.to_string()),
        ("out_of_order", "Out of order", q.out_of_order.to_string()),
        ("future", "From the future", q.future_timestamps.to_string()),
        ("seq_gaps", "Sequence gaps", q.seq_gaps.to_string()),
        (
            "clock_skew",
            "Clock behind by",
            format!("{:.0} ms", q.clock_skew_ms),
        ),
        (
            "rejected",
            "Refused",
            format!("{:.1} %", q.rejection_rate * 100.0),
        ),
    ]
}

#[derive(Serialize)]
struct Event<'a> {
    /// The device's facts by name; `None` when the fleet does not know it (or is off).
    facts: Option<std::collections::BTreeMap<&'static str, String>>,
    /// Oldest first.
    readings: Vec<Reading<'a>>,
    /// Why the readings could not be read this second.
    error: Option<String>,
}

#[derive(Serialize)]
struct Reading<'a> {
    sensor_type: &'a str,
    timestamp: &'a str,
    /// `None` when over `SHOWN_BYTES`.
    data: Option<&'a RawValue>,
    /// The data's size in bytes.
    bytes: usize,
}

fn key_of(r: &StoredReading) -> Option<ReadingKey> {
    Some(ReadingKey {
        ts: rfc3339_micros(&r.timestamp).ok()?,
        sensor_type: r.sensor_type.clone(),
    })
}

/// The device's readings after `last` (every one, if `None`): the newest `limit`, oldest
/// first, with the key of the newest.
fn newer(
    dashboard: &Dashboard,
    id: &str,
    last: Option<&ReadingKey>,
    limit: usize,
) -> Result<(Vec<StoredReading>, Option<ReadingKey>), String> {
    let request = PageRequest {
        sensor_type: None,
        within: (last.map_or(0, |k| k.ts), END_MICROS),
        descending: true,
        after: None,
        limit,
    };
    let page = dashboard
        .reader
        .page(id, &request)
        .map_err(|e| e.to_string())?;
    let mut found: Vec<(ReadingKey, StoredReading)> = page
        .readings
        .into_iter()
        .filter_map(|r| Some((key_of(&r)?, r)))
        .filter(|(key, _)| last.is_none_or(|last| key > last))
        .collect();
    let newest = found.first().map(|(key, _)| key.clone());
    found.reverse();
    Ok((found.into_iter().map(|(_, r)| r).collect(), newest))
}

/// One `device` event: the newest of `readings` (oldest first) within `EVENT_BYTES`.
fn event(state: Option<&DeviceState>, readings: &[StoredReading], error: Option<String>) -> Bytes {
    let mut budget = EVENT_BYTES;
    let mut sent: Vec<Reading> = readings
        .iter()
        .rev()
        .map_while(|r| {
            let bytes = r.data.len();
            let shown = bytes <= SHOWN_BYTES;
            budget = budget.checked_sub(if shown { bytes } else { 0 })?;
            Some(Reading {
                sensor_type: &r.sensor_type,
                timestamp: &r.timestamp,
                data: shown.then(|| serde_json::from_str(&r.data).ok()).flatten(),
                bytes,
            })
        })
        .collect();
    sent.reverse();
    let readings = sent;
    let body = Event {
        facts: state.map(|d| facts(d).into_iter().map(|(k, _, v)| (k, v)).collect()),
        readings,
        error,
    };
    let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("event: device\ndata: {json}\n\n"))
}

pub async fn feed(
    request: HttpRequest,
    dashboard: web::Data<Dashboard>,
    id: web::Path<String>,
) -> HttpResponse {
    if !is_device_id(&id) {
        return HttpResponse::BadRequest().finish();
    }
    let id: std::sync::Arc<str> = id.into_inner().into();
    live_stream(&request, dashboard, None, move |dashboard, last| {
        next_event(dashboard, id.clone(), last)
    })
}

/// The device's next event, and the key of the newest reading sent so far.
async fn next_event(
    dashboard: std::sync::Arc<Dashboard>,
    id: std::sync::Arc<str>,
    last: Option<ReadingKey>,
) -> Option<(Bytes, Option<ReadingKey>)> {
    let state = match &dashboard.fleet {
        Some(fleet) => fleet.get(&id).await.ok().flatten(),
        None => None,
    };
    let limit = if last.is_none() { FIRST } else { PER_EVENT };
    let key = last.clone();
    let turn = dashboard.device_reads.clone().acquire_owned().await.ok()?;
    let read = web::block(move || {
        let _turn = turn;
        newer(&dashboard, &id, key.as_ref(), limit)
    })
    .await;
    Some(match read {
        Ok(Ok((readings, newest))) => (event(state.as_ref(), &readings, None), newest.or(last)),
        Ok(Err(e)) => (event(state.as_ref(), &[], Some(e)), last),
        Err(e) => (event(state.as_ref(), &[], Some(e.to_string())), last),
    })
}
