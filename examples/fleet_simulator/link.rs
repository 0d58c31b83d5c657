//! A device's MQTT link: rumqttc 3.1.1 or 5 behind one interface, its events as a stream,
//! reconnecting after an error with exponential backoff and jitter.

use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, Stream};

use crate::options::{Plan, Qos, Version};
use crate::rng::Rng;

/// Capacity of each device's rumqttc request channel: small, since 10,000 devices each have one.
pub const CHANNEL_CAPACITY: usize = 10;
/// MQTT keep-alive of every connection.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Session expiry asked for by MQTT 5 devices (a persistent session needs one > 0).
const SESSION_EXPIRY_S: u32 = 3600;
/// First delay before reconnecting after an error; it doubles up to `BACKOFF_MAX`.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// Longest delay before reconnecting.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A device's handle on its connection.
pub enum Client {
    V311(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

impl Client {
    /// Queues a PUBLISH without waiting; false if the request channel is full.
    pub fn try_publish(&self, topic: &str, qos: Qos, payload: Bytes) -> bool {
        match self {
            Client::V311(client) => client
                .try_publish(topic, qos.v311(), false, payload)
                .is_ok(),
            Client::V5(client) => client.try_publish(topic, qos.v5(), false, payload).is_ok(),
        }
    }

    /// Queues a DISCONNECT without waiting; false if the request channel is full.
    pub fn try_disconnect(&self) -> bool {
        match self {
            Client::V311(client) => client.try_disconnect().is_ok(),
            Client::V5(client) => client.try_disconnect().is_ok(),
        }
    }
}

impl Qos {
    fn v311(self) -> rumqttc::QoS {
        match self {
            Qos::AtMostOnce => rumqttc::QoS::AtMostOnce,
            Qos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        }
    }

    fn v5(self) -> rumqttc::v5::mqttbytes::QoS {
        match self {
            Qos::AtMostOnce => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
            Qos::AtLeastOnce => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        }
    }
}

/// A connection's event loop, polled by the device's event stream only.
pub enum EventLoop {
    V311(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

/// What a device needs to know of its connection's events.
pub enum LinkEvent {
    /// CONNACK received.
    Connected { session_present: bool },
    /// A PUBLISH went out with this packet id (0 at QoS 0).
    Published(u16),
    /// A PUBACK came in for this packet id.
    Acked(u16),
    /// The connection failed or could not be opened; rumqttc reconnects at the next poll.
    Failed(String),
    /// The DISCONNECT went out: the device may close.
    DisconnectSent,
    /// Anything else (pings).
    Other,
}

/// The client and event loop of device `id`; nothing is connected before the loop is polled.
pub fn open_link(id: &str, plan: &Plan) -> (Client, EventLoop) {
    match plan.version {
        Version::V311 => {
            let (client, eventloop) =
                rumqttc::AsyncClient::new(v311_options(id, plan), CHANNEL_CAPACITY);
            (Client::V311(client), EventLoop::V311(Box::new(eventloop)))
        }
        Version::V5 => {
            let (client, eventloop) =
                rumqttc::v5::AsyncClient::new(v5_options(id, plan), CHANNEL_CAPACITY);
            (Client::V5(client), EventLoop::V5(Box::new(eventloop)))
        }
    }
}

fn status_topic(id: &str) -> String {
    format!("devices/{id}/status")
}

fn v311_options(id: &str, plan: &Plan) -> rumqttc::MqttOptions {
    let mut options = rumqttc::MqttOptions::new(id, &plan.host, plan.port);
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_clean_session(false)
        .set_inflight(plan.inflight)
        .set_last_will(rumqttc::LastWill::new(
            status_topic(id),
            "offline",
            rumqttc::QoS::AtLeastOnce,
            false,
        ));
    if let Some((user, password)) = &plan.credentials {
        options.set_credentials(user, password);
    }
    options
}

fn v5_options(id: &str, plan: &Plan) -> rumqttc::v5::MqttOptions {
    use rumqttc::v5::mqttbytes::{v5::LastWill, QoS};
    let mut options = rumqttc::v5::MqttOptions::new(id, &plan.host, plan.port);
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_clean_start(false)
        .set_session_expiry_interval(Some(SESSION_EXPIRY_S))
        // Without it rumqttc sizes its in-flight table for 65,535 messages per connection.
        .set_outgoing_inflight_upper_limit(plan.inflight)
        .set_last_will(LastWill::new(
            status_topic(id),
            "offline",
            QoS::AtLeastOnce,
            false,
            None,
        ));
    if let Some((user, password)) = &plan.credentials {
        options.set_credentials(user, password);
    }
    options
}

impl EventLoop {
    async fn next_event(&mut self) -> LinkEvent {
        match self {
            EventLoop::V311(eventloop) => v311_event(eventloop.poll().await),
            EventLoop::V5(eventloop) => v5_event(eventloop.poll().await),
        }
    }
}

fn v311_event(polled: Result<rumqttc::Event, rumqttc::ConnectionError>) -> LinkEvent {
    use rumqttc::{Event, Outgoing, Packet};
    match polled {
        Ok(Event::Incoming(Packet::ConnAck(ack))) => LinkEvent::Connected {
            session_present: ack.session_present,
        },
        Ok(Event::Incoming(Packet::PubAck(ack))) => LinkEvent::Acked(ack.pkid),
        Ok(Event::Outgoing(Outgoing::Publish(pkid))) => LinkEvent::Published(pkid),
        Ok(Event::Outgoing(Outgoing::Disconnect)) => LinkEvent::DisconnectSent,
        Ok(_) => LinkEvent::Other,
        Err(error) => LinkEvent::Failed(error.to_string()),
    }
}

fn v5_event(polled: Result<rumqttc::v5::Event, rumqttc::v5::ConnectionError>) -> LinkEvent {
    use rumqttc::v5::{mqttbytes::v5::Packet, Event};
    use rumqttc::Outgoing;
    match polled {
        Ok(Event::Incoming(Packet::ConnAck(ack))) => LinkEvent::Connected {
            session_present: ack.session_present,
        },
        Ok(Event::Incoming(Packet::PubAck(ack))) => LinkEvent::Acked(ack.pkid),
        Ok(Event::Outgoing(Outgoing::Publish(pkid))) => LinkEvent::Published(pkid),
        Ok(Event::Outgoing(Outgoing::Disconnect)) => LinkEvent::DisconnectSent,
        Ok(_) => LinkEvent::Other,
        Err(error) => LinkEvent::Failed(error.to_string()),
    }
}

/// The connection's events as a stream. After an error it waits (backoff, its jitter drawn
/// from `seed`) before polling again, since rumqttc would reconnect at once; waiting only
/// delays a reconnection, which has no pings to miss.
pub fn link_events(eventloop: EventLoop, seed: u64) -> impl Stream<Item = LinkEvent> {
    let state = (eventloop, Backoff::new(seed), None::<Duration>);
    stream::unfold(state, |(mut eventloop, mut backoff, wait)| async move {
        if let Some(wait) = wait {
            actix_rt::time::sleep(wait).await;
        }
        let event = eventloop.next_event().await;
        let wait = match &event {
            LinkEvent::Failed(_) => Some(backoff.next_delay()),
            LinkEvent::Connected { .. } => {
                backoff.reset();
                None
            }
            _ => None,
        };
        Some((event, (eventloop, backoff, wait)))
    })
}

/// Exponential backoff with jitter between reconnections.
struct Backoff {
    /// The delay before the next attempt, before jitter.
    next: Duration,
    /// Jitter source, so devices that failed together do not reconnect together.
    rng: Rng,
}

impl Backoff {
    fn new(seed: u64) -> Backoff {
        Backoff {
            next: BACKOFF_FIRST,
            rng: Rng::new(seed),
        }
    }

    /// A delay between half and all of the current step; the step doubles up to the maximum.
    fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(BACKOFF_MAX);
        step.mul_f64(0.5 + 0.5 * self.rng.unit())
    }

    fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }
}
