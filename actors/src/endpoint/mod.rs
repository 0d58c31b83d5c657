//! The device endpoint: Eliot's own MQTT server for devices.
//!
//! - `device_endpoint`: the `DeviceEndpoint` actor: accepts sockets, keeps the registry of
//!   connected client ids, drains on shutdown; its `handshake` reads each CONNECT and
//!   answers it.
//! - `admission`: CONNECT → `Session` or `Refusal`: client id, device guard, session.
//! - `device_connection`: the `DeviceConnection` actor, one per device: its MQTT session,
//!   acks after commit, and how it closes (`closing`).
//! - `revoking`: closes the connections of devices whose credentials were revoked.
//! - `ack_queue`: arrival order, the stored prefix, QoS 2 states; no actor, no socket.
//! - `intake`: the packet stream gated by the in-flight window, the byte budget, the
//!   device's rate and its `backlog` of unread replies.
//! - `transport`: any byte stream a device connects over.
//! - `tls_listener`: the `TlsListener` actor, devices over TLS on a port of their own: it
//!   runs the handshakes with identity's server configuration (reloaded on SIGHUP) and
//!   hands each stream, with its certificate's names, to the `DeviceEndpoint`.
//! - `will`: publishing a will, at once or after its delay.
//! - `settings`: the `[mqtt]` section.

mod ack_queue;
mod admission;
mod awaiting_connect;
mod backlog;
mod device_connection;
mod device_endpoint;
mod intake;
mod revoking;
mod settings;
mod tls_listener;
mod transport;
mod will;

pub use device_endpoint::{
    Adopter, DeviceEndpoint, EndpointLinks, StopIntake, NAME as DEVICE_ENDPOINT,
};
pub use settings::EndpointSettings;
pub use tls_listener::{StopTls, TlsListener, NAME as TLS_LISTENER};
pub use transport::Transport;
