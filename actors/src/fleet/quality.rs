//! A device's data quality, updated from each committed message: duplicates (readings the
//! store already had), readings out of order (earlier than their sensor type's last),
//! clock skew (receipt time − reading time, rolling), future timestamps (beyond receipt
//! plus a tolerance), gaps in an optional integer `seq` of `data` (a drop to a lower value
//! is a restart, not a gap), and the rolling rejection rate (dead letters / messages).
//! Plain numbers, no allocation: a few dozen bytes per device.

use serde::{Deserialize, Serialize};

/// The gain of the rolling rates: about the last 16 messages weigh most.
const RATE_GAIN: f64 = 1.0 / 16.0;
/// The gain of the rolling skew.
const SKEW_GAIN: f64 = 1.0 / 8.0;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    pub duplicates: u64,
    pub out_of_order: u64,
    pub future_timestamps: u64,
    /// Sequence numbers missing from `data.seq`.
    pub seq_gaps: u64,
    /// The last `data.seq` seen, if any.
    pub last_seq: Option<i64>,
    /// Receipt time − reading time, milliseconds, rolling.
    pub skew_ms: f64,
    /// Readings the skew was measured on (saturating).
    pub skew_samples: u32,
    /// Rolling share of messages refused (0 to 1).
    pub rejection_rate: f64,
}

impl Quality {
    /// A message was committed (`rejected`: as a dead letter).
    pub fn message(&mut self, rejected: bool) {
        let x = if rejected { 1.0 } else { 0.0 };
        self.rejection_rate += (x - self.rejection_rate) * RATE_GAIN;
    }

    /// One reading of the message: its time `ts`, received at `received`, the last time
    /// of its sensor type before it (if any), and its `data.seq` (if any); microseconds.
    pub fn reading(
        &mut self,
        (ts, received): (i64, i64),
        last_of_sensor: Option<i64>,
        seq: Option<i64>,
        future_tolerance: i64,
    ) {
        if last_of_sensor.is_some_and(|last| ts < last) {
            self.out_of_order += 1;
        }
        if ts > received.saturating_add(future_tolerance) {
            self.future_timestamps += 1;
        }
        let skew = (received - ts) as f64 / 1_000.0;
        self.skew_ms = match self.skew_samples {
            0 => skew,
            _ => self.skew_ms + (skew - self.skew_ms) * SKEW_GAIN,
        };
        self.skew_samples = self.skew_samples.saturating_add(1);
        if let Some(seq) = seq {
            if let Some(last) = self.last_seq {
                // A lower (or equal) value: a restart or a repeat, not a gap.
                if seq > last + 1 {
                    self.seq_gaps = self.seq_gaps.saturating_add((seq - last - 1) as u64);
                }
            }
            self.last_seq = Some(seq);
        }
    }

    /// After a release from quarantine: the rolling signals start over, so that the
    /// evidence that quarantined the device does not quarantine it again at once.
    pub fn start_over(&mut self) {
        self.rejection_rate = 0.0;
        self.skew_ms = 0.0;
        self.skew_samples = 0;
    }
}

/// The optional sequence number's key, at the top level of `data`.
pub const SEQ_FIELD: &str = "seq";

/// `data.seq`, when it is an integer at the top level of `data`. The data is searched for
/// the key first, so devices without one cost no parse.
pub fn seq_of(data: &str) -> Option<i64> {
    if !data.contains("\"seq\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    value.get(SEQ_FIELD)?.as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn out_of_order_and_future_readings_are_counted() {
        let mut q = Quality::default();
        q.reading((10 * S, 10 * S), Some(11 * S), None, 5 * S);
        assert_eq!(q.out_of_order, 1);
        q.reading((16 * S, 10 * S), None, None, 5 * S);
        assert_eq!(q.future_timestamps, 1);
        q.reading((14 * S, 10 * S), None, None, 5 * S);
        assert_eq!(q.future_timestamps, 1, "within the tolerance");
    }

    #[test]
    fn skew_is_rolling_and_signed() {
        let mut q = Quality::default();
        for _ in 0..50 {
            q.reading((0, 2 * S), None, None, S);
        }
        assert!((q.skew_ms - 2_000.0).abs() < 1.0, "{}", q.skew_ms);
        for _ in 0..50 {
            q.reading((3 * S, 0), None, None, 10 * S);
        }
        assert!(q.skew_ms < -2_900.0, "{}", q.skew_ms);
    }

    #[test]
    fn seq_gaps_count_the_missing_numbers_and_a_reset_is_no_gap() {
        let mut q = Quality::default();
        for seq in [1, 2, 5, 6, 1, 2, 4] {
            q.reading((0, 0), None, Some(seq), 0);
        }
        assert_eq!(q.seq_gaps, 2 + 1);
    }

    #[test]
    fn the_rejection_rate_rolls() {
        let mut q = Quality::default();
        for _ in 0..40 {
            q.message(true);
        }
        assert!(q.rejection_rate > 0.9);
        for _ in 0..80 {
            q.message(false);
        }
        assert!(q.rejection_rate < 0.01);
    }

    #[test]
    fn seq_is_read_only_from_data_that_names_it() {
        assert_eq!(seq_of(r#"{"seq":42,"t":1}"#), Some(42));
        assert_eq!(seq_of(r#"{"seq":"x"}"#), None);
        assert_eq!(seq_of(r#"{"t":1}"#), None);
    }
}
