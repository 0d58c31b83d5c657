//! Wills: published down the same pipeline as a PUBLISH, at once or, when the device asked
//! for a v5 Will Delay Interval, later by the device endpoint, unless the device comes back
//! to its session first [MQTT-3.1.3-9].

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::device_endpoint::DeviceEndpoint;
use crate::mqtt::packet::Will;
use crate::observe::{Event, Telemetry};
use crate::pipeline::Pipeline;

/// A will to publish after `delay` seconds unless `client_id` connects again meanwhile.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DelayedWill {
    pub client_id: String,
    pub identity: Option<Arc<str>>,
    pub will: Will,
    pub delay: u32,
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
    let stored = pipeline.ingest(vec![message]);
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
            identity,
            will,
            delay,
        } = msg;
        if self.pending_wills.len() >= self.settings.max_connections {
            // No room to wait: publishing early beats losing it.
            let from = (client_id.as_str(), identity);
            return publish(&self.links.pipeline, &self.telemetry, from, will);
        }
        let id = client_id.clone();
        let timer = ctx.run_later(Duration::from_secs(u64::from(delay)), move |endpoint, _| {
            if let Some((_, (will, identity))) = endpoint.pending_wills.remove(&id) {
                let from = (id.as_str(), identity);
                publish(&endpoint.links.pipeline, &endpoint.telemetry, from, will);
            }
        });
        self.pending_wills
            .insert(client_id, (timer, (will, identity)));
    }
}
