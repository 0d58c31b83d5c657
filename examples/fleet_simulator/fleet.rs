//! The run as a whole: start the devices, wait for the end of publishing and for the last
//! acks, stop the devices, and summarize.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr};

use crate::device::{Device, Finish};
use crate::monitor::Monitor;
use crate::options::{device_id, Plan};
use crate::summary::{summarize, Samples, Summary, Timing};
use crate::totals::Totals;

/// How long the end of the run waits for outstanding acks.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// How long the end of the run waits for the devices' DISCONNECTs to go out.
pub const DISCONNECT_LIMIT: Duration = Duration::from_secs(3);
/// With `--count` alone (no time limit), give up after this long without any message sent or acked.
const STALL_LIMIT: Duration = Duration::from_secs(30);

/// The run as a whole.
pub struct Fleet {
    /// What each device does.
    pub plan: Rc<Plan>,
    /// How many devices to start.
    pub devices: u64,
    /// Device id prefix.
    pub prefix: String,
    /// Devices started per second.
    pub connect_rate: f64,
    /// Whether to draw the progress line.
    pub show_progress: bool,
}

impl Fleet {
    pub async fn run(self) -> Summary {
        let fleet = Rc::new(self);
        let totals = Rc::new(Totals::default());
        let start = Instant::now();
        let addrs = Rc::new(RefCell::new(Vec::new()));
        watch_interrupts(totals.clone());
        actix_rt::spawn(start_devices(fleet.clone(), totals.clone(), addrs.clone()));
        let mut monitor = Monitor::new(start, fleet.devices, fleet.show_progress);
        let published = fleet.wait_publishing(&totals, &mut monitor).await;
        let drained = wait_drained(&totals, &mut monitor).await;
        monitor.finish();
        let addrs = addrs.take();
        let latencies_us = finish_devices(addrs).await;
        wait_disconnected(&totals).await;
        let timing = Timing {
            start,
            published,
            drained,
        };
        let samples = Samples {
            latencies_us,
            loop_lags_us: monitor.lags_us,
        };
        summarize(&fleet.plan, fleet.devices, &totals, timing, samples)
    }

    /// Waits until every device has made its last reading (or Ctrl-C, or a stall).
    async fn wait_publishing(&self, totals: &Totals, monitor: &mut Monitor) -> Instant {
        let stall_limit = self.stall_limit();
        let mut stall = StallGuard::new(stall_limit);
        loop {
            monitor.wait(totals).await;
            let all_started = totals.started.get() == self.devices;
            if totals.stop.get() {
                return Instant::now();
            }
            if all_started && totals.generating.get() == 0 {
                return totals.publishing_ended.get().unwrap_or_else(Instant::now);
            }
            if stall.stalled(totals) {
                let limit = stall_limit.unwrap_or_default().as_secs();
                eprintln!("\nfleet_simulator: nothing sent or acked for {limit} s: giving up");
                totals.stop.set(true);
                totals.interrupted.set(true);
            }
        }
    }

    /// Only a run without a time limit needs a stall guard.
    fn stall_limit(&self) -> Option<Duration> {
        if self.plan.duration.is_some() {
            return None;
        }
        let interval = self.plan.interval.unwrap_or_default();
        Some(STALL_LIMIT.max(interval * 3))
    }
}

/// Starts the devices at `connect_rate` per second.
async fn start_devices(
    fleet: Rc<Fleet>,
    totals: Rc<Totals>,
    addrs: Rc<RefCell<Vec<Addr<Device>>>>,
) {
    let start = Instant::now();
    for index in 0..fleet.devices {
        let due = start + Duration::from_secs_f64(index as f64 / fleet.connect_rate);
        if due > Instant::now() {
            actix_rt::time::sleep_until(due.into()).await;
        }
        if totals.stop.get() {
            // Not started: as far as the run is concerned, done.
            totals.started.set(fleet.devices);
            return;
        }
        let id = device_id(&fleet.prefix, index);
        let device = Device::new(id, index, fleet.plan.clone(), totals.clone());
        addrs.borrow_mut().push(device.start());
    }
}

/// First Ctrl-C: stop publishing, drain and summarize. Second: exit at once.
fn watch_interrupts(totals: Rc<Totals>) {
    actix_rt::spawn(async move {
        if actix_rt::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!("\nfleet_simulator: interrupted: waiting for acks (Ctrl-C again to quit now)");
        totals.stop.set(true);
        totals.interrupted.set(true);
        if actix_rt::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
}

/// Waits until every reading made is settled (acked, or sent at QoS 0), at most `DRAIN_LIMIT`.
async fn wait_drained(totals: &Totals, monitor: &mut Monitor) -> Instant {
    let deadline = Instant::now() + DRAIN_LIMIT;
    while totals.outstanding.get() > 0 && Instant::now() < deadline {
        monitor.wait(totals).await;
    }
    Instant::now()
}

/// Tells every device to finish (disconnect) and gathers their latencies.
async fn finish_devices(addrs: Vec<Addr<Device>>) -> Vec<u32> {
    let mut latencies = Vec::new();
    for addr in addrs {
        if let Ok(latencies_us) = addr.send(Finish).await {
            latencies.extend_from_slice(&latencies_us);
        }
    }
    latencies
}

/// Waits (a little) until every device has sent its DISCONNECT, so no will is published.
async fn wait_disconnected(totals: &Totals) {
    let deadline = Instant::now() + DISCONNECT_LIMIT;
    while totals.alive.get() > 0 && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Detects a run that makes no progress at all.
struct StallGuard {
    /// How long without progress is a stall; `None`: never.
    limit: Option<Duration>,
    /// `sent + acked` at the last change.
    last_seen: u64,
    /// When `last_seen` changed.
    since: Instant,
}

impl StallGuard {
    fn new(limit: Option<Duration>) -> StallGuard {
        StallGuard {
            limit,
            last_seen: 0,
            since: Instant::now(),
        }
    }

    fn stalled(&mut self, totals: &Totals) -> bool {
        let Some(limit) = self.limit else {
            return false;
        };
        let seen = totals.sent.get() + totals.acked.get();
        if seen != self.last_seen {
            self.last_seen = seen;
            self.since = Instant::now();
        }
        self.since.elapsed() > limit
    }
}
