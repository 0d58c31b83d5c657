//! The benchmark's baseline: what a competent user would write instead of Eliot. It
//! subscribes to a broker (Mosquitto), parses each reading, and inserts it into SQLite in
//! batched transactions; at QoS 1 it acks each message only after its transaction
//! committed, in the order received. With `--count-only` it does nothing but count (the
//! "bare drain": the ceiling of any broker-based design).
//!
//! # Usage
//!
//! ```text
//! cargo run --release --example baseline_subscriber -- --addr 127.0.0.1:1884 --qos 1 \
//!     --expect 100000 --db /tmp/baseline.db
//! ```
//!
//! It prints `ready` on stderr once subscribed (at the CONNACK, when the broker kept its
//! session, which holds the subscription: the SUBACK of the subscription made again may
//! come after the whole backlog), and when `--expect` messages are stored
//! (or counted) one JSON line on stdout: `{"stored": N, "duration_s": S, "rate": R}`,
//! timed from the first message received to the last commit.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use serde::Deserialize;

#[derive(Parser)]
struct Args {
    /// The broker.
    #[arg(long, default_value = "127.0.0.1:1883")]
    addr: std::net::SocketAddr,
    /// Subscription QoS: 0, or 1 with acks after commit.
    #[arg(long, default_value_t = 1)]
    qos: u8,
    /// Stop once this many messages are stored (or counted).
    #[arg(long)]
    expect: u64,
    /// The SQLite database (created).
    #[arg(long, default_value = "baseline.db")]
    db: std::path::PathBuf,
    /// Only count messages: no parsing, no storing.
    #[arg(long)]
    count_only: bool,
    /// Rows per transaction at most.
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
}

/// The reading, parsed the way a hand-written subscriber would.
#[derive(Deserialize)]
struct Reading {
    device_id: String,
    timestamp: String,
    sensor_type: String,
    data: serde_json::Value,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args = Args::parse();
    let qos = if args.qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let mut options = MqttOptions::new("baseline", args.addr.ip().to_string(), args.addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(false);
    options.set_manual_acks(true);
    options.set_inflight(1000);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 10_000);
    client.subscribe("devices/+/telemetry", qos).await.unwrap();

    // The event loop runs here; storing runs on its own thread, fed through a bounded
    // channel, and sends the acks back through the client (never awaited on this task).
    let (to_writer, from_loop) = mpsc::sync_channel::<Publish>(20_000);
    let (finished, mut writer_done) = tokio::sync::oneshot::channel();
    let writer = {
        let client = client.clone();
        std::thread::spawn(move || {
            write_loop(&args, from_loop, client);
            let _ = finished.send(());
        })
    };
    let mut ready = false;
    let mut say_ready = || {
        if !std::mem::replace(&mut ready, true) {
            eprintln!("ready");
        }
    };
    loop {
        let polled = tokio::select! {
            _ = &mut writer_done => break,
            polled = eventloop.poll() => polled,
        };
        match polled {
            Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.session_present => say_ready(),
            Ok(Event::Incoming(Packet::SubAck(_))) => say_ready(),
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if to_writer.send(publish).is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("connection error: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let _ = writer.join();
}

fn write_loop(args: &Args, publishes: mpsc::Receiver<Publish>, client: AsyncClient) {
    let mut db = rusqlite::Connection::open(&args.db).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE IF NOT EXISTS readings (device_id TEXT NOT NULL, sensor_type TEXT NOT NULL,
           ts TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (device_id, sensor_type, ts)) WITHOUT ROWID;",
    )
    .unwrap();
    let (mut stored, mut first) = (0u64, None::<Instant>);
    let mut batch = Vec::with_capacity(args.batch);
    while stored < args.expect {
        let Ok(publish) = publishes.recv() else {
            return;
        };
        first.get_or_insert_with(Instant::now);
        batch.push(publish);
        // Take whatever else is already waiting, up to a batch.
        while batch.len() < args.batch {
            match publishes.try_recv() {
                Ok(publish) => batch.push(publish),
                Err(_) => break,
            }
        }
        if !args.count_only {
            let tx = db.transaction().unwrap();
            {
                let mut insert = tx
                    .prepare_cached("INSERT OR IGNORE INTO readings VALUES (?1, ?2, ?3, ?4)")
                    .unwrap();
                for publish in &batch {
                    if let Ok(r) = serde_json::from_slice::<Reading>(&publish.payload) {
                        let data = r.data.to_string();
                        insert
                            .execute((&r.device_id, &r.sensor_type, &r.timestamp, &data))
                            .unwrap();
                    }
                }
            }
            tx.commit().unwrap();
        }
        for publish in batch.drain(..) {
            if publish.qos != QoS::AtMostOnce {
                // Acks after the commit, in the order received.
                let _ = client.try_ack(&publish);
            }
            stored += 1;
        }
    }
    let took = first.map_or(Duration::ZERO, |f| f.elapsed()).as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"stored": stored, "duration_s": took, "rate": stored as f64 / took})
    );
}
