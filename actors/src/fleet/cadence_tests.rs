//! The two cadences of device rows (`unsaved.rs`), against real shards and a real store
//! writer: a status change is written at the next flush, progress only once it has waited
//! `fleet.state_interval`, and a flush at shutdown writes everything.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::feed::{Carrier, Source};
use super::handle_tests::{accepted, start, until, FakeConnection};
use super::*;
use crate::store::{load_device_rows, open_for_reading, DeviceRow};

fn row(dir: &std::path::Path, device: &str) -> Option<DeviceRow> {
    let conn = open_for_reading(&dir.join("eliot.db")).ok()?;
    let rows = load_device_rows(&conn, |id| id == device).ok()?;
    rows.into_iter().next()
}

fn messages(row: &DeviceRow) -> u64 {
    serde_json::from_str::<Counts>(&row.counts)
        .unwrap()
        .messages
}

fn source() -> Source {
    let closer = FakeConnection(Default::default()).start().recipient();
    Source::Connection(Arc::new(Carrier {
        connection: 1,
        peer: "127.0.0.1:4000".parse().unwrap(),
        protocol: "mqtt-5",
        closer,
    }))
}

async fn observe(fleet: &Fleet, source: &Source, device: &str, seconds: std::ops::Range<i64>) {
    let outcomes: Vec<_> = seconds.map(|s| accepted(device, s)).collect();
    let notes = super::feed::notes_of(&outcomes, true);
    fleet
        .feed
        .observe(source, notes.into_iter().flatten())
        .await;
}

#[actix::test]
async fn status_changes_are_written_at_once_progress_when_due_and_everything_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let settings = FleetSettings {
        flush_interval: Duration::from_millis(50),
        state_interval: Duration::from_secs(3600),
        ..FleetSettings::for_tests()
    };
    let h = start(dir.path(), settings);
    let source = source();
    observe(&h.fleet, &source, "d1", 0..2).await;
    until("its first status written", async || {
        row(dir.path(), "d1").is_some_and(|r| r.status == "online")
    })
    .await;
    let written = messages(&row(dir.path(), "d1").unwrap());
    observe(&h.fleet, &source, "d1", 2..5).await;
    until("the live state has all five", async || {
        let live = h.fleet.handle.get("d1").await.unwrap();
        live.is_some_and(|d| d.counts.messages == 5)
    })
    .await;
    // Ten flushes later the row still holds what the status change wrote.
    actix::clock::sleep(Duration::from_millis(500)).await;
    assert_eq!(messages(&row(dir.path(), "d1").unwrap()), written);
    h.fleet.flush().await;
    until("shutdown's flush wrote the progress", async || {
        row(dir.path(), "d1").is_some_and(|r| messages(&r) == 5)
    })
    .await;
}

#[actix::test]
async fn progress_is_written_once_it_has_waited_the_state_interval() {
    let dir = tempfile::tempdir().unwrap();
    let settings = FleetSettings {
        flush_interval: Duration::from_millis(50),
        state_interval: Duration::from_millis(300),
        ..FleetSettings::for_tests()
    };
    let h = start(dir.path(), settings);
    let source = source();
    observe(&h.fleet, &source, "d1", 0..1).await;
    until("its first status written", async || {
        row(dir.path(), "d1").is_some_and(|r| r.status == "online")
    })
    .await;
    observe(&h.fleet, &source, "d1", 1..4).await;
    until(
        "the progress written, without a status change",
        async || row(dir.path(), "d1").is_some_and(|r| messages(&r) == 4),
    )
    .await;
}
