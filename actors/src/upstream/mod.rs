//! The upstream broker mode: Eliot subscribes to an existing MQTT broker (Mosquitto,
//! EMQX, HiveMQ, AWS IoT) and ingests what devices publish there, through the same
//! pipeline as its own endpoint, acking each message only once it is stored.
//!
//! - `upstream_connection`: the `UpstreamConnection` actor, one per configured connection.
//! - `link`: rumqttc's two clients (3.1.1 and 5) behind one small vocabulary.
//! - `link_tasks`: the poll task and the ack task of one link.
//! - `in_order`: acks in receipt order, on the connection the messages came on.
//! - `status`: the devices' status topic (wills), told to the fleet in receipt order.
//! - `filter`: topic filters, shared subscriptions (`$share/<group>/...`) included.
//! - `tls`: the rustls client configuration, its files checked with clear errors.
//! - `settings`: the `[upstream]` section.

mod filter;
mod in_order;
mod link;
mod link_tasks;
mod settings;
mod status;
mod tls;
mod upstream_connection;

pub use settings::{Protocol, UpstreamSettings};
pub use tls::{client_config, TlsError};
pub use upstream_connection::{StopUpstream, UpstreamConnection, UpstreamLinks};
