//! The final report: what the run measured, as one JSON object (what benchmarks parse) or as
//! readable lines.

use std::time::Instant;

use serde::Serialize;

use crate::options::{Plan, Qos, Version};
use crate::stats::{ms, per_second, percentile, round1, round3, seconds};
use crate::totals::Totals;

/// When the phases of the run ended.
pub struct Timing {
    /// Start of the run.
    pub start: Instant,
    /// When every device had made its last reading.
    pub published: Instant,
    /// When the wait for the last acks ended.
    pub drained: Instant,
}

/// What was measured message by message or tick by tick.
pub struct Samples {
    /// PUBLISH → PUBACK latency of every acked message, in µs.
    pub latencies_us: Vec<u32>,
    /// Lateness of every monitor tick, in µs.
    pub loop_lags_us: Vec<u32>,
}

/// The final report; its JSON form is what benchmarks parse, so its field names are stable.
#[derive(Serialize)]
pub struct Summary {
    /// Devices simulated.
    devices: u64,
    /// Most devices connected at once.
    pub connected_peak: u64,
    /// Messages whose PUBLISH went out (each counted once).
    sent: u64,
    /// Messages PUBACKed (0 at QoS 0).
    acked: u64,
    /// Connection errors.
    errors: u64,
    /// CONNACKs after a device's first.
    reconnects: u64,
    /// Seconds from the start to the end of publishing.
    duration_s: f64,
    /// Seconds spent waiting for the last acks.
    drain_s: f64,
    /// `sent` / seconds from the start to the last PUBLISH of a new message, messages per second.
    rate_sent: f64,
    /// `acked` / seconds from the start to the last PUBACK, messages per second.
    rate_acked: f64,
    /// PUBLISH → PUBACK latency; `None` at QoS 0 or when nothing was acked.
    latency_ms: Option<Latency>,
    /// QoS 1 messages sent and not acked by the end.
    lost: u64,
    /// QoS of the readings.
    qos: u8,
    /// 4 (3.1.1) or 5.
    mqtt_version: u8,
    /// Readings per second per device; 0: as fast as acks allow.
    rate_per_device: f64,
    /// Mean payload size of the messages sent, in bytes.
    payload_bytes: f64,
    /// Invalid-JSON messages sent.
    malformed: u64,
    /// Invalid-JSON messages acked (stored as dead letters).
    malformed_acked: u64,
    /// PUBLISHes of messages that had gone out before.
    resent: u64,
    /// Scheduled readings skipped because a device had fallen behind.
    skipped: u64,
    /// Readings made and never sent.
    unsent: u64,
    /// Text of the first connection error.
    first_error: Option<String>,
    /// Whether Ctrl-C or a stall cut the run short.
    interrupted: bool,
    /// 99th percentile of how late the simulator's 10 ms timer fired, in ms: a few ms means its
    /// one thread keeps up; much more means the simulator, not the server, limits the run.
    loop_lag_p99_ms: f64,
    /// Worst lateness of that timer, in ms.
    loop_lag_max_ms: f64,
    /// CPU time the simulator used (user + system), in seconds; `None` off Linux.
    cpu_s: Option<f64>,
}

/// Latency percentiles in milliseconds.
#[derive(Serialize)]
struct Latency {
    /// Acked messages measured.
    samples: u64,
    /// Mean.
    mean: f64,
    /// Median.
    p50: f64,
    /// 99th percentile.
    p99: f64,
    /// 99.9th percentile.
    p999: f64,
    /// Slowest.
    max: f64,
}

impl Latency {
    /// The summary of latencies in µs; `None` if there are none.
    fn of(mut latencies_us: Vec<u32>) -> Option<Latency> {
        if latencies_us.is_empty() {
            return None;
        }
        latencies_us.sort_unstable();
        let total: u64 = latencies_us.iter().map(|&us| us as u64).sum();
        let quantile_ms = |quantile| ms(percentile(&latencies_us, quantile));
        Some(Latency {
            samples: latencies_us.len() as u64,
            mean: round3(total as f64 / latencies_us.len() as f64 / 1000.0),
            p50: quantile_ms(0.50),
            p99: quantile_ms(0.99),
            p999: quantile_ms(0.999),
            max: quantile_ms(1.0),
        })
    }
}

