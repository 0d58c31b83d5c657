//! One simulated device, an actor: makes its readings on schedule, hands them to its MQTT
//! link, and follows each message until it is acked.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, MessageResult, StreamHandler};
use bytes::Bytes;

use crate::fleet::DISCONNECT_LIMIT;
use crate::link::{link_events, open_link, Client, LinkEvent, CHANNEL_CAPACITY};
use crate::options::{Plan, Qos};
use crate::readings::{pad_to, reading_json, rfc3339_micros, Clock, Sensors, SENSOR_CYCLE};
use crate::rng::Rng;
use crate::stats::saturating_us;
use crate::totals::{add, subtract, Totals};

/// Readings a device keeps waiting for its connection before it skips new ones.
const OUTBOX_LIMIT: usize = 100;
/// Readings a late device publishes at once to catch up with its schedule; the rest are skipped.
const MAX_CATCH_UP: u32 = 3;

/// One message, from the moment it is made until it is acked.
struct Message {
    /// The exact bytes published; kept until acked so they can be sent again.
    payload: Bytes,
    /// Whether it is deliberately invalid JSON, to count dead letters apart from readings.
    malformed: bool,
    /// Whether it went out before: another PUBLISH of it is a re-send, not a new message.
    sent_before: bool,
}

/// A QoS 1 message sent and not yet acked.
struct InFlight {
    /// Its packet id, which its PUBACK carries.
    pkid: u16,
    /// When its PUBLISH went out, for the latency.
    sent_at: Instant,
    /// The message, re-sent if the server loses the session.
    message: Message,
}

/// Tells a device to stop and disconnect; it answers with the PUBLISH → PUBACK latency of
/// each message acked, in µs.
#[derive(actix::Message)]
#[rtype(result = "Vec<u32>")]
pub struct Finish;

/// A simulated device: one MQTT connection, one schedule of readings.
pub struct Device {
    /// The device id, also its MQTT client id and a level of its topic.
    id: String,
    /// `devices/{id}/telemetry`, built once rather than per reading.
    topic: String,
    /// What every device does.
    plan: Rc<Plan>,
    /// The fleet's counters, updated as things happen so the progress line is live.
    totals: Rc<Totals>,
    /// Hands publishes to the connection's event loop; only its `try_` calls are used, so the
    /// actor never waits on rumqttc.
    client: Option<Client>,
    /// Whether the connection is up (from CONNACK to an error): messages are handed to
    /// rumqttc only then, so what it drops on a reconnect is exactly what was handed.
    connected: bool,
    /// Whether a CONNACK ever arrived: later ones count as reconnects.
    ever_connected: bool,
    /// When the device stops making readings (`--duration`).
    stop_at: Option<Instant>,
    /// When the next scheduled reading is due (`--rate` > 0).
    next_due: Instant,
    /// Readings made so far, compared with `--count`.
    made: u64,
    /// False once the device has made its last reading.
    generating: bool,
    /// Set by `Finish`: nothing more is published.
    finishing: bool,
    /// Messages made and not yet handed to rumqttc (waiting for the connection or for room).
    outbox: VecDeque<Message>,
    /// Messages handed to rumqttc whose PUBLISH has not gone out yet. rumqttc sends them in
    /// order, so the next new `Outgoing::Publish` is the front one's.
    handed: VecDeque<Message>,
    /// QoS 1 messages sent and not acked, oldest first (Eliot acks in order, so an ack is
    /// usually the front one's).
    in_flight: VecDeque<InFlight>,
    /// PUBLISH → PUBACK latency of every acked message, in µs; merged at the end.
    latencies_us: Vec<u32>,
    /// The values the device reports, drifting from one reading to the next.
    sensors: Sensors,
    /// Makes every timestamp of the device unique and increasing.
    clock: Clock,
    /// The device's own random numbers (schedule offset, drift, malformed messages).
    rng: Rng,
}

