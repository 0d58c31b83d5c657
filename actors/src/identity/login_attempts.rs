//! Failed logins, keyed by the remote address *and* the device the client claims to be:
//! past `auth.max_failed_logins` within the window, that device is refused from that
//! address before any secret is checked. Another device behind the same address (a NAT, a
//! site's gateway) is untouched, and a verified client certificate is never asked about
//! (the endpoint does not track it).
//!
//! An attempt counts from when it starts, not when its check ends: a burst of concurrent
//! logins for one device gets no more checks than the limit. A successful login gives its
//! turn back; a failed or timed-out one keeps it for the window.
//!
//! The claimed name is kept as a keyed 64-bit hash, so a key takes the same few bytes
//! whatever a client sends, and at most `auth.max_tracked_addresses` keys are kept: when
//! full, keys with nothing in progress nor within the window are forgotten; if none is, the
//! new key is not tracked (it would take that many failures within the window, each an
//! Argon2 check taken in turn, to get there).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::settings::AuthSettings;
use crate::supervision::SlidingWindow;

type Key = (IpAddr, u64);

pub struct LoginAttempts {
    max_failed: usize,
    window: Duration,
    max_tracked: usize,
    /// Hashes claimed names with a key drawn per process: nobody can aim at a collision.
    names: std::collections::hash_map::RandomState,
    tracked: HashMap<Key, Tries>,
}

struct Tries {
    failed: SlidingWindow,
    /// Attempts begun and not settled yet.
    pending: usize,
}

/// A login attempt begun: settle it once its outcome is known.
#[must_use]
pub struct Attempt(Option<Key>);

impl LoginAttempts {
    pub fn new(settings: &AuthSettings) -> Self {
        LoginAttempts {
            max_failed: settings.max_failed_logins as usize,
            window: settings.failed_login_window,
            max_tracked: settings.max_tracked_addresses,
            names: Default::default(),
            tracked: HashMap::new(),
        }
    }

    /// Begins an attempt to log in from `address` as `claimed`, or answers how long that
    /// device is refused from there, when its failures and attempts in progress reach the
    /// limit.
    pub fn begin(
        &mut self,
        address: IpAddr,
        claimed: &str,
        now: Instant,
    ) -> Result<Attempt, Duration> {
        let key = (address, self.names.hash_one(claimed));
        if !self.tracked.contains_key(&key) && !self.make_room(now) {
            return Ok(Attempt(None));
        }
        let window = self.window;
        let tries = self.tracked.entry(key).or_insert_with(|| Tries {
            failed: SlidingWindow::new(window),
            pending: 0,
        });
        if tries.failed.count(now) + tries.pending >= self.max_failed {
            return Err(self.window);
        }
        tries.pending += 1;
        Ok(Attempt(Some(key)))
    }

    /// The attempt ended: `failed` (refused credentials, or no answer in time) counts
    /// within the window.
    pub fn settle(&mut self, attempt: Attempt, failed: bool, now: Instant) {
        let Some(tries) = attempt.0.and_then(|key| self.tracked.get_mut(&key)) else {
            return;
        };
        tries.pending = tries.pending.saturating_sub(1);
        if failed {
            tries.failed.record(now);
        }
    }

    /// Whether there is room for one more key, forgetting idle ones if needed.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.tracked.len() >= self.max_tracked {
            self.tracked
                .retain(|_, tries| tries.pending > 0 || tries.failed.count(now) > 0);
        }
        self.tracked.len() < self.max_tracked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        let mut settings = crate::identity::settings::tests::settings();
        settings.max_failed_logins = 3;
        settings.max_tracked_addresses = 2;
        settings
    }

    #[test]
    fn failures_lock_out_one_device_from_one_address_for_the_window() {
        let mut attempts = LoginAttempts::new(&settings());
        let (nat, elsewhere): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let t0 = Instant::now();
        for _ in 0..3 {
            let attempt = attempts.begin(nat, "stale", t0).expect("not locked yet");
            attempts.settle(attempt, true, t0);
        }
        assert!(attempts.begin(nat, "stale", t0).is_err());
        let good = attempts
            .begin(nat, "good", t0)
            .expect("another device, same address");
        attempts.settle(good, false, t0);
        let away = attempts
            .begin(elsewhere, "stale", t0)
            .expect("another address");
        attempts.settle(away, false, t0);
        let later = t0 + Duration::from_secs(61);
        assert!(attempts.begin(nat, "stale", later).is_ok());
    }

    #[test]
    fn attempts_count_from_their_start_and_successes_give_theirs_back() {
        let mut attempts = LoginAttempts::new(&settings());
        let nat: IpAddr = [10, 0, 0, 1].into();
        let t0 = Instant::now();
        let begun: Vec<_> = (0..3)
            .map(|_| attempts.begin(nat, "flood", t0).expect("within the limit"))
            .collect();
        assert!(
            attempts.begin(nat, "flood", t0).is_err(),
            "three in progress: the fourth is refused before any check"
        );
        for attempt in begun {
            attempts.settle(attempt, false, t0);
        }
        assert!(attempts.begin(nat, "flood", t0).is_ok());
    }

    #[test]
    fn keys_stay_bounded_whatever_names_are_claimed() {
        let mut attempts = LoginAttempts::new(&settings());
        let t0 = Instant::now();
        for n in 0..200 {
            let name = format!("name-{n}-{}", "x".repeat(1_000));
            let attempt = attempts.begin([10, 0, 0, 1].into(), &name, t0).unwrap();
            attempts.settle(attempt, true, t0);
            assert!(attempts.tracked.len() <= 2);
        }
    }
}
