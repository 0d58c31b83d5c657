//! Wills: published down the same pipeline as a PUBLISH, at once or, when the device asked
//! for a v5 Will Delay Interval, later by the device endpoint, unless the device comes back
//! to its session first [MQTT-3.1.3-9].

use actix::prelude::*;

use crate::mqtt::packet::Will;
use crate::observe::{Event, Telemetry};
use crate::pipeline::Pipeline;

/// A will to publish after `delay` seconds unless `client_id` connects again meanwhile.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DelayedWill {
    pub client_id: String,
    pub will: Will,
    pub delay: u32,
}

/// Publishes `will` of `client_id` now: it is stored like any message from the device.
pub fn publish(pipeline: &Pipeline, telemetry: &Telemetry, client_id: &str, will: Will) {
    Event::WillPublished {
        client_id,
        topic: &will.topic,
    }
    .emit(telemetry);
    let message = Pipeline::message(will.topic, will.payload, client_id.to_owned(), false);
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
