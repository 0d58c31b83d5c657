//! The rate of new connections, per remote address: one address cannot crowd the others
//! out. Addresses past `auth.max_tracked_addresses` are forgotten: memory stays bounded
//! whatever addresses connect. (Failed logins are keyed by address and device:
//! `login_attempts`.)

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::settings::AuthSettings;

pub struct AddressLimits {
    max_tracked: usize,
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
            max_tracked: settings.max_tracked_addresses,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AuthSettings {
        let mut settings = crate::identity::settings::tests::settings();
        settings.new_connections_per_second = 1;
        settings.new_connections_burst = 2;
        settings.max_tracked_addresses = 2;
        settings
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
    }
}
