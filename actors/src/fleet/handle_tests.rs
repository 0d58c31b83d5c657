//! The `FleetHandle` against real shards and a real store writer on a temporary database:
//! what the HTTP API and provisioning will call, each call's effect on the state, the
//! committed events, and what a restarted fleet loads.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::feed::{Carrier, CloseConnection, Source};
use super::*;
use crate::message::{Origin, Outcome, Reading};
use crate::observe::Telemetry;
use crate::store::{Reader, Store, StoreSettings, StoreWriter, StoreWriterLinks};
use crate::supervision::{
    Breaker, BreakerSettings, HealthMonitor, RestartSettings, Restarts, StoreProgress,
};

/// Counts the closes the fleet asks of it.
pub(super) struct FakeConnection(pub(super) Arc<std::sync::atomic::AtomicUsize>);

impl Actor for FakeConnection {
    type Context = Context<Self>;
}

impl Handler<CloseConnection> for FakeConnection {
    type Result = ();

    fn handle(&mut self, _: CloseConnection, _: &mut Context<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Carrier {
    fn clone_of(c: &Carrier) -> Carrier {
        Carrier {
            connection: c.connection,
            peer: c.peer,
            protocol: c.protocol,
            closer: c.closer.clone(),
        }
    }
}

pub(super) struct Harness {
    pub(super) fleet: Fleet,
    store: Addr<StoreWriter>,
    pub(super) detection: Arc<Detection>,
}

pub(super) fn start(dir: &std::path::Path, settings: FleetSettings) -> Harness {
    let telemetry = Telemetry::discard();
    let store_settings = StoreSettings::for_tests(dir);
    let progress = Arc::new(StoreProgress::default());
    let restart = RestartSettings {
        max_restarts: 10,
        window: Duration::from_secs(60),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
    };
    let health = HealthMonitor::new(
        Duration::from_secs(60),
        Duration::from_secs(60),
        progress.clone(),
        &telemetry,
    )
    .start();
    let (escalate, _) = tokio::sync::mpsc::channel(4);
    let restarts =
        |name: &str| Restarts::new(name, &restart, health.clone().recipient(), escalate.clone());
    let breaker = Breaker::new(
        "store",
        BreakerSettings {
            failure_threshold: 3,
            open_for: Duration::from_millis(100),
            open_max: Duration::from_secs(1),
            retry_delay: Duration::from_millis(10),
        },
        health.clone().recipient(),
        &telemetry,
    )
    .start();
    let links = StoreWriterLinks {
        restarts: restarts("store_writer"),
        breaker,
        progress,
    };
    let db = Store::open(&store_settings).unwrap();
    let reader = Reader::new(&store_settings, db.memtable());
    let store = StoreWriter::new(store_settings.clone(), db, links, &telemetry).start();
    let quarantine = Arc::new(QuarantineSet::default());
    let tracked = Arc::new(Tracked::default());
    let settings = Arc::new(settings);
    let detection = Arc::new(Detection::new(&AnomalySettings::for_tests()));
    let shards = (0..settings.shards)
        .map(|index| {
            let links = ShardLinks {
                index,
                shards: settings.shards,
                settings: settings.clone(),
                store: store.clone(),
                db_path: store_settings.db_path(),
                quarantine: quarantine.clone(),
                tracked: tracked.clone(),
                max_series: 8,
                detection: Some(detection.clone()),
                max_pending_anomalies: 100,
                reader: reader.clone(),
                alerting: None,
                restarts: restarts(&format!("fleet-{index}")),
            };
            FleetShard::new(links, &telemetry).start()
        })
        .collect();
    let fleet = Fleet::new(
        shards,
        settings.mailbox,
        quarantine,
        store_settings.db_path(),
        true,
        None,
    );
    Harness {
        fleet,
        store,
        detection,
    }
}

pub(super) fn accepted(device: &str, second: i64) -> Outcome {
    let received = time::OffsetDateTime::now_utc();
    let ts = received - time::Duration::seconds(1) + time::Duration::milliseconds(second);
    one_reading(device, "gps", ts, format!(r#"{{"seq":{second}}}"#))
}

/// A message of one reading of `device`'s `sensor_type`, received now.
pub(super) fn one_reading(
    device: &str,
    sensor_type: &str,
    ts: time::OffsetDateTime,
    data: String,
) -> Outcome {
    let received = time::OffsetDateTime::now_utc();
    Outcome::Accepted {
        readings: vec![Reading {
            device_id: device.into(),
            sensor_type: sensor_type.into(),
            ts: crate::message::format_utc(ts),
            data,
            received_at: crate::message::format_utc(received),
        }],
        origin: Origin {
            topic: format!("devices/{device}/telemetry"),
            payload: bytes::Bytes::from_static(b"{}"),
            client_id: device.into(),
            device_id: Some(device.into()),
            received_at: received,
            redelivered: false,
            replay_of: None,
        },
    }
}

pub(super) async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        actix::clock::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 4 s");
}

#[actix::test]
async fn the_handle_reads_and_changes_what_the_shards_own() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path(), FleetSettings::for_tests());
    let handle = h.fleet.handle.clone();
    let closes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let closer = FakeConnection(closes.clone()).start().recipient();
    let carrier = Arc::new(Carrier {
        connection: 7,
        peer: "127.0.0.1:4000".parse().unwrap(),
        protocol: "mqtt-5",
        closer,
    });
    let source = Source::Connection(carrier.clone());
    let outcomes = [accepted("d1", 0), accepted("d1", 1), accepted("d2", 0)];
    let notes = super::feed::notes_of(&outcomes, true);
    h.fleet
        .feed
        .observe(&source, notes.into_iter().flatten())
        .await;
    let other = Arc::new(Carrier {
        connection: 8,
        peer: carrier.peer,
        protocol: "mqtt-3.1.1",
        closer: carrier.closer.clone(),
    });
    h.fleet.feed.connected("d3", other.clone());
    let stays = Arc::new(Carrier {
        connection: 9,
        ..Carrier::clone_of(&other)
    });
    h.fleet.feed.connected("d4", stays);
    handle.provisioned("p1").await.unwrap();

    until("d1 online", async || {
        handle
            .get("d1")
            .await
            .unwrap()
            .is_some_and(|d| d.counts.messages == 2)
    })
    .await;
    let d1 = handle.get("d1").await.unwrap().unwrap();
    assert_eq!(
        (d1.status, d1.protocol.as_deref()),
        (Status::Online, Some("mqtt-5"))
    );
    assert_eq!(d1.last_readings.len(), 1);
    assert_eq!(d1.quality.seq_gaps, 0);
    let p1 = handle.get("p1").await.unwrap().unwrap();
    assert_eq!(
        (p1.status, p1.reason.as_str()),
        (Status::Offline, "provisioned")
    );

    let page = handle
        .list(DeviceQuery {
            status: Some(Status::Online),
            limit: 2,
            ..DeviceQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = page.devices.iter().map(|d| d.device_id.as_str()).collect();
    assert_eq!(ids, ["d1", "d2"]);
    let rest = handle
        .list(DeviceQuery {
            status: Some(Status::Online),
            limit: 2,
            after: page.next.clone(),
            ..DeviceQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.devices.len(), 2, "d3, d4");
    assert_eq!(rest.next, None);

    // This connection never ends: the wait is bounded.
    let wait = Duration::from_millis(200);
    let closed = handle
        .disconnect_within("d1", "rotated", wait)
        .await
        .unwrap();
    assert_eq!((closed.ended, closed.timed_out), (0, 1));
    let closed = handle
        .disconnect_within("p1", "rotated", wait)
        .await
        .unwrap();
    assert_eq!(closed, ConnectionsClosed::default());
    until("the close asked", async || {
        closes.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(
        handle.release("d1").await.unwrap(),
        Released::NotQuarantined
    );
    assert_eq!(handle.release("nobody").await.unwrap(), Released::Unknown);

    h.fleet.feed.disconnected(7, "device sent DISCONNECT");
    until("d1 offline", async || {
        handle
            .get("d1")
            .await
            .unwrap()
            .is_some_and(|d| d.status == Status::Offline)
    })
    .await;
    until("events committed", async || {
        handle.events("d1", None, 10).await.unwrap().len() == 2
    })
    .await;
    let events = handle.events("d1", None, 10).await.unwrap();
    assert_eq!(events[0].status, "online");
    assert!(
        events[1].reason.contains("device sent DISCONNECT"),
        "{events:?}"
    );

    assert!(handle.forget("d2").await.unwrap());
    assert!(!handle.forget("d2").await.unwrap());
    assert_eq!(handle.get("d2").await.unwrap(), None);
    assert!(handle.forget("d3").await.unwrap(), "d3 was known");
    until("d3's connection closed as it is forgotten", async || {
        closes.load(std::sync::atomic::Ordering::SeqCst) == 2
    })
    .await;

    // A fleet started again loads what was handed over: d2 stays forgotten.
    h.fleet.flush().await;
    // The writer commits what it took with its next batch, `store.batch_delay` later.
    actix::clock::sleep(Duration::from_millis(300)).await;
    drop(h.store);
    let again = start(dir.path(), FleetSettings::for_tests());
    until("reloaded", async || {
        again.fleet.handle.get("d1").await.unwrap().is_some()
    })
    .await;
    assert_eq!(again.fleet.handle.get("d2").await.unwrap(), None);
    let d4 = again.fleet.handle.get("d4").await.unwrap().unwrap();
    assert_eq!(
        d4.status,
        Status::Offline,
        "its connection died with the fleet"
    );
    assert!(d4.reason.contains("eliot restarted"), "{d4:?}");
    let p1 = again.fleet.handle.get("p1").await.unwrap().unwrap();
    assert_eq!(p1.status, Status::Offline);
}

#[actix::test]
async fn quarantine_holds_a_devices_messages_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let settings = FleetSettings {
        quarantine_min_messages: 4,
        ..FleetSettings::for_tests()
    };
    let h = start(dir.path(), settings);
    let (feed, handle) = (h.fleet.feed.clone(), h.fleet.handle.clone());
    let source = Source::Upstream;
    feed.observe(
        &source,
        super::feed::notes_of(&[accepted("q", 0)], true)
            .into_iter()
            .flatten(),
    )
    .await;
    let rejected = |n: usize| -> Vec<Outcome> {
        (0..n)
            .map(|_| match accepted("q", 5) {
                Outcome::Accepted { origin, .. } => {
                    Outcome::Rejected(origin.dead_letter("payload is not valid JSON".into()))
                }
                other => other,
            })
            .collect()
    };
    feed.observe(
        &source,
        super::feed::notes_of(&rejected(20), true)
            .into_iter()
            .flatten(),
    )
    .await;
    until("quarantined", async || {
        handle
            .get("q")
            .await
            .unwrap()
            .is_some_and(|d| d.status == Status::Quarantined)
    })
    .await;
    let mut held = vec![accepted("q", 9), accepted("other", 9)];
    feed.quarantine(&mut held);
    assert!(matches!(&held[0], Outcome::Rejected(d) if d.reason.starts_with("quarantined: ")));
    assert!(
        matches!(&held[1], Outcome::Accepted { .. }),
        "another device is unaffected"
    );

    assert_eq!(handle.release("q").await.unwrap(), Released::Released);
    let q = handle.get("q").await.unwrap().unwrap();
    assert_eq!((q.status, q.quality.rejection_rate), (Status::Online, 0.0));
    let mut again = vec![accepted("q", 10)];
    feed.quarantine(&mut again);
    assert!(matches!(&again[0], Outcome::Accepted { .. }), "released");
}
