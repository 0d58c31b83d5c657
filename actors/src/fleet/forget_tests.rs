//! Deleting a device, against real shards and a real store writer: `disconnect` resolves
//! once the connections it closed ended (after their last updates), and what a connection
//! still had in flight for a forgotten device does not bring it back, while a new
//! connection of the device does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::feed::{Carrier, CloseConnection, Note, Source};
use super::handle_tests::{accepted, start, until, FakeConnection};
use super::*;

/// A connection that, asked to close, takes a while to drain: it tells the fleet of one
/// last committed message, then ends, as a device connection does.
struct DrainingConnection {
    feed: FleetFeed,
    source: Option<Source>,
    id: u64,
    last: Vec<Note>,
}

impl Actor for DrainingConnection {
    type Context = Context<Self>;
}

impl Handler<CloseConnection> for DrainingConnection {
    type Result = ();

    fn handle(&mut self, msg: CloseConnection, ctx: &mut Context<Self>) {
        let (feed, id, last) = (self.feed.clone(), self.id, std::mem::take(&mut self.last));
        let source = self.source.clone().expect("set at start");
        ctx.spawn(
            async move {
                actix::clock::sleep(Duration::from_millis(300)).await;
                feed.observe(&source, last).await;
                feed.disconnected(id, msg.why);
            }
            .into_actor(self),
        );
    }
}

fn carrier(connection: u64, closer: Recipient<CloseConnection>) -> Arc<Carrier> {
    Arc::new(Carrier {
        connection,
        peer: "127.0.0.1:4000".parse().unwrap(),
        protocol: "mqtt-5",
        closer,
    })
}

fn notes(device: &str, second: i64) -> Vec<Note> {
    super::feed::notes_of(&[accepted(device, second)], true)
        .into_iter()
        .flatten()
        .collect()
}

#[actix::test]
async fn disconnect_resolves_once_the_connection_ended_and_told_everything() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path(), FleetSettings::for_tests());
    let (feed, handle) = (h.fleet.feed.clone(), h.fleet.handle.clone());
    let draining = DrainingConnection::create(|ctx| DrainingConnection {
        feed: feed.clone(),
        source: Some(Source::Connection(carrier(21, ctx.address().recipient()))),
        id: 21,
        last: notes("drained", 5),
    });
    let source = Source::Connection(carrier(21, draining.recipient()));
    feed.observe(&source, notes("drained", 1)).await;

    let closed = handle
        .disconnect("drained", "device deleted")
        .await
        .unwrap();
    assert_eq!((closed.ended, closed.timed_out), (1, 0));
    // Answered after its end, so after its last message: both are in the state already.
    let device = handle.get("drained").await.unwrap().unwrap();
    assert_eq!(device.status, Status::Offline, "{device:?}");
    assert_eq!(device.counts.messages, 2, "{device:?}");
    assert!(device.reason.contains("device deleted"), "{device:?}");

    assert!(handle.forget("drained").await.unwrap());
    assert_eq!(handle.get("drained").await.unwrap(), None);
    assert!(!handle.forget("drained").await.unwrap(), "forgotten once");
}

#[actix::test]
async fn a_late_update_after_forget_does_not_resurrect_but_a_new_connection_does() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(dir.path(), FleetSettings::for_tests());
    let (feed, handle) = (h.fleet.feed.clone(), h.fleet.handle.clone());
    let closes = Arc::new(AtomicUsize::new(0));
    let closer = FakeConnection(closes.clone()).start().recipient();
    let old = carrier(31, closer.clone());
    feed.connected("late", old.clone());
    let source = Source::Connection(old.clone());
    feed.observe(&source, notes("late", 1)).await;
    until("late online", async || {
        handle
            .get("late")
            .await
            .unwrap()
            .is_some_and(|d| d.counts.messages == 1)
    })
    .await;

    // The connection does not end in time: forgotten all the same, and closed.
    let wait = Duration::from_millis(100);
    let closed = handle
        .disconnect_within("late", "device deleted", wait)
        .await
        .unwrap();
    assert_eq!((closed.ended, closed.timed_out), (0, 1));
    assert!(handle.forget("late").await.unwrap());
    until("closed twice", async || closes.load(Ordering::SeqCst) == 2).await;

    // What it still had in flight, then its end: neither brings the device back.
    feed.observe(&source, notes("late", 2)).await;
    feed.connected("late", old.clone());
    feed.disconnected(31, "device deleted");
    assert_eq!(handle.get("late").await.unwrap(), None);
    assert!(
        !handle.forget("late").await.unwrap(),
        "a second delete finds nothing"
    );
    let listed = handle
        .list(DeviceQuery {
            limit: 10,
            ..DeviceQuery::default()
        })
        .await
        .unwrap();
    assert!(listed.devices.is_empty(), "{listed:?}");

    // A connection after the forget is the device heard again (where no login is needed).
    let new = Source::Connection(carrier(32, closer));
    feed.observe(&new, notes("late", 3)).await;
    let again = handle.get("late").await.unwrap().expect("heard again");
    assert_eq!((again.status, again.counts.messages), (Status::Online, 1));
}
