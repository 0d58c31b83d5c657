//! Publishes one reading to a running Eliot at QoS 1 and waits for its PUBACK, which
//! Eliot sends only once the reading (or its dead letter) is committed.
//!
//! ```text
//! cargo run --release                                  # in one terminal
//! cargo run --example publish_reading                  # the original example reading
//! cargo run --example publish_reading -- 127.0.0.1:1883 robot_042 '{"device_id":"robot_042",...}'
//! ```

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const ORIGINAL_EXAMPLE: &str = r#"{"device_id":"robot_001","timestamp":"2025-06-05T14:30:00Z","sensor_type":"gps","data":{"latitude":37.7749,"longitude":-122.4194,"accuracy":3.2}}"#;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: std::net::SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:1883").parse()?;
    let device = args.next().unwrap_or_else(|| "robot_001".into());
    let payload = args.next().unwrap_or_else(|| ORIGINAL_EXAMPLE.into());

    let mut options = MqttOptions::new(&device, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(10));
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let topic = format!("devices/{device}/telemetry");
    client
        .publish(&topic, QoS::AtLeastOnce, false, payload)
        .await?;

    let sent = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), eventloop.poll()).await?? {
            Event::Incoming(Packet::PubAck(_)) => {
                println!("stored: PUBACK for {topic} after {:?}", sent.elapsed());
                client.disconnect().await?;
                return Ok(());
            }
            Event::Incoming(Packet::ConnAck(ack)) => println!("connected: {:?}", ack.code),
            _ => {}
        }
    }
}
