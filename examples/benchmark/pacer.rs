//! The schedule of a paced connection.

use std::time::{Duration, Instant};

/// An even schedule: message k is due at `first + k / rate`. The tokio timer wakes the
/// connection at most once a millisecond, so what is due is sent by the millisecond, never
/// by the second.
pub struct Pacer {
    interval: Duration,
    /// When the next message not yet released is due.
    pub next_due: Instant,
    /// Messages due and not yet sent (the window was full, or the wake-up was late).
    backlog: u64,
}

impl Pacer {
    pub fn new(rate: f64, first: Instant) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate),
            next_due: first,
            backlog: 0,
        }
    }

    /// Releases every message due by `now`; the number waiting to be sent.
    pub fn release(&mut self, now: Instant) -> u64 {
        while self.next_due <= now {
            self.backlog += 1;
            self.next_due += self.interval;
        }
        self.backlog
    }

    /// Takes `n` released messages to send at `now`; how late the oldest of them is.
    pub fn take(&mut self, n: u64, now: Instant) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        let oldest_due = self.next_due - self.interval * self.backlog as u32;
        self.backlog -= n;
        now.saturating_duration_since(oldest_due)
    }
}