pub fn summarize(
    plan: &Plan,
    devices: u64,
    totals: &Totals,
    timing: Timing,
    samples: Samples,
) -> Summary {
    let mut lags_us = samples.loop_lags_us;
    lags_us.sort_unstable();
    let duration_s = seconds(timing.start, timing.published);
    let (sent, acked) = (totals.sent.get(), totals.acked.get());
    let send_window = totals.last_sent.get().map(|at| seconds(timing.start, at));
    let ack_window = totals.last_ack.get().map(|at| seconds(timing.start, at));
    let at_least_once = plan.qos == Qos::AtLeastOnce;
    Summary {
        devices,
        connected_peak: totals.connected_peak.get(),
        sent,
        acked,
        errors: totals.errors.get(),
        reconnects: totals.reconnects.get(),
        duration_s: round3(duration_s),
        drain_s: round3(seconds(timing.published, timing.drained)),
        rate_sent: round1(per_second(sent, send_window)),
        rate_acked: round1(per_second(acked, ack_window)),
        latency_ms: Latency::of(samples.latencies_us),
        lost: if at_least_once {
            sent.saturating_sub(acked)
        } else {
            0
        },
        qos: u8::from(at_least_once),
        mqtt_version: plan.version.level(),
        rate_per_device: plan.interval.map_or(0.0, |i| round3(1.0 / i.as_secs_f64())),
        payload_bytes: round1(totals.payload_bytes.get() as f64 / sent.max(1) as f64),
        malformed: totals.malformed.get(),
        malformed_acked: totals.malformed_acked.get(),
        resent: totals.resent.get(),
        skipped: totals.skipped.get(),
        unsent: totals.unsent.get(),
        first_error: totals.first_error.borrow().clone(),
        interrupted: totals.interrupted.get(),
        loop_lag_p99_ms: ms(percentile(&lags_us, 0.99)),
        loop_lag_max_ms: ms(percentile(&lags_us, 1.0)),
        cpu_s: own_cpu_seconds(),
    }
}

/// User + system CPU time of this process, from `/proc/self/stat` (in USER_HZ = 100 ticks).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11); // utime is field 14 of the line
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / 100.0)
}

impl Summary {
    /// The readable form, on standard output.
    pub fn print(&self) {
        println!(
            "devices      {} (peak {} connected), MQTT {}, QoS {}",
            self.devices,
            self.connected_peak,
            Version::from_level(self.mqtt_version).name(),
            self.qos
        );
        println!(
            "sent         {} in {:.3} s: {:.1} msg/s ({:.0}-byte payloads, {} malformed)",
            self.sent, self.duration_s, self.rate_sent, self.payload_bytes, self.malformed
        );
        if self.qos == 1 {
            println!(
                "acked        {}: {:.1} msg/s ({} malformed, stored as dead letters); lost {} \
                 (waited {:.1} s for the last acks)",
                self.acked, self.rate_acked, self.malformed_acked, self.lost, self.drain_s
            );
        }
        if let Some(latency) = &self.latency_ms {
            println!(
                "latency      p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms (mean {} ms, {} samples)",
                latency.p50, latency.p99, latency.p999, latency.max, latency.mean, latency.samples
            );
        }
        println!(
            "connections  {} errors, {} reconnects, {} re-sent, {} skipped, {} never sent",
            self.errors, self.reconnects, self.resent, self.skipped, self.unsent
        );
        println!(
            "simulator    timer lag p99 {} ms, max {} ms; CPU {}",
            self.loop_lag_p99_ms,
            self.loop_lag_max_ms,
            self.cpu_s
                .map_or("unknown".into(), |cpu| format!("{cpu:.2} s"))
        );
        if let Some(error) = &self.first_error {
            println!("first error  {error}");
        }
        if self.interrupted {
            println!("interrupted  the run was cut short");
        }
    }
}