impl Device {
    pub fn new(id: String, index: u64, plan: Rc<Plan>, totals: Rc<Totals>) -> Device {
        let mut rng = Rng::new(plan.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let now = Instant::now();
        let first_offset = plan.interval.unwrap_or_default().mul_f64(rng.unit());
        Device {
            topic: format!("devices/{id}/telemetry"),
            id,
            stop_at: plan.duration.map(|duration| now + duration),
            next_due: now + first_offset,
            sensors: Sensors::new(&mut rng),
            clock: Clock::default(),
            rng,
            plan,
            totals,
            client: None,
            connected: false,
            ever_connected: false,
            made: 0,
            generating: true,
            finishing: false,
            outbox: VecDeque::new(),
            handed: VecDeque::new(),
            in_flight: VecDeque::new(),
            latencies_us: Vec::new(),
        }
    }

    /// Opens the connection; its events arrive as a stream handled by this actor.
    fn connect(&mut self, ctx: &mut Context<Self>) {
        let (client, eventloop) = open_link(&self.id, &self.plan);
        self.client = Some(client);
        ctx.add_stream(link_events(eventloop, self.rng.next_u64()));
    }

    /// Whether the device may make another reading now.
    fn may_make(&self, now: Instant) -> bool {
        !self.finishing
            && !self.totals.stop.get()
            && self.plan.count.is_none_or(|count| self.made < count)
            && self.stop_at.is_none_or(|stop_at| now < stop_at)
    }

    fn stop_generating(&mut self) {
        if self.generating {
            self.generating = false;
            subtract(&self.totals.generating, 1);
            if self.totals.generating.get() == 0 {
                self.totals.publishing_ended.set(Some(Instant::now()));
            }
        }
    }

    /// With `--rate`: makes the readings due, then sleeps until the next one.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let Some(interval) = self.plan.interval else {
            return;
        };
        let now = Instant::now();
        let mut made_now = 0;
        while self.next_due <= now && made_now < MAX_CATCH_UP && self.may_make(now) {
            self.schedule_reading();
            self.next_due += interval;
            made_now += 1;
        }
        self.fill();
        if !self.may_make(now) {
            self.stop_generating();
            return;
        }
        self.skip_missed(now, interval);
        ctx.run_later(self.next_due - now, Self::tick);
    }

    /// A device late by more than `MAX_CATCH_UP` readings skips the rest: no bursts.
    fn skip_missed(&mut self, now: Instant, interval: Duration) {
        if self.next_due > now {
            return;
        }
        let missed = ((now - self.next_due).as_secs_f64() / interval.as_secs_f64()) as u64 + 1;
        add(&self.totals.skipped, missed);
        self.next_due += interval.mul_f64(missed as f64);
    }

    /// Makes a scheduled reading, unless too many already wait for the connection.
    fn schedule_reading(&mut self) {
        if self.outbox.len() >= OUTBOX_LIMIT {
            add(&self.totals.skipped, 1);
            return;
        }
        let message = self.make_message();
        self.outbox.push_back(message);
    }

    fn make_message(&mut self) -> Message {
        let sensor = SENSOR_CYCLE[(self.made % SENSOR_CYCLE.len() as u64) as usize];
        self.made += 1;
        add(&self.totals.outstanding, 1);
        let timestamp = rfc3339_micros(self.clock.next());
        let fields = self.sensors.fields(sensor, &mut self.rng);
        let mut payload = reading_json(&self.id, &timestamp, sensor, &fields);
        if let Some(size) = self.plan.payload_size {
            pad_to(&mut payload, size);
        }
        let malformed = self.rng.unit() < self.plan.malformed;
        if malformed {
            payload.pop(); // the closing brace: no longer JSON
        }
        Message {
            payload: Bytes::from(payload),
            malformed,
            sent_before: false,
        }
    }

    /// Hands messages to rumqttc while its request channel has room; with `--rate 0`, makes
    /// new ones as room appears.
    fn fill(&mut self) {
        if !self.connected || self.finishing {
            return;
        }
        let fast = self.plan.interval.is_none();
        while self.handed.len() < CHANNEL_CAPACITY {
            let message = match self.outbox.pop_front() {
                Some(message) => message,
                None if fast && self.may_make(Instant::now()) => self.make_message(),
                None => break,
            };
            if !self.hand_over(message) {
                break;
            }
        }
        if fast && !self.may_make(Instant::now()) {
            self.stop_generating();
        }
    }

    /// Gives one message to rumqttc; if its channel is full, the message waits in the outbox.
    fn hand_over(&mut self, message: Message) -> bool {
        let client = self.client.as_ref().expect("connected means a client");
        if client.try_publish(&self.topic, self.plan.qos, message.payload.clone()) {
            self.handed.push_back(message);
            true
        } else {
            self.outbox.push_front(message);
            false
        }
    }

    fn on_connected(&mut self, session_present: bool) {
        self.connected = true;
        add(&self.totals.connected, 1);
        let peak = self
            .totals
            .connected_peak
            .get()
            .max(self.totals.connected.get());
        self.totals.connected_peak.set(peak);
        if self.ever_connected {
            add(&self.totals.reconnects, 1);
        }
        self.ever_connected = true;
        if !session_present {
            self.requeue_unacked();
        }
        self.fill();
    }

    /// Without a session, rumqttc has dropped every message it held: send them again, in
    /// their order, before anything new.
    fn requeue_unacked(&mut self) {
        let handed = std::mem::take(&mut self.handed);
        let sent = self.in_flight.drain(..).map(|entry| entry.message);
        let mut requeued: VecDeque<Message> = sent.chain(handed).collect();
        requeued.append(&mut self.outbox);
        self.outbox = requeued;
    }

    fn on_failed(&mut self, reason: String) {
        add(&self.totals.errors, 1);
        self.totals.first_error.borrow_mut().get_or_insert(reason);
        if self.connected {
            self.connected = false;
            subtract(&self.totals.connected, 1);
        }
    }

    /// A PUBLISH went out: the front handed message, or a re-send of an in-flight one.
    fn on_published(&mut self, pkid: u16) {
        let now = Instant::now();
        if let Some(entry) = self.in_flight.iter_mut().find(|entry| entry.pkid == pkid) {
            entry.sent_at = now; // rumqttc re-sent it in a resumed session
            add(&self.totals.resent, 1);
            return;
        }
        let Some(mut message) = self.handed.pop_front() else {
            return;
        };
        self.count_sent(&message);
        if self.plan.qos == Qos::AtMostOnce {
            subtract(&self.totals.outstanding, 1);
        } else {
            message.sent_before = true;
            self.in_flight.push_back(InFlight {
                pkid,
                sent_at: now,
                message,
            });
        }
        self.fill();
    }

    fn count_sent(&self, message: &Message) {
        if message.sent_before {
            add(&self.totals.resent, 1);
            return;
        }
        add(&self.totals.sent, 1);
        self.totals.last_sent.set(Some(Instant::now()));
        add(&self.totals.payload_bytes, message.payload.len() as u64);
        if message.malformed {
            add(&self.totals.malformed, 1);
        }
    }

    fn on_acked(&mut self, pkid: u16) {
        let Some(position) = self.in_flight.iter().position(|entry| entry.pkid == pkid) else {
            return;
        };
        let entry = self.in_flight.remove(position).expect("found above");
        self.latencies_us
            .push(saturating_us(entry.sent_at.elapsed()));
        add(&self.totals.acked, 1);
        if entry.message.malformed {
            add(&self.totals.malformed_acked, 1);
        }
        subtract(&self.totals.outstanding, 1);
        self.totals.last_ack.set(Some(Instant::now()));
        self.fill();
    }

    /// Messages made and never sent at all.
    fn count_unsent(&self) -> u64 {
        let waiting = self.outbox.iter().chain(&self.handed);
        waiting.filter(|message| !message.sent_before).count() as u64
    }
}

