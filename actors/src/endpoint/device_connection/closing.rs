//! How a device connection ends: whatever the reason, it stops taking packets, lets
//! every message it already read reach the store, writes the last acks (and a v5
//! DISCONNECT with the reason), closes its sending side, and keeps reading and
//! discarding until the device closes too (or a grace period passes), so the device is
//! not reset before it has read the last acks. Keep-alive expiry, takeover, shutdown
//! and the will are here too.

use std::sync::atomic::Ordering;
use std::time::Duration;

use actix::io::WriteHandler;
use actix::prelude::*;

use super::super::will::{self, DelayedWill};
use super::{CredentialsRevoked, DeviceConnection, Drain, TakenOver, CLOSE_GRACE};
use crate::fleet::CloseConnection;
use crate::mqtt::packet::*;
use crate::mqtt::CodecError;
use crate::observe::Event;

/// Why the connection is closing, and what that implies.
pub(super) struct Closing {
    pub(super) reason: String,
    /// Sent (v5 only) once every in-flight ack has been written.
    disconnect: Option<CloseReason>,
    pub(super) publish_will: bool,
}

impl DeviceConnection {
    /// Closes because the device broke the protocol; logged as a protocol error.
    pub(super) fn close_for(
        &mut self,
        error: String,
        reason: CloseReason,
        ctx: &mut Context<Self>,
    ) {
        Event::ProtocolError {
            client_id: &self.connect.client_id,
            error: &error,
        }
        .emit(&self.telemetry);
        self.begin_close(error, Some(reason), true, ctx);
    }

    /// Stops taking packets and closes once every message already read is stored and acked.
    pub(super) fn begin_close(
        &mut self,
        reason: String,
        disconnect: Option<CloseReason>,
        publish_will: bool,
        ctx: &mut Context<Self>,
    ) {
        if self.closing.is_some() {
            return;
        }
        self.closing = Some(Closing {
            reason,
            disconnect,
            publish_will,
        });
        self.finish_if_drained(ctx);
    }

    pub(super) fn finish_if_drained(&mut self, ctx: &mut Context<Self>) {
        let Some(closing) = &mut self.closing else {
            return;
        };
        if self.acks.pending() > 0 {
            return;
        }
        if let Some(reason) = closing.disconnect.take() {
            self.send(Outbound::Disconnect(reason));
        }
        if let Some(writer) = &mut self.writer {
            // The writer flushes, then calls `finished`, which drops it.
            writer.close();
            ctx.run_later(CLOSE_GRACE, |_, ctx| ctx.stop());
        }
        self.stop_if_done(ctx);
    }

    pub(super) fn stop_if_done(&mut self, ctx: &mut Context<Self>) {
        if self.closing.is_some()
            && self.acks.pending() == 0
            && self.writer.is_none()
            && !self.readable
        {
            ctx.stop();
        }
    }

    /// The keep-alive (1.5 × the device's, when it has one) and the packet timeout.
    pub(super) fn check_deadlines(&mut self, ctx: &mut Context<Self>) {
        if self.closing.is_some() {
            return;
        }
        if let Some(age) = self.partial.age().filter(|age| *age > self.packet_timeout) {
            let error = format!("a packet still incomplete after {age:?} (mqtt.packet_timeout)");
            return self.close_for(error, CloseReason::ProtocolError, ctx);
        }
        if let Some(age) = self
            .replies
            .full_for()
            .filter(|age| *age > self.packet_timeout)
        {
            let queued = self.replies.queued();
            let reason = format!(
                "{queued} bytes of replies unread for {age:?}: the device does not read its \
                 socket (mqtt.packet_timeout)"
            );
            // No DISCONNECT: it would only join what the device does not read.
            return self.begin_close(reason, None, true, ctx);
        }
        if self.connect.keep_alive == 0 {
            return;
        }
        let limit = Duration::from_millis(u64::from(self.connect.keep_alive) * 1500);
        // While Eliot is not reading, the device's silence is Eliot's doing.
        let backpressure = self.waiting_for_room.load(Ordering::Relaxed);
        if !backpressure && self.last_heard.elapsed() > limit {
            self.begin_close(
                format!("keep-alive expired: nothing heard for {limit:?}"),
                Some(CloseReason::KeepAliveTimeout),
                true,
                ctx,
            );
        }
    }

