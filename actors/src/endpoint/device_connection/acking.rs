//! Acking: the PUBLISHes read in one turn go down the pipeline together; once their
//! outcomes are committed they are settled in the `AckQueue`, whose stored prefix is
//! acked in arrival order, and each new rejection is told to the device guard.

use std::time::Instant;

use actix::prelude::*;

use super::super::ack_queue::Arrival;
use super::super::intake::Permit;
use super::DeviceConnection;
use crate::mqtt::packet::*;
use crate::observe::Event;
use crate::pipeline::{Ingested, Pipeline};
use crate::store::NotStored;
use crate::supervision::Rejected;

/// The PUBLISHes one turn read, sent down the pipeline together.
#[derive(Clone, Copy)]
pub(super) struct Batch {
    /// The queue's sequence number of the first, and how many.
    first: u64,
    count: usize,
    read_at: Instant,
}

impl DeviceConnection {
    pub(super) fn publish(&mut self, p: Publish, permit: Option<Permit>, ctx: &mut Context<Self>) {
        Event::PublishReceived {
            client_id: &self.connect.client_id,
            qos: p.qos as u8,
            bytes: p.payload.len(),
        }
        .emit(&self.telemetry);
        let seq = match self.acks.arrive(p.qos, p.pkid, permit) {
            Arrival::Store { seq } => seq,
            // A QoS 2 resend of a stored message: its PUBREC only, in its turn.
            Arrival::AlreadyStored => return self.send_acks(),
        };
        if self.unsent.is_empty() {
            self.unsent_from = seq;
            self.unsent_since = Instant::now();
            // Runs once this turn's packets are handled: they go down the pipeline together.
            ctx.spawn(actix::fut::ready(()).map(|(), conn: &mut Self, ctx| conn.flush(ctx)));
        }
        let from = (self.connect.client_id.clone(), self.identity.clone());
        self.unsent
            .push(Pipeline::message(p.topic, p.payload, from, p.dup));
    }

    /// Sends the PUBLISHes read this turn down the pipeline, as one batch.
    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        let messages = std::mem::take(&mut self.unsent);
        let batch = Batch {
            first: self.unsent_from,
            count: messages.len(),
            read_at: self.unsent_since,
        };
        ctx.spawn(
            self.pipeline
                .ingest(messages)
                .into_actor(self)
                .map(move |committed, conn, ctx| conn.on_committed(batch, committed, ctx)),
        );
    }

    /// Settles the PUBLISHes of `batch`.
    pub(super) fn on_committed(
        &mut self,
        batch: Batch,
        committed: Result<Vec<Ingested>, NotStored>,
        ctx: &mut Context<Self>,
    ) {
        self.last_heard = Instant::now();
        let Batch {
            first,
            count,
            read_at,
        } = batch;
        match committed {
            Ok(ingested) => {
                Event::OutcomesCommitted {
                    client_id: &self.connect.client_id,
                    messages: count,
                    waited: read_at.elapsed(),
                }
                .emit(&self.telemetry);
                self.acks.settle(first, count, true);
                let rejected = ingested
                    .iter()
                    .filter(|how| **how == Ingested::DeadLettered);
                for _ in rejected {
                    self.count_rejection(ctx);
                }
            }
            Err(not_stored) => {
                self.acks.settle(first, count, false);
                self.begin_close(
                    format!("message not stored: {not_stored}"),
                    Some(CloseReason::ServerBusy),
                    true,
                    ctx,
                );
            }
        }
        self.send_acks();
        self.finish_if_drained(ctx);
    }

    /// Writes the acks of the stored prefix of the queue, in arrival order.
    pub(super) fn send_acks(&mut self) {
        let (mut pubacks, mut pubrecs) = (0, 0);
        for ack in self.acks.take_acks() {
            match ack {
                Outbound::PubAck(_) => pubacks += 1,
                Outbound::PubRec(_) => pubrecs += 1,
                _ => {}
            }
            self.send(ack);
        }
        if pubacks + pubrecs > 0 {
            Event::AcksSent {
                client_id: &self.connect.client_id,
                pubacks,
                pubrecs,
            }
            .emit(&self.telemetry);
        }
    }

    /// Tells the device guard; if the device's breaker trips, the connection closes.
    pub(super) fn count_rejection(&mut self, ctx: &mut Context<Self>) {
        let rejected = Rejected {
            client_id: self.guard_key.clone(),
        };
        self.guard
            .send(rejected)
            .into_actor(self)
            .map(|tripped, conn, ctx| {
                if let Ok(Some(cooldown)) = tripped {
                    let reason = format!("too many rejected messages: refused for {cooldown:?}");
                    conn.begin_close(reason, Some(CloseReason::QuotaExceeded), true, ctx);
                }
            })
            .spawn(ctx);
    }
}