impl Actor for Device {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        add(&self.totals.started, 1);
        add(&self.totals.alive, 1);
        add(&self.totals.generating, 1);
        self.connect(ctx);
        if self.plan.interval.is_some() {
            let delay = self.next_due.saturating_duration_since(Instant::now());
            ctx.run_later(delay, Self::tick);
        }
        if let Some(stop_at) = self.stop_at {
            let delay = stop_at.saturating_duration_since(Instant::now());
            ctx.run_later(delay, |device, _| device.stop_generating());
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        subtract(&self.totals.alive, 1);
        if self.connected {
            subtract(&self.totals.connected, 1);
        }
        self.stop_generating();
    }
}

impl StreamHandler<LinkEvent> for Device {
    fn handle(&mut self, event: LinkEvent, ctx: &mut Context<Self>) {
        match event {
            LinkEvent::Connected { session_present } => self.on_connected(session_present),
            LinkEvent::Published(pkid) => self.on_published(pkid),
            LinkEvent::Acked(pkid) => self.on_acked(pkid),
            LinkEvent::Failed(reason) => self.on_failed(reason),
            LinkEvent::DisconnectSent => ctx.stop(),
            LinkEvent::Other => {}
        }
    }
}

impl Handler<Finish> for Device {
    type Result = MessageResult<Finish>;

    fn handle(&mut self, _: Finish, ctx: &mut Context<Self>) -> Self::Result {
        self.finishing = true;
        self.stop_generating();
        add(&self.totals.unsent, self.count_unsent());
        let disconnecting =
            self.connected && self.client.as_ref().is_some_and(Client::try_disconnect);
        if disconnecting {
            // Stops on `DisconnectSent`, or after this if the DISCONNECT cannot go out.
            ctx.run_later(DISCONNECT_LIMIT, |_, ctx| ctx.stop());
        } else {
            ctx.stop();
        }
        MessageResult(std::mem::take(&mut self.latencies_us))
    }
}
