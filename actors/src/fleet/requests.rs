//! What the `FleetHandle` asks a shard: reads of the live state, release from quarantine,
//! closing a device's connections (answered when they ended: `endings.rs`), forgetting a
//! deleted device, learning a provisioned one; and, at shutdown, a last hand-over to the
//! store writer.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix::prelude::*;

use super::alerts::Acked;
use super::feed::CloseConnection;
use super::handle::{
    Acknowledge, CloseDevice, Forget, Get, List, Noisiest, Provisioned, Release, Released,
};
use super::heard::release;
use super::shard::{now_micros, FleetShard};
use super::state::{Device, DeviceId, DeviceState, Status};
use crate::observe::Event;
use crate::store::PersistFleet;

impl Handler<List> for FleetShard {
    type Result = MessageResult<List>;

    fn handle(&mut self, List(query): List, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.book.list(&query))
    }
}

impl Handler<Noisiest> for FleetShard {
    type Result = MessageResult<Noisiest>;

    fn handle(&mut self, Noisiest(limit): Noisiest, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.book.noisiest(limit))
    }
}

impl Handler<Get> for FleetShard {
    type Result = Option<DeviceState>;

    fn handle(&mut self, Get(id): Get, _: &mut Context<Self>) -> Option<DeviceState> {
        self.book.get(&id).map(|device| device.view(&id))
    }
}

impl Handler<Release> for FleetShard {
    type Result = MessageResult<Release>;

    fn handle(&mut self, Release(id): Release, ctx: &mut Context<Self>) -> Self::Result {
        let Some(key) = self.book.key(&id) else {
            return MessageResult(Released::Unknown);
        };
        let now = now_micros();
        let change = self
            .book
            .update(&id, |device| release(device, "released: by request", now))
            .flatten();
        let Some(change) = change else {
            return MessageResult(Released::NotQuarantined);
        };
        self.quarantine.remove(&id);
        self.record(&key, change.from, change.to, &change.reason, now);
        self.reschedule(&key, now);
        self.arm(ctx);
        MessageResult(Released::Released)
    }
}

impl Handler<Acknowledge> for FleetShard {
    type Result = MessageResult<Acknowledge>;

    fn handle(&mut self, a: Acknowledge, ctx: &mut Context<Self>) -> Self::Result {
        let acked = self.acknowledge(&a.rule, &a.device_id, &a.by);
        if acked == Acked::Acknowledged {
            self.flush(ctx);
        }
        MessageResult(acked)
    }
}

impl Handler<CloseDevice> for FleetShard {
    type Result = MessageResult<CloseDevice>;

    fn handle(&mut self, msg: CloseDevice, _: &mut Context<Self>) -> Self::Result {
        let connection = self
            .book
            .get(&msg.device_id)
            .and_then(|d| d.link.as_ref()?.connection.clone());
        let Some(connection) = connection else {
            return MessageResult(Vec::new());
        };
        // The connection closes, and its end marks the device offline and answers this.
        connection.closer.do_send(CloseConnection { why: msg.why });
        MessageResult(vec![self.endings.wait_for(connection.id)])
    }
}

impl Handler<Forget> for FleetShard {
    type Result = bool;

    fn handle(&mut self, Forget(id): Forget, _: &mut Context<Self>) -> bool {
        let Some((key, device)) = self.book.remove(&id) else {
            return false;
        };
        if let Some(connection) = device.link.as_ref().and_then(|l| l.connection.as_ref()) {
            connection.closer.do_send(CloseConnection {
                why: "the device was deleted",
            });
            // What it still has in flight for the device must not bring it back.
            self.endings.forgot(connection.id, key.clone());
        }
        self.quarantine.remove(&id);
        self.tracked.devices.fetch_sub(1, Ordering::Relaxed);
        if let (Some(detection), Some(anomalies)) = (&self.detection, &device.anomalies) {
            anomalies.release(detection);
        }
        self.forgotten(&id);
        Event::DeviceForgotten {
            device_id: &key,
            status: device.status().name(),
        }
        .emit(&self.telemetry);
        true
    }
}

impl Handler<Provisioned> for FleetShard {
    type Result = ();

    fn handle(&mut self, Provisioned(id): Provisioned, _: &mut Context<Self>) {
        if self.book.get(&id).is_some() {
            return;
        }
        let now = now_micros();
        self.tracked.devices.fetch_add(1, Ordering::Relaxed);
        let key: DeviceId = Arc::from(id.as_str());
        self.book
            .insert(key.clone(), Device::unheard(now, "provisioned"));
        self.record(&key, None, Status::Offline, "provisioned", now);
    }
}

/// Hand everything over to the store writer now, and answer once it took it (shutdown:
/// the writer commits what it holds as it stops).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlushNow;

impl Handler<FlushNow> for FleetShard {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: FlushNow, _: &mut Context<Self>) -> Self::Result {
        let writes = self.writes(true);
        let store = self.store.clone();
        Box::pin(
            async move {
                let _ = store.send(PersistFleet(writes)).await;
            }
            .into_actor(self),
        )
    }
}
