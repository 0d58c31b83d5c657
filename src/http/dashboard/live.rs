//! The fleet page's live feed: `GET /live`, Server-Sent Events, one `fleet` event a
//! second per open page. The snapshot behind it is made at most twice a second whatever
//! the number of pages open (two fleet queries, the last heard and the noisiest; one read
//! of the raised alerts; one health report), so open dashboards cost Eliot by the second,
//! not by the page; a page shows what happened at most `EVERY` + `MAX_AGE` ago, unless
//! the fleet is slow to answer (saturated): the feeds then go on with the snapshot
//! before. A feed (this one or a device page's) holds its HTTP connection for as long as
//! the page is open: at most half the HTTP server's connections (`http.workers` ×
//! `http.max_connections`) are feeds at once (past it, 503), so open dashboards never
//! lock out the API or `/health`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use eliot_actors::{
    now_micros, AlertQuery, AlertsHandle, BreakerState, DeviceQuery, DeviceSort, DeviceState,
    DeviceStatus, FleetHandle, HealthProbe, HealthReport, Metrics,
};
use serde::Serialize;
use tokio::sync::Mutex;

/// How often a feed sends.
pub const EVERY: Duration = Duration::from_secs(1);
/// How old a snapshot may be when it is sent: under `EVERY`, so that a feed's tick never
/// meets the snapshot its previous tick sent.
pub const MAX_AGE: Duration = Duration::from_millis(500);
/// Devices a snapshot lists (the most recently heard).
pub const LISTED: usize = 50;
/// The noisiest devices a snapshot names (most messages).
pub const NOISIEST: usize = 10;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Snapshot {
    pub at: String,
    pub total: u64,
    /// Devices per status.
    pub statuses: Vec<(&'static str, u64)>,
    pub firing: usize,
    /// Readings stored per second since the snapshot before.
    pub ingest_rate: f64,
    /// Dead letters stored since Eliot started.
    pub dead_letters: u64,
    /// The store in words: committing, or why not.
    pub store: String,
    pub devices: Vec<DeviceLine>,
    /// The devices that sent the most messages, most first.
    pub noisiest: Vec<DeviceLine>,
    /// The alerts raised now (pending and firing), by device then rule; `LISTED` at most.
    pub alerts: Vec<AlertLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertLine {
    pub rule: String,
    pub device_id: String,
    pub state: &'static str,
    pub since: String,
    pub value: Option<f64>,
    pub acknowledged: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceLine {
    pub device_id: String,
    pub status: &'static str,
    pub last_seen: Option<String>,
    pub messages: u64,
    pub readings: u64,
    pub dead_letters: u64,
}

impl From<DeviceState> for DeviceLine {
    fn from(d: DeviceState) -> DeviceLine {
        DeviceLine {
            status: d.status.name(),
            device_id: d.device_id,
            last_seen: d.last_seen,
            messages: d.counts.messages,
            readings: d.counts.readings,
            dead_letters: d.counts.dead_letters,
        }
    }
}

/// Makes the snapshots and counts the open feeds.
#[derive(Clone)]
pub struct Feed {
    fleet: Option<FleetHandle>,
    alerts: Option<AlertsHandle>,
    metrics: Arc<Metrics>,
    probe: HealthProbe,
    latest: Arc<std::sync::Mutex<Option<Made>>>,
    /// Held while a snapshot is made.
    making: Arc<Mutex<()>>,
    open: Arc<AtomicUsize>,
    /// Feeds open at most.
    max_open: usize,
}

/// The last snapshot, when it was made, and the readings stored then (for the rate).
struct Made {
    at: Instant,
    snapshot: Arc<Snapshot>,
    stored: u64,
}

/// One open feed: counted while it lives.
pub struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Feed {
    pub fn new(
        fleet: Option<FleetHandle>,
        alerts: Option<AlertsHandle>,
        metrics: Arc<Metrics>,
        probe: HealthProbe,
        max_open: usize,
    ) -> Feed {
        Feed {
            fleet,
            alerts,
            metrics,
            probe,
            latest: Arc::default(),
            making: Arc::default(),
            open: Arc::default(),
            max_open,
        }
    }

    /// A feed's place, if one is free.
    pub fn open(&self) -> Option<Open> {
        let before = self.open.fetch_add(1, Ordering::Relaxed);
        let place = Open(self.open.clone());
        (before < self.max_open).then_some(place)
    }

    /// The snapshot, made again if it is older than `MAX_AGE`, by one caller at a time;
    /// meanwhile the others get the one before (a busy fleet answers its listing late: the
    /// feeds go on, with older figures, rather than wait for it).
    pub async fn snapshot(&self) -> Arc<Snapshot> {
        let current = || {
            self.latest
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|m| (m.at, m.snapshot.clone(), m.stored))
        };
        if let Some((at, snapshot, _)) = current() {
            if at.elapsed() < MAX_AGE {
                return snapshot;
            }
        }
        let _making = match self.making.try_lock() {
            Ok(making) => making,
            Err(_) => match current() {
                Some((_, snapshot, _)) => return snapshot,
                // None made yet: wait for the first.
                None => self.making.lock().await,
            },
        };
        // Made by another caller while this one waited for the first.
        if let Some((at, snapshot, _)) = current() {
            if at.elapsed() < MAX_AGE {
                return snapshot;
            }
        }
        let stored = self.metrics.readings_stored.get();
        let mut snapshot = self.make().await;
        if let Some((at, _, before)) = current() {
            let seconds = at.elapsed().as_secs_f64().max(0.001);
            snapshot.ingest_rate = (stored.saturating_sub(before) as f64 / seconds).round();
        }
        let snapshot = Arc::new(snapshot);
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(Made {
            at: Instant::now(),
            snapshot: snapshot.clone(),
            stored,
        });
        snapshot
    }

    async fn make(&self) -> Snapshot {
        let statuses: Vec<(&'static str, u64)> = DeviceStatus::ALL
            .iter()
            .map(|s| {
                let n = self
                    .metrics
                    .devices
                    .get_or_create(&[("status", s.name())])
                    .get();
                (s.name(), u64::try_from(n).unwrap_or(0))
            })
            .collect();
        let (devices, noisiest) = match &self.fleet {
            Some(fleet) => {
                let last_heard = fleet.list(DeviceQuery {
                    sort: DeviceSort::LastSeen,
                    limit: LISTED,
                    ..DeviceQuery::default()
                });
                let (last_heard, noisiest) =
                    futures_util::future::join(last_heard, fleet.noisiest(NOISIEST)).await;
                (
                    last_heard.map(|page| page.devices).unwrap_or_default(),
                    noisiest.unwrap_or_default(),
                )
            }
            None => (Vec::new(), Vec::new()),
        };
        // Raised alerts, a bounded read: `firing` counts up to its limit.
        let raised = match &self.alerts {
            Some(alerts) => alerts
                .states(AlertQuery {
                    limit: 1_000,
                    ..AlertQuery::default()
                })
                .await
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let firing = raised.iter().filter(|a| a.phase == Some("firing")).count();
        let store = match self.probe.report().await {
            None => "no health report: Eliot is not answering".to_owned(),
            Some(report) => store_in_words(&report),
        };
        Snapshot {
            at: eliot_actors::format_micros(now_micros()),
            ingest_rate: 0.0,
            dead_letters: self.metrics.dead_letters_stored.get(),
            store,
            total: statuses.iter().map(|(_, n)| n).sum(),
            statuses,
            firing,
            devices: devices.into_iter().map(Into::into).collect(),
            noisiest: noisiest.into_iter().map(Into::into).collect(),
            alerts: raised
                .into_iter()
                .take(LISTED)
                .map(|a| AlertLine {
                    state: a.phase.unwrap_or("over"),
                    since: eliot_actors::format_micros(a.since),
                    acknowledged: a.acked_at.is_some(),
                    rule: a.rule,
                    device_id: a.device_id,
                    value: a.value,
                })
                .collect(),
        }
    }
}

/// The store's state as the fleet page says it.
fn store_in_words(report: &HealthReport) -> String {
    if let Some(condition) = &report.store.condition {
        return format!("takes no writes: {condition}");
    }
    if let Some(breaker) = report
        .breakers
        .iter()
        .find(|b| b.name == "store" && b.state != BreakerState::Closed)
    {
        return format!("breaker {}: {}", breaker.state.name(), breaker.reason);
    }
    match report.store.backlog_age_ms {
        Some(age) if age > 1_000 => {
            format!("{} rows waiting for {age} ms", report.store.backlog_rows)
        }
        _ => "committing".to_owned(),
    }
}

/// The snapshot as one `fleet` event.
pub fn event(snapshot: &Snapshot) -> Bytes {
    let json = serde_json::to_string(snapshot).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("event: fleet\ndata: {json}\n\n"))
}
