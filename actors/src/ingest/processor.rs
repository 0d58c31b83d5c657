//! `Processor`: parses and validates one message into readings or a dead letter.
//!
//! Stateless. A panic while handling a message is caught: that message becomes a dead
//! letter with reason `processor panic: ...`, which counts toward its device's breaker like
//! any rejection, and the processor carries on. It is not restarted: a panic tied to one
//! message is that input's doing, and must not count toward the restart intensity, or any
//! client able to trigger one could stop Eliot (eleven did, once). It stays under a
//! supervisor, for a stop of another kind.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::rules::{Rejection, Rules};
use super::validate::validate;
use crate::message::{is_device_id, Origin, Outcome, Reading};
use crate::observe::{Event, Queued, Telemetry};
use crate::settings::Problems;
use crate::supervision::{catch_panic, Restarts};

/// The `[processors]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorSettings {
    /// How many processor actors (on the connections' thread; each restarts on its own).
    pub count: usize,
    /// Capacity of each processor's mailbox; senders wait when it is full.
    pub mailbox: usize,
}

impl ProcessorSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.check((1..=64).contains(&self.count), "count", "expected 1 to 64");
        problems.at_least("mailbox", self.mailbox, 1);
    }
}

/// One message, exactly as it arrived.
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub client_id: String,
    /// The device the client authenticated as, if it did: the topic must name it.
    pub identity: Option<Arc<str>>,
    pub received_at: OffsetDateTime,
    /// A QoS 1 or 2 re-send (DUP): it may have been stored already.
    pub redelivered: bool,
    /// The dead letter this message is a replay of (`dead_letters.id`), if it is one.
    pub replay_of: Option<i64>,
}

/// The messages a connection read in one go; answered with one outcome per message, in
/// the same order.
#[derive(actix::Message)]
#[rtype(result = "Vec<Outcome>")]
pub struct Process {
    pub messages: Vec<Message>,
    /// Counts this request in the processors' queue until it is handled.
    pub queued: Queued,
}

pub struct Processor {
    rules: Arc<Rules>,
    /// Restart bookkeeping; its child name (`processor-N`) is how health and logs know it.
    restarts: Restarts,
    telemetry: Telemetry,
}

impl Processor {
    /// `restarts` must be named `processor-N`.
    pub fn new(rules: Arc<Rules>, restarts: Restarts, telemetry: &Telemetry) -> Self {
        let telemetry = telemetry.for_actor(restarts.child());
        Processor {
            rules,
            restarts,
            telemetry,
        }
    }

    /// The message's readings, or why it is refused and the class of that.
    fn process(&self, msg: &Message) -> Result<Vec<Reading>, (String, &'static str)> {
        fail::fail_point!("processor::process");
        // Drills: a "poison" payload that makes the processor fail.
        fail::fail_point!(
            "processor::poison",
            msg.payload.starts_with(b"POISON"),
            |_| Ok(Vec::new())
        );
        bound(&self.rules, msg)
            .and_then(|()| validate(&self.rules, &msg.topic, &msg.payload, msg.received_at))
            .map_err(|rejection| (rejection.to_string(), rejection.class()))
    }
}

/// A client that authenticated publishes as itself only: the topic must name its device
/// (and `validate` holds the payload's `device_id` to the topic's).
fn bound(rules: &Rules, msg: &Message) -> Result<(), Rejection> {
    let Some(identity) = &msg.identity else {
        return Ok(());
    };
    match rules.topic.device_id(&msg.topic) {
        Some(device) if device != &**identity => Err(Rejection::IdentityMismatch {
            identity: identity.as_ref().into(),
            topic: device.into(),
        }),
        _ => Ok(()),
    }
}

/// What becomes of the message itself: moved, not copied, into its outcome. It is
/// attributed to the device the client authenticated as, else to the one its topic names
/// if that is a valid device id (a dead letter from anything else is nobody's).
fn origin(rules: &Rules, msg: Message) -> Origin {
    let device_id = match &msg.identity {
        Some(identity) => Some(identity.to_string()),
        None => rules
            .topic
            .device_id(&msg.topic)
            .filter(|id| is_device_id(id))
            .map(str::to_owned),
    };
    Origin {
        device_id,
        topic: msg.topic,
        payload: msg.payload,
        client_id: msg.client_id,
        received_at: msg.received_at,
        redelivered: msg.redelivered,
        replay_of: msg.replay_of,
    }
}

impl Actor for Processor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Stateless: nothing to set up once the backoff (if any) has passed.
        self.restarts.start(ctx, |_, _| {});
    }
}

impl Supervised for Processor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.restarts.restarting("stopped".into());
    }
}

crate::answers_pings!(Processor);

impl Handler<Process> for Processor {
    type Result = MessageResult<Process>;

    fn handle(&mut self, batch: Process, _: &mut Context<Self>) -> Self::Result {
        let outcomes = batch
            .messages
            .into_iter()
            .map(|msg| self.process_logged(msg))
            .collect();
        MessageResult(outcomes)
    }
}

impl Processor {
    /// Processes one message; a panic dead-letters it, and the processor goes on.
    fn process_logged(&mut self, msg: Message) -> Outcome {
        let started = Instant::now();
        let processed = catch_panic(|| self.process(&msg)).unwrap_or_else(|panic| {
            Event::ActorPanicked { panic: &panic }.emit(&self.telemetry);
            Err((format!("processor panic: {panic}"), "panic"))
        });
        match &processed {
            Ok(readings) => Event::MessageProcessed {
                client_id: &msg.client_id,
                topic: &msg.topic,
                readings: readings.len(),
                took: started.elapsed(),
            }
            .emit(&self.telemetry),
            Err((reason, class)) => Event::MessageRejected {
                client_id: &msg.client_id,
                topic: &msg.topic,
                class,
                reason,
            }
            .emit(&self.telemetry),
        }
        match processed {
            Ok(readings) => Outcome::Accepted {
                readings,
                origin: origin(&self.rules, msg),
            },
            Err((reason, _)) => Outcome::Rejected(origin(&self.rules, msg).dead_letter(reason)),
        }
    }
}

/// The processors of the tree, handed out round-robin.
#[derive(Clone)]
pub struct Processors {
    addrs: Arc<[Addr<Processor>]>,
    next: Arc<AtomicUsize>,
}

impl Processors {
    pub fn new(addrs: Vec<Addr<Processor>>) -> Self {
        assert!(!addrs.is_empty(), "the tree needs at least one processor");
        Processors {
            addrs: addrs.into(),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn pick(&self) -> &Addr<Processor> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.addrs[i % self.addrs.len()]
    }
}
