//! The run's own clock: the progress line once a second, and how late the simulator's thread
//! runs its timers.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::stats::saturating_us;
use crate::totals::Totals;

/// How often the run is watched (progress line, end of phases, the thread's lag).
const MONITOR_TICK: Duration = Duration::from_millis(10);

/// Watches the run every `MONITOR_TICK`: draws the progress line once a second, and measures
/// how late its own timer fires, which tells whether the simulator's one thread keeps up.
pub struct Monitor {
    /// The monitor's timer.
    ticks: actix_rt::time::Interval,
    /// How late each tick of `ticks` was, in µs.
    pub lags_us: Vec<u32>,
    /// Start of the run, for the elapsed time.
    start: Instant,
    /// Devices in the run, shown next to the connected count.
    devices: u64,
    /// Whether to draw at all (`--quiet`, `--json`).
    enabled: bool,
    /// Whether standard error is a terminal: then the line is redrawn in place.
    in_place: bool,
    /// When the line was last drawn.
    last_drawn: Instant,
    /// `sent` when the line was last drawn, for the current rate.
    last_sent: u64,
    /// `acked` when the line was last drawn, for the current rate.
    last_acked: u64,
}

impl Monitor {
    pub fn new(start: Instant, devices: u64, enabled: bool) -> Monitor {
        let mut ticks = actix_rt::time::interval(MONITOR_TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Monitor {
            ticks,
            lags_us: Vec::new(),
            start,
            devices,
            enabled,
            in_place: std::io::stderr().is_terminal(),
            last_drawn: start,
            last_sent: 0,
            last_acked: 0,
        }
    }

    /// Waits for the next tick, then draws the progress line if it is due.
    pub async fn wait(&mut self, totals: &Totals) {
        let scheduled = self.ticks.tick().await;
        self.lags_us.push(saturating_us(scheduled.elapsed()));
        self.draw(totals);
    }

    fn draw(&mut self, totals: &Totals) {
        let since = self.last_drawn.elapsed();
        if !self.enabled || since < Duration::from_secs(1) {
            return;
        }
        let (sent, acked) = (totals.sent.get(), totals.acked.get());
        let seconds = since.as_secs_f64();
        let line = format!(
            "{:>7.1}s  connected {}/{}  sent {}  acked {}  errors {}  {:.0} sent/s  {:.0} acked/s",
            self.start.elapsed().as_secs_f64(),
            totals.connected.get(),
            self.devices,
            sent,
            acked,
            totals.errors.get(),
            (sent - self.last_sent) as f64 / seconds,
            (acked - self.last_acked) as f64 / seconds,
        );
        let mut stderr = std::io::stderr().lock();
        let _ = if self.in_place {
            write!(stderr, "\r{line}\x1b[K")
        } else {
            writeln!(stderr, "{line}")
        };
        (self.last_drawn, self.last_sent, self.last_acked) = (Instant::now(), sent, acked);
    }

    /// Ends the line drawn in place, so what follows starts on a line of its own.
    pub fn finish(&self) {
        if self.enabled && self.in_place {
            eprintln!();
        }
    }
}
