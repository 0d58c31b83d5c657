//! The fleet's rows reach the store writer here: they wait for the next batch and are
//! written in its transaction, so device state costs no transaction of its own. With no
//! batch pending, they start the batch timer as a message would (`store.batch_delay`).
//! Nobody waits for their commit: device state is not acked to anyone.

use actix::prelude::*;

use super::super::device_state::FleetWrites;
use super::store_writer::StoreWriter;

/// Device rows and events to write with the next batch. Each fleet shard has at most one
/// of these in flight (it waits for the writer's mailbox with `send().await`), so what
/// waits here is bounded by the shards' own bounds.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PersistFleet(pub FleetWrites);

impl Handler<PersistFleet> for StoreWriter {
    type Result = ();

    fn handle(&mut self, PersistFleet(writes): PersistFleet, ctx: &mut Context<Self>) {
        if writes.is_empty() {
            return;
        }
        self.fleet_pending.append(writes);
        if self.flush_timer.is_none() {
            let delay = self.settings.batch_delay;
            self.flush_timer = Some(ctx.run_later(delay, |writer, ctx| {
                writer.flush_timer = None;
                writer.flush(ctx);
            }));
        }
    }
}
