//! Arithmetic of the summary: samples in µs, percentiles, rates, rounding.

use std::time::{Duration, Instant};

/// A duration in whole µs, as samples are kept (`u32::MAX`, over an hour, at most).
pub fn saturating_us(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

/// Nearest-rank percentile of sorted samples (0 if there are none).
pub fn percentile(sorted: &[u32], quantile: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// µs as ms, to the µs.
pub fn ms(us: u32) -> f64 {
    round3(us as f64 / 1000.0)
}

/// Seconds from `from` to `to` (0 if `to` is earlier).
pub fn seconds(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}

/// `count` per second over `seconds`; 0 without a time to divide by.
pub fn per_second(count: u64, seconds: Option<f64>) -> f64 {
    match seconds {
        Some(seconds) if seconds > 0.0 => count as f64 / seconds,
        _ => 0.0,
    }
}

pub fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
