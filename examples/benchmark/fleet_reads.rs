//! The `fleet` configuration's reads (see `fleet_cost.rs`): with 100,000 known devices,
//! while 10,000 of them send 50,000 msg/s, one reader alternates
//! `GET /api/v1/devices?status=late&limit=100` and `GET /api/v1/devices/{id}` of a random
//! known device, each answer checked. Goal: p99 ≤ 10 ms for each.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fleet_cost::{paced, wait_ready, FleetScale, KnownDevices};
use crate::latency::ReadRow;
use crate::on_off::Modes;
use crate::procs::{Programs, Server};
use crate::report::{Figure, Report};
use crate::telemetry::device_id;

/// Fleet reads' p99, ms.
const TARGET_P99_MS: f64 = 10.0;
/// Longest a fleet read may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The two fleet reads timed.
#[derive(Clone, Copy)]
enum FleetRead {
    Late,
    One,
}

const FLEET_READS: [FleetRead; 2] = [FleetRead::Late, FleetRead::One];

impl FleetRead {
    fn describe(self) -> &'static str {
        match self {
            FleetRead::Late => "GET /api/v1/devices?status=late&limit=100",
            FleetRead::One => "GET /api/v1/devices/{id}",
        }
    }

    fn label(self) -> &'static str {
        match self {
            FleetRead::Late => "Fleet late list",
            FleetRead::One => "Fleet one device",
        }
    }

    /// The path that reads `device` (or the late list).
    fn path(self, device: &str) -> String {
        match self {
            FleetRead::Late => "/api/v1/devices?status=late&limit=100".to_owned(),
            FleetRead::One => format!("/api/v1/devices/{device}"),
        }
    }

    /// Whether `body` is the answer expected: a page of at most 100, or the device asked.
    fn answers(self, device: &str, body: &Value) -> bool {
        match self {
            FleetRead::Late => body["devices"].as_array().is_some_and(|d| d.len() <= 100),
            FleetRead::One => body["device_id"] == device,
        }
    }
}

/// Per kind of read: latencies in µs and failures; and the ingestion's rate and problems.
struct ReadsRun {
    latencies_us: [Vec<u32>; 2],
    errors: [Vec<String>; 2],
    ingest_rate: f64,
    ingest_problems: Vec<String>,
}

fn reads_run(
    programs: &Programs,
    scale: &FleetScale,
    config: &Path,
    known: &KnownDevices,
) -> ReadsRun {
    let eliot = Server::eliot_configured(programs, known.copy(), config);
    wait_ready(&eliot);
    let base = format!("http://{}", eliot.http.expect("Eliot listens for HTTP"));
    let agent = ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).build();
    let margin = Duration::from_secs(1);
    let ingest = paced(
        scale,
        scale.read_ingest_rate,
        scale.read_for + 2 * margin,
        "fleet-reads",
    );
    let (mut latencies, mut errors): ([Vec<u32>; 2], [Vec<String>; 2]) = Default::default();
    let outcome = std::thread::scope(|s| {
        let ingesting = s.spawn(|| ingest.run(eliot.addr));
        std::thread::sleep(margin);
        let mut random = 0x9E37_79B9_7F4A_7C15u64;
        let end = Instant::now() + scale.read_for;
        for k in (0..FLEET_READS.len()).cycle() {
            if Instant::now() >= end {
                break;
            }
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            let device = device_id((random % u64::from(known.known)) as u32);
            let (read, path) = (FLEET_READS[k], FLEET_READS[k].path(&device));
            let started = Instant::now();
            let answer = agent
                .get(&format!("{base}{path}"))
                .call()
                .map_err(|e| e.to_string())
                .and_then(|r| r.into_string().map_err(|e| e.to_string()));
            let took = started.elapsed();
            match answer.map(|body| serde_json::from_str::<Value>(&body)) {
                Ok(Ok(body)) if read.answers(&device, &body) => {
                    latencies[k].push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX))
                }
                Ok(Ok(body)) => errors[k].push(format!("{path}: unexpected answer {body}")),
                Ok(Err(e)) => errors[k].push(format!("{path}: not JSON: {e}")),
                Err(e) => errors[k].push(format!("{path}: {e}")),
            }
        }
        ingesting.join().expect("the ingestion does not panic")
    });
    ReadsRun {
        latencies_us: latencies,
        errors,
        ingest_rate: outcome.rate(),
        ingest_problems: outcome.problems(),
    }
}

pub fn measure(
    programs: &Programs,
    scale: &FleetScale,
    runs: usize,
    modes: &Modes,
    known: &KnownDevices,
    report: &mut Report,
) {
    let runs: Vec<ReadsRun> = (0..runs)
        .map(|_| reads_run(programs, scale, modes.config(true), known))
        .collect();
    let ingest = Figure::of(runs.iter().map(|r| r.ingest_rate));
    for (k, kind) in FLEET_READS.into_iter().enumerate() {
        let row = ReadRow {
            configuration: format!(
                "Eliot, fleet reads: {} with {} known devices while {} of them send {:.0} msg/s \
                 (msg/s: ingestion achieved)",
                kind.describe(),
                known.known,
                scale.active,
                scale.read_ingest_rate
            ),
            label: kind.label(),
            ingest,
            latencies_us: runs.iter().map(|r| r.latencies_us[k].as_slice()).collect(),
            errors: runs.iter().flat_map(|r| &r.errors[k]).collect(),
            ingest_errors: runs.iter().flat_map(|r| &r.ingest_problems).collect(),
            target_ms: TARGET_P99_MS,
        };
        report.add(row.row());
    }
}
