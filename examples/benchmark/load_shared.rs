//! What all connections of a field load share: the readings left to make and the time
//! left, and the acks counted so far, with the moment each 1 % of them was reached.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// What all connections of a load share: when to stop, and the acks counted so far.
pub struct Shared {
    /// Readings still to be made by all connections together before the load may end (0 for
    /// a run that is only timed).
    remaining: AtomicU64,
    /// Until when readings are made whatever `remaining` says, for a timed run.
    until: Option<Instant>,
    /// Readings acked so far by all connections.
    acked: AtomicU64,
    /// Every `step` acked readings, when that many were reached: the progress of a long run,
    /// taken where the acks are counted (no polling of the store, no sampling interval).
    progress: Option<Progress>,
}

struct Progress {
    step: u64,
    marks: Mutex<Vec<(u64, Instant)>>,
}

impl Shared {
    /// Readings are made until `count` of them are and `until` has passed, both.
    pub fn new(count: u64, until: Option<Instant>, progress_step: Option<u64>) -> Shared {
        Shared {
            remaining: AtomicU64::new(count),
            until,
            acked: AtomicU64::new(0),
            progress: progress_step.map(|step| Progress {
                step: step.max(1),
                marks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// When a timed run may stop making readings.
    pub fn until(&self) -> Option<Instant> {
        self.until
    }

    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// (acked readings, when) at each multiple of the progress step, in order.
    pub fn progress_marks(&self) -> Vec<(u64, Instant)> {
        self.progress
            .as_ref()
            .map_or_else(Vec::new, |p| p.marks.lock().unwrap().clone())
    }

    pub fn finished(&self, now: Instant) -> bool {
        self.remaining.load(Ordering::Relaxed) == 0 && !self.timed_run_on(now)
    }

    /// Whether `until` is still ahead: readings are made beyond the count.
    fn timed_run_on(&self, now: Instant) -> bool {
        self.until.is_some_and(|u| now < u)
    }

    /// Takes up to `want` readings to make: out of what remains of the count, or all of
    /// them while a timed run is on.
    pub fn claim(&self, want: u64, now: Instant) -> u64 {
        if want == 0 {
            return 0;
        }
        let taken = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                Some(r - r.min(want))
            })
            .unwrap_or(0);
        if self.timed_run_on(now) {
            return want;
        }
        taken.min(want)
    }

    pub fn count_acked(&self, n: u64, now: Instant) {
        let before = self.acked.fetch_add(n, Ordering::Relaxed);
        let Some(progress) = &self.progress else {
            return;
        };
        let after = before + n;
        if before / progress.step != after / progress.step {
            let mut marks = progress.marks.lock().unwrap();
            for k in before / progress.step + 1..=after / progress.step {
                marks.push((k * progress.step, now));
            }
        }
    }
}
