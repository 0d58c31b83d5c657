//! A message's way through Eliot, whichever way it came in (a device's connection or an
//! upstream broker): read, processed into readings or rejected, its outcome committed,
//! its ack written; and a device's will published for it.

use std::time::Duration;

use slog::{debug, info, trace, warn, Logger};

use super::values::{micros, Clean};
use super::Observe;
use crate::observe::Metrics;

/// A PUBLISH was read (trace level: one per message).
pub struct PublishReceived<'a> {
    pub client_id: &'a str,
    pub qos: u8,
    pub bytes: usize,
}

impl Observe for PublishReceived<'_> {
    const NAME: &'static str = "publish_received";
    const MOVES: &'static [&'static str] = &["eliot_messages_received_total"];

    fn log(&self, log: &Logger) {
        let PublishReceived {
            client_id,
            qos,
            bytes,
        } = *self;
        trace!(log, "publish received";
            "event" => Self::NAME, "client_id" => %Clean(client_id), "qos" => qos, "bytes" => bytes)
    }

    fn count(&self, m: &Metrics) {
        m.messages_received[usize::from(self.qos.min(2))].inc();
    }
}

/// Acks written for the stored prefix of a connection's queue.
pub struct AcksSent<'a> {
    pub client_id: &'a str,
    pub pubacks: usize,
    pub pubrecs: usize,
}

impl Observe for AcksSent<'_> {
    const NAME: &'static str = "acks_sent";
    const MOVES: &'static [&'static str] = &["eliot_acks_sent_total"];

    fn log(&self, log: &Logger) {
        let AcksSent {
            client_id,
            pubacks,
            pubrecs,
        } = *self;
        trace!(log, "acks sent";
            "event" => Self::NAME, "client_id" => %Clean(client_id), "pubacks" => pubacks,
            "pubrecs" => pubrecs)
    }

    fn count(&self, m: &Metrics) {
        m.acks_sent[0].inc_by(self.pubacks as u64);
        m.acks_sent[1].inc_by(self.pubrecs as u64);
    }
}

/// The messages a connection read in one turn were committed, `waited` after the first
/// of them was read.
pub struct OutcomesCommitted<'a> {
    pub client_id: &'a str,
    pub messages: usize,
    pub waited: Duration,
}

impl Observe for OutcomesCommitted<'_> {
    const NAME: &'static str = "outcomes_committed";
    const MOVES: &'static [&'static str] = &["eliot_receive_to_commit_seconds"];

    fn log(&self, log: &Logger) {
        let OutcomesCommitted {
            client_id,
            messages,
            waited,
        } = *self;
        trace!(log, "outcomes committed";
            "event" => Self::NAME, "client_id" => %Clean(client_id), "messages" => messages,
            "waited_us" => micros(waited))
    }

    fn count(&self, m: &Metrics) {
        for _ in 0..self.messages {
            m.receive_to_commit_seconds
                .observe(self.waited.as_secs_f64());
        }
    }
}

/// A message was validated into readings.
pub struct MessageProcessed<'a> {
    pub client_id: &'a str,
    pub topic: &'a str,
    pub readings: usize,
    pub took: Duration,
}

impl Observe for MessageProcessed<'_> {
    const NAME: &'static str = "message_processed";
    const MOVES: &'static [&'static str] = &["eliot_messages_processed_total"];

    fn log(&self, log: &Logger) {
        let MessageProcessed {
            client_id,
            topic,
            readings,
            took,
        } = *self;
        debug!(log, "message processed";
            "event" => Self::NAME, "client_id" => %Clean(client_id), "topic" => %Clean(topic),
            "readings" => readings, "duration_us" => micros(took))
    }

    fn count(&self, m: &Metrics) {
        m.messages_processed.inc();
    }
}

/// A message was refused; it is kept whole as a dead letter.
pub struct MessageRejected<'a> {
    pub client_id: &'a str,
    pub topic: &'a str,
    /// The reason's class, from a small fixed set (a metric label).
    pub class: &'static str,
    pub reason: &'a str,
}

impl Observe for MessageRejected<'_> {
    const NAME: &'static str = "message_rejected";
    const MOVES: &'static [&'static str] = &["eliot_messages_rejected_total"];

    fn log(&self, log: &Logger) {
        let MessageRejected {
            client_id,
            topic,
            class,
            reason,
        } = *self;
        warn!(log, "message rejected, kept as a dead letter";
            "event" => Self::NAME, "client_id" => %Clean(client_id), "topic" => %Clean(topic),
            "class" => class, "reason" => %Clean(reason))
    }

    fn count(&self, m: &Metrics) {
        let class = [("class", self.class)];
        m.messages_rejected.get_or_create(&class).inc();
    }
}

/// A device's will message was published for it.
pub struct WillPublished<'a> {
    pub client_id: &'a str,
    pub topic: &'a str,
}

impl Observe for WillPublished<'_> {
    const NAME: &'static str = "will_published";
    const MOVES: &'static [&'static str] = &["eliot_wills_published_total"];

    fn log(&self, log: &Logger) {
        let WillPublished { client_id, topic } = *self;
        info!(log, "will message published";
            "event" => Self::NAME, "client_id" => %Clean(client_id), "topic" => %Clean(topic))
    }

    fn count(&self, m: &Metrics) {
        m.wills_published.inc();
    }
}
