//! A device's rate limits, in messages and payload bytes per second. Past them, the
//! connection waits before reading its next packet: the device is slowed by TCP, not
//! answered with an error, and nothing it sent is dropped.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use prometheus_client::metrics::counter::Counter;

use super::settings::AuthSettings;

pub struct DeviceRate {
    messages: Option<DefaultDirectRateLimiter>,
    bytes: Option<DefaultDirectRateLimiter>,
    /// Messages that had to wait (`eliot_rate_limited_total`).
    slowed: Counter,
}

impl DeviceRate {
    /// `None` when neither limit is set. `max_packet` is the largest payload that may
    /// come, so that one message never needs more than the byte bucket holds.
    pub fn new(settings: &AuthSettings, max_packet: u32, slowed: Counter) -> Option<DeviceRate> {
        let limiter = |per_second: u32, burst: u32| {
            let rate = NonZeroU32::new(per_second)?;
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            Some(RateLimiter::direct(
                Quota::per_second(rate).allow_burst(burst),
            ))
        };
        let messages = limiter(settings.device_messages_per_second, 0);
        let bytes = limiter(settings.device_bytes_per_second, max_packet);
        (messages.is_some() || bytes.is_some()).then_some(DeviceRate {
            messages,
            bytes,
            slowed,
        })
    }

    /// Waits until one message of `size` payload bytes is within the limits, counting it
    /// if it had to wait.
    pub async fn admit(&self, size: usize) {
        let mut waited = false;
        if let Some(messages) = &self.messages {
            if messages.check().is_err() {
                messages.until_ready().await;
                waited = true;
            }
        }
        if let (Some(bytes), Some(n)) = (&self.bytes, NonZeroU32::new(size as u32)) {
            if bytes.check_n(n).map(|r| r.is_err()).unwrap_or(false) {
                // Within capacity by construction (the burst holds the largest packet).
                let _ = bytes.until_n_ready(n).await;
                waited = true;
            }
        }
        if waited {
            self.slowed.inc();
        }
    }
}
