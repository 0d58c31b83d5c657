//! Wills: published down the same pipeline as a PUBLISH, at once or, when the device asked
//! for a v5 Will Delay Interval, later by the device endpoint, unless the device comes back
//! to its session first [MQTT-3.1.3-9].
//!
//! A connection taken over reports its will after its successor has connected: a
//! successor that continued the session drops it (the will of a session taken over within
//! its delay is never published [MQTT-3.1.2-8]); one that started clean ended the session,
//! so it is published at once. At most one will waits per client id, and the waiting ones
//! are bounded in bytes (`PENDING_WILLS_MAX_BYTES`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::device_endpoint::{DeviceEndpoint, Successor};
use crate::fleet::Source;
use crate::identity::credentials::LogPosition;
use crate::mqtt::packet::Will;
use crate::observe::{Event, Telemetry};
use crate::pipeline::Pipeline;

/// The wills waiting for their delay may hold this many bytes (topics and payloads) in
/// all; past it, a will is published at once, not after its delay: early beats lost.
/// Without it, `mqtt.max_connections` devices (20,000) could each leave a will of the
/// largest topic and payload (64 KiB each, their length being 16 bits) waiting: 2.5 GiB.
pub const PENDING_WILLS_MAX_BYTES: usize = 16 << 20;

/// A will to publish after `delay` seconds unless `client_id` connects again meanwhile.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DelayedWill {
    pub client_id: String,
    /// The connection whose will it is (the endpoint's id for it).
    pub connection: u64,
    pub identity: Option<Arc<str>>,
    /// The revocation log's position when its credentials were checked.
    pub checked_at: LogPosition,
    pub will: Will,
    pub delay: u32,
}

/// A will waiting for its delay, with the identity its device had authenticated as.
pub struct PendingWill {
    timer: SpawnHandle,
    pub will: Will,
    pub identity: Option<Arc<str>>,
    /// Only a revocation past it drops the will (`revoking`).
    pub checked_at: LogPosition,
}

/// The wills waiting, by client id (one each), and their bytes.
#[derive(Default)]
pub struct PendingWills {
    by_client: HashMap<String, PendingWill>,
    bytes: usize,
}

fn size(will: &Will) -> usize {
    will.topic.len() + will.payload.len()
}

impl PendingWills {
    /// Takes the will waiting for `client_id`, its timer cancelled.
    pub fn take(
        &mut self,
        client_id: &str,
        ctx: &mut Context<DeviceEndpoint>,
    ) -> Option<PendingWill> {
        let pending = self.by_client.remove(client_id)?;
        ctx.cancel_future(pending.timer);
        self.bytes -= size(&pending.will);
        Some(pending)
    }

    /// Takes the will waiting for `client_id` if it was set under credentials checked
    /// before `seq` (which revokes them), its timer cancelled.
    pub fn take_checked_before(
        &mut self,
        client_id: &str,
        seq: LogPosition,
        ctx: &mut Context<DeviceEndpoint>,
    ) -> Option<PendingWill> {
        let pending = self.by_client.get(client_id)?;
        match pending.checked_at < seq {
            true => self.take(client_id, ctx),
            false => None,
        }
    }

    fn has_room_for(&self, will: &Will) -> bool {
        self.bytes + size(will) <= PENDING_WILLS_MAX_BYTES
    }

    fn insert(&mut self, client_id: String, pending: PendingWill) {
        self.bytes += size(&pending.will);
        self.by_client.insert(client_id, pending);
    }

    pub fn len(&self) -> usize {
        self.by_client.len()
    }
}

/// Publishes `will` of `client_id` (authenticated as `identity`) now: it is stored like any
/// message from the device, bound to its identity like them.
pub fn publish(
    pipeline: &Pipeline,
    telemetry: &Telemetry,
    (client_id, identity): (&str, Option<Arc<str>>),
    will: Will,
) {
    Event::WillPublished {
        client_id,
        topic: &will.topic,
    }
    .emit(telemetry);
    let from = (client_id.to_owned(), identity);
    let message = Pipeline::message(will.topic, will.payload, from, false);
    // A will is no sign of life: the fleet counts it, and leaves the presence alone.
    let stored = pipeline.with_source(Source::Will).ingest(vec![message]);
    let telemetry = telemetry.clone();
    actix_rt::spawn(async move {
        if let Err(not_stored) = stored.await {
            Event::StoreFailed {
                error: &format!("will message: {not_stored}"),
                requests: 1,
            }
            .emit(&telemetry);
        }
    });
}

impl Handler<DelayedWill> for DeviceEndpoint {
    type Result = ();

    fn handle(&mut self, msg: DelayedWill, ctx: &mut Context<Self>) {
        let DelayedWill {
            client_id,
            connection,
            identity,
            checked_at,
            will,
            delay,
        } = msg;
        let from = (client_id.as_str(), identity.clone());
        match self.successor(&client_id, connection) {
            Some(Successor::ContinuedSession) => return,
            Some(Successor::StartedClean) => {
                return publish(&self.links.pipeline, &self.telemetry, from, will)
            }
            None => {}
        }
        if !self.pending_wills.has_room_for(&will)
            || self.pending_wills.len() >= self.settings.max_connections
        {
            // No room to wait: publishing early beats losing it.
            return publish(&self.links.pipeline, &self.telemetry, from, will);
        }
        // An older will of this client id would have been taken when this connection
        // began; one left (it cannot be, but a timer must never outlive its entry) goes.
        let _older = self.pending_wills.take(&client_id, ctx);
        let id = client_id.clone();
        let timer = ctx.run_later(
            Duration::from_secs(u64::from(delay)),
            move |endpoint, ctx| {
                if let Some(pending) = endpoint.pending_wills.take(&id, ctx) {
                    let from = (id.as_str(), pending.identity);
                    publish(
                        &endpoint.links.pipeline,
                        &endpoint.telemetry,
                        from,
                        pending.will,
                    );
                }
            },
        );
        let pending = PendingWill {
            timer,
            will,
            identity,
            checked_at,
        };
        self.pending_wills.insert(client_id, pending);
    }
}
