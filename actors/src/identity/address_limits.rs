//! Limits keyed by the remote address, so that no client can lock another out: failed
//! logins (past `auth.max_failed_logins` within the window, the address is refused before
//! any secret is checked) and the rate of new connections. Both forget addresses past
//! `auth.max_tracked_addresses`, oldest first: memory stays bounded whatever addresses
//! connect.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::settings::AuthSettings;
use crate::supervision::SlidingWindow;

pub struct AddressLimits {
    max_failed: usize,
    window: Duration,
    max_tracked: usize,
    failed: HashMap<IpAddr, SlidingWindow>,
    quota: Quota,
    connections: DefaultKeyedRateLimiter<IpAddr>,
}

impl AddressLimits {
    pub fn new(settings: &AuthSettings) -> Self {
        let per_second =
            NonZeroU32::new(settings.new_connections_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.new_connections_burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        AddressLimits {
            max_failed: settings.max_failed_logins as usize,
            window: settings.failed_login_window,
            max_tracked: settings.max_tracked_addresses,
            failed: HashMap::new(),
            quota,
            connections: RateLimiter::keyed(quota),
        }
    }

    /// May `address` open one more connection now?
    pub fn may_connect(&mut self, address: IpAddr) -> bool {
        if self.connections.len() >= self.max_tracked {
            self.connections.retain_recent();
            if self.connections.len() >= self.max_tracked {
                // Every tracked address is busy: forget them rather than grow.
                self.connections = RateLimiter::keyed(self.quota);
            }
        }
        self.connections.check_key(&address).is_ok()
    }

    /// When `address` may try to log in again, if it failed too often lately.
    pub fn locked_until(&mut self, address: IpAddr, now: Instant) -> Option<Duration> {
        let recent = self.failed.get_mut(&address)?;
        (recent.count(now) >= self.max_failed).then_some(self.window)
    }

    /// Counts a failed login from `address`.
    pub fn failed_login(&mut self, address: IpAddr, now: Instant) {
        if !self.failed.contains_key(&address) && self.failed.len() >= self.max_tracked {
            self.failed.retain(|_, recent| recent.count(now) > 0);
            if self.failed.len() >= self.max_tracked {
                return;
            }
        }
        let window = self.window;
        self.failed
            .entry(address)
            .or_insert_with(|| SlidingWindow::new(window))
            .record(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        AuthSettings {
            mode: super::super::AuthMode::Password,
            max_failed_logins: 3,
            failed_login_window: Duration::from_secs(60),
            new_connections_per_second: 1,
            new_connections_burst: 2,
            device_messages_per_second: 0,
            device_bytes_per_second: 0,
            max_tracked_addresses: 2,
        }
    }

    #[test]
    fn failed_logins_lock_out_their_address_only_and_only_for_the_window() {
        let mut limits = AddressLimits::new(&settings());
        let (thief, owner) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limits.locked_until(thief, t0), None);
            limits.failed_login(thief, t0);
        }
        assert!(limits.locked_until(thief, t0).is_some());
        assert_eq!(
            limits.locked_until(owner, t0),
            None,
            "another address is untouched"
        );
        assert_eq!(
            limits.locked_until(thief, t0 + Duration::from_secs(61)),
            None
        );
    }

    #[test]
    fn new_connections_are_limited_per_address_and_the_map_stays_bounded() {
        let mut limits = AddressLimits::new(&settings());
        let one: IpAddr = [10, 0, 0, 1].into();
        assert!(
            limits.may_connect(one) && limits.may_connect(one),
            "the burst"
        );
        assert!(!limits.may_connect(one), "past the burst");
        for last in 2..200u8 {
            limits.may_connect([10, 0, 1, last].into());
            assert!(limits.connections.len() <= 2);
        }
        let t0 = Instant::now();
        for last in 0..200u8 {
            limits.failed_login([10, 0, 2, last].into(), t0);
        }
        assert!(limits.failed.len() <= 2);
    }
}
