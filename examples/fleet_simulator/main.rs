//! A fleet of simulated devices publishing telemetry to Eliot (or any MQTT server): a way
//! to watch Eliot work, and the load generator of its benchmarks.
//!
//! Every device is an actix actor owning its own MQTT connection (rumqttc). It publishes
//! readings in the original format to `devices/{id}/telemetry`, cycling through `gps`,
//! `temperature` and `battery` with values that drift slowly (a position around the device's
//! home point, a temperature around its own mean, a battery that drains and is recharged).
//! Timestamps are the current time, made strictly increasing per device, so no reading is a
//! duplicate of another. Each device sets a will (`devices/{id}/status`, `offline`, QoS 1),
//! asks for a persistent session, reconnects after an error with exponential backoff and
//! jitter (100 ms doubling to 5 s), and re-sends what was not acked when the server did not
//! keep its session (rumqttc re-sends it only when the session was kept).
//!
//! All devices run on one actix thread: rumqttc is async, and one thread keeps up with
//! 10,000 devices at 1 reading/s each (measured on 2 cores beside Eliot: under half a core,
//! its timers late by 4 ms at p99, about 47 KB of memory per device).
//!
//! # Usage
//!
//! ```text
//! cargo run --release                                             # Eliot, in one terminal
//! cargo run --release --example fleet_simulator                   # 10 devices, 1 reading/s, 10 s
//! cargo run --release --example fleet_simulator -- --devices 50 --rate 20 --duration 5s
//! cargo run --release --example fleet_simulator -- --rate 0 --count 2000 --devices 20  # throughput
//! cargo run --release --example fleet_simulator -- --malformed 0.1        # some dead letters
//! cargo run --release --example fleet_simulator -- --mqtt-version 5 --payload-size 1000
//! cargo run --release --example fleet_simulator -- --devices 10000 --duration 30s --quiet
//! cargo run --release --example fleet_simulator -- --json --duration 5s   # one JSON object
//! ```
//!
//! # Output
//!
//! A progress line on standard error once a second (not with `--quiet` or `--json`), then a
//! summary on standard output: readable, or with `--json` one JSON object on one line and
//! nothing else on standard output. Its fields:
//!
//! - `devices`, `connected_peak`: devices simulated, most connected at once.
//! - `sent`: messages whose PUBLISH went out (each counted once, however often re-sent);
//!   `acked`: of those, PUBACKed (always 0 at QoS 0); `lost`: `sent - acked` at QoS 1 when
//!   the run ended, after waiting up to 10 s for outstanding acks (0 at QoS 0).
//! - `errors`: connection errors; `reconnects`: CONNACKs after a device's first.
//! - `duration_s`: seconds from the first device's start to the end of publishing (every
//!   device reached its `--duration` or `--count`); `drain_s`: seconds then spent waiting for
//!   the last acks.
//! - `rate_sent`: `sent` / seconds from the start to the last PUBLISH of a new message;
//!   `rate_acked`: `acked` / seconds from the start to the last PUBACK; both in messages per
//!   second, ramp-up included.
//! - `latency_ms`: PUBLISH written → PUBACK read, in milliseconds, over every acked message:
//!   `{samples, mean, p50, p99, p999, max}`; `null` at QoS 0 or when nothing was acked.
//! - `qos`, `mqtt_version`, `rate_per_device` (0: as fast as acks allow), `payload_bytes`
//!   (mean size of a sent payload), `malformed` / `malformed_acked` (invalid JSON sent / acked:
//!   they are dead letters, so the readings stored are `acked - malformed_acked`), `resent`
//!   (PUBLISHes of messages sent before), `skipped` (scheduled readings dropped because a
//!   device fell behind), `unsent` (readings made but never sent), `first_error` (text of the
//!   first connection error, or `null`), `interrupted` (stopped by Ctrl-C or a stall).
//! - `loop_lag_p99_ms`, `loop_lag_max_ms`: how late the simulator's own 10 ms timer fired; a
//!   few ms means its thread kept up, far more means the simulator limited the run.
//!   `cpu_s`: CPU seconds the simulator used (`null` off Linux).
//!
//! Readings made while a device is disconnected wait (up to 100 per device) and go out when
//! it reconnects. With `--malformed`, mind Eliot's per-device breaker: a device with more than
//! 50 refused messages within 60 s is disconnected and refused for a while (its will, on
//! `devices/{id}/status`, then becomes a dead letter); the simulator reconnects and re-sends.
//!
//! With `--duration`, each device publishes that long from its own start; devices start at
//! `--connect-rate` per second, so a run lasts about `devices / connect-rate + duration`.

mod device;
mod fleet;
mod link;
mod monitor;
mod options;
mod readings;
mod rng;
mod stats;
mod summary;
mod totals;

use std::process::ExitCode;
use std::rc::Rc;

use clap::Parser;

use fleet::Fleet;
use options::{describe_run, Options, Plan};

fn main() -> ExitCode {
    let options = Options::parse();
    let plan = match Plan::from_options(&options) {
        Ok(plan) => Rc::new(plan),
        Err(message) => {
            eprintln!("fleet_simulator: {message}");
            return ExitCode::from(2);
        }
    };
    raise_open_file_limit(options.devices);
    if !options.json {
        eprintln!("{}", describe_run(&options, &plan));
    }
    let fleet = Fleet {
        plan,
        devices: options.devices,
        prefix: options.client_prefix.clone(),
        connect_rate: options.connect_rate,
        show_progress: !options.quiet && !options.json,
    };
    let summary = actix::System::new().block_on(fleet.run());
    if options.json {
        println!(
            "{}",
            serde_json::to_string(&summary).expect("a summary serializes")
        );
    } else {
        summary.print();
    }
    if summary.connected_peak == 0 {
        eprintln!("fleet_simulator: no device could connect");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Raises the soft open-file limit to the hard one: each device holds a socket.
fn raise_open_file_limit(devices: u64) {
    let needed = devices + 100;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < needed => eprintln!(
            "fleet_simulator: WARNING: the open-file limit is {limit}, below devices + 100 = \
             {needed}; devices beyond it will fail to connect (raise the hard limit: ulimit -Hn)"
        ),
        Ok(_) => {}
        Err(error) => eprintln!("fleet_simulator: could not raise the open-file limit: {error}"),
    }
}
