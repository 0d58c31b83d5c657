//! `reads`: read latency while ingesting. Eliot, on the store `sustained`
//! filled, ingests 50,000 msg/s from the sustained fleet (paced, QoS 1, every 4th connection
//! ending each write one byte into the next packet; a server-side disconnect fails the run)
//! while one reader issues HTTP reads back to back for 20 s, turn by turn latest / last 1000
//! / last hour, each of a device drawn at random from those with readings. A dashboard
//! polling a few devices must stay fast however hard the fleet writes.

use std::time::{Duration, Instant};

use crate::field_load::{Disconnect, FieldLoad, Until, SPLIT_EVERY};
use crate::latency::ReadRow;
use crate::procs::{Programs, Server};
use crate::read_api::{ReadApi, ReadKind, READ_KINDS};
use crate::report::{Figure, Report};
use crate::sustained::FilledStore;
use crate::telemetry::Sensors;

/// Read p99 at most, ms, for each kind.
const TARGET_P99_MS: f64 = 10.0;
/// Ingestion runs this long before the reads start and after they end.
const MARGIN: Duration = Duration::from_secs(1);
/// Unacked PUBLISHes per connection of the ingestion.
const WINDOW: usize = 512;

pub struct ReadsScale {
    /// msg/s ingested meanwhile, over the sustained fleet's devices and connections.
    pub ingest_rate: f64,
    pub ingest_connections: u32,
    /// How long the reader reads.
    pub duration: Duration,
}

/// One run: per kind, the latencies and the failures.
struct ReadsRun {
    latencies_us: [Vec<u32>; 3],
    errors: [Vec<String>; 3],
    ingest_rate: f64,
    /// What went wrong with the ingestion: failed connections, disconnects.
    ingest_problems: Vec<String>,
    /// The ingestion's server-side disconnects, listed in the report.
    ingest_disconnects: Vec<Disconnect>,
}

/// Measures `runs` times, each with a fresh Eliot on `store`; adds a row per kind of read.
pub fn measure(
    programs: &Programs,
    scale: &ReadsScale,
    runs: usize,
    store: &FilledStore,
    report: &mut Report,
) {
    let runs: Vec<ReadsRun> = (0..runs)
        .map(|_| measure_run(programs, scale, store))
        .collect();
    let ingest = Figure::of(runs.iter().map(|r| r.ingest_rate));
    report.disconnects_by_run(
        "Reads ingestion",
        runs.iter().map(|r| r.ingest_disconnects.as_slice()),
    );
    for (k, kind) in READ_KINDS.into_iter().enumerate() {
        let row = ReadRow {
            configuration: format!(
                "Eliot, reads: {} while ingesting {:.0} msg/s, store of {} readings \
                 (msg/s: ingestion achieved)",
                kind.describe(),
                scale.ingest_rate,
                store.readings
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

fn measure_run(programs: &Programs, scale: &ReadsScale, store: &FilledStore) -> ReadsRun {
    let eliot = Server::eliot_in(programs, store.dir.clone());
    let api = ReadApi::new(eliot.http.expect("Eliot listens for HTTP"));
    let ingest = FieldLoad {
        devices: store.devices,
        connections: scale.ingest_connections,
        rate: Some(scale.ingest_rate),
        until: Until::Elapsed(scale.duration + 2 * MARGIN),
        window: WINDOW,
        record_latency: false,
        progress_step: None,
        client_prefix: "ingest",
        reconnects: false,
        split_every: SPLIT_EVERY,
        sensors: Sensors::Cycle,
    };
    let addr = eliot.addr;
    let (read, outcome) = std::thread::scope(|s| {
        let ingesting = s.spawn(|| ingest.run(addr));
        std::thread::sleep(MARGIN);
        let read = read_for(&api, scale.duration, store.devices);
        (
            read,
            ingesting.join().expect("the ingestion does not panic"),
        )
    });
    let (latencies_us, errors) = read;
    ReadsRun {
        latencies_us,
        errors,
        ingest_rate: outcome.rate(),
        ingest_problems: outcome.problems(),
        ingest_disconnects: outcome.disconnects,
    }
}

/// Reads back to back for `duration`, kind after kind, each of a random device below
/// `devices`; per kind, the latencies in µs and the failures.
fn read_for(api: &ReadApi, duration: Duration, devices: u32) -> ([Vec<u32>; 3], [Vec<String>; 3]) {
    let (mut latencies, mut errors): ([Vec<u32>; 3], [Vec<String>; 3]) = Default::default();
    let mut random = 0x2545_F491_4F6C_DD1Du64;
    let end = Instant::now() + duration;
    for k in (0..READ_KINDS.len()).cycle() {
        if Instant::now() >= end {
            break;
        }
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        let device = (random % u64::from(devices.max(1))) as u32;
        let kind: ReadKind = READ_KINDS[k];
        match api.read(kind, device) {
            Ok(took) => latencies[k].push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX)),
            Err(error) => {
                errors[k].push(format!("{} of dev-{device:05}: {error}", kind.describe()))
            }
        }
    }
    (latencies, errors)
}