    /// Publishes the will now, or hands it to the endpoint to publish after its delay
    /// (no later than the session's end) unless the device comes back first.
    pub(super) fn publish_will(&self) {
        let Some(will) = self.connect.will.clone() else {
            return;
        };
        let session_expiry = match self.expiry_at_end {
            Some(seconds) => seconds,
            None if self.session_kept => self.connect.session_expiry.unwrap_or(u32::MAX),
            None => 0,
        };
        let delay = will.delay.min(session_expiry);
        let client_id = self.connect.client_id.clone();
        if delay == 0 {
            let from = (client_id.as_str(), self.identity.clone());
            return will::publish(&self.pipeline, &self.telemetry, from, will);
        }
        self.wills.do_send(DelayedWill {
            client_id,
            connection: self.id,
            identity: self.identity.clone(),
            checked_at: self.checked_at,
            will,
            delay,
        });
    }
}

impl WriteHandler<CodecError> for DeviceConnection {
    /// Nothing more can reach the device; what it already sent still goes to the store.
    fn error(&mut self, err: CodecError, ctx: &mut Context<Self>) -> Running {
        self.begin_close(format!("write failed: {err}"), None, true, ctx);
        // `Stop` ends the writer (retrying the same failed write would spin), not the actor.
        Running::Stop
    }

    /// The writer is done (flushed after `close`, or failed).
    fn finished(&mut self, ctx: &mut Context<Self>) {
        // Reading must not wait for a writer that is gone: it goes on until the device
        // closes its side, as a close does.
        self.replies.writer_gone();
        // The writer's own future is still running this call (and borrowing the socket):
        // drop the writer on the next turn of the actor, not from inside it.
        ctx.spawn(actix::fut::ready(()).map(|(), conn: &mut Self, ctx| {
            conn.writer = None;
            conn.stop_if_done(ctx);
        }));
    }
}

impl Handler<TakenOver> for DeviceConnection {
    type Result = ();

    fn handle(&mut self, _: TakenOver, ctx: &mut Context<Self>) {
        self.begin_close(
            "a new connection took over this client id".into(),
            Some(CloseReason::SessionTakenOver),
            true,
            ctx,
        );
    }
}

impl Handler<CredentialsRevoked> for DeviceConnection {
    type Result = ();

    /// 0x87 Not authorized for a rotation as for a removal: what the device used to log in
    /// no longer holds. (0x8E Session taken over would say another connection replaced
    /// this one, which did not happen.) A device given the new secret reconnects with it.
    /// The will is not published: it was set under the revoked credentials.
    fn handle(&mut self, msg: CredentialsRevoked, ctx: &mut Context<Self>) {
        self.begin_close(msg.why.into(), Some(CloseReason::NotAuthorized), false, ctx);
    }
}

impl Handler<CloseConnection> for DeviceConnection {
    type Result = ();

    /// The fleet closes a device's connection (rotated, deleted): as a revocation does.
    fn handle(&mut self, msg: CloseConnection, ctx: &mut Context<Self>) {
        self.begin_close(msg.why.into(), Some(CloseReason::NotAuthorized), false, ctx);
    }
}

impl Handler<Drain> for DeviceConnection {
    type Result = ();

    fn handle(&mut self, msg: Drain, ctx: &mut Context<Self>) {
        self.drained.push(msg.done);
        self.begin_close(
            "server shutting down".into(),
            Some(CloseReason::ServerShuttingDown),
            false,
            ctx,
        );
    }
}
