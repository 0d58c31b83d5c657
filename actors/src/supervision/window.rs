//! `SlidingWindow`: how many events happened within the last `span`. The restart policy,
//! the health monitor's restart counts and the device guard all count this way.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SlidingWindow {
    span: Duration,
    /// When each event within the span happened, oldest first.
    events: VecDeque<Instant>,
}

impl SlidingWindow {
    pub fn new(span: Duration) -> Self {
        SlidingWindow {
            span,
            events: VecDeque::new(),
        }
    }

    pub fn span(&self) -> Duration {
        self.span
    }

    /// Records an event at `now`; answers how many are within the span, this one included.
    pub fn record(&mut self, now: Instant) -> usize {
        self.forget_before(now);
        self.events.push_back(now);
        self.events.len()
    }

    /// How many events are within the span at `now`.
    pub fn count(&mut self, now: Instant) -> usize {
        self.forget_before(now);
        self.events.len()
    }

    /// The newest event, if any is still remembered.
    pub fn last(&self) -> Option<Instant> {
        self.events.back().copied()
    }

    pub fn clear(&mut self) {
        self.events.clear();
    }

    fn forget_before(&mut self, now: Instant) {
        while self
            .events
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > self.span)
        {
            self.events.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_the_events_within_the_span() {
        let mut w = SlidingWindow::new(Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(w.record(t), 1);
        assert_eq!(w.record(t + Duration::from_secs(5)), 2);
        // The first is exactly 10 s old: still in.
        assert_eq!(w.count(t + Duration::from_secs(10)), 2);
        assert_eq!(w.record(t + Duration::from_secs(11)), 2);
        assert_eq!(w.count(t + Duration::from_secs(30)), 0);
        assert_eq!(w.last(), None);
    }

    #[test]
    fn an_earlier_now_forgets_nothing() {
        let mut w = SlidingWindow::new(Duration::from_secs(1));
        let t = Instant::now() + Duration::from_secs(5);
        w.record(t);
        assert_eq!(w.count(t - Duration::from_secs(3)), 1);
    }
}
