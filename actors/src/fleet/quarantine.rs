//! Quarantine: a device whose rolling rejection rate (after a minimum of messages) or
//! clock skew crosses its threshold is quarantined. It stays visible (status
//! `quarantined`, an event with the reason), its messages still arrive and are still
//! acked, but they are kept as dead letters with reason `quarantined: ...` instead of
//! readings, until it is released (`FleetHandle::release`) or its quarantine expires
//! (`fleet.quarantine_duration`).
//!
//! How it relates to the device guard (`supervision/device_guard.rs`): the guard protects
//! Eliot. Its breakers count rejections per client over seconds, close the connection and
//! refuse CONNECT for a cool-down; the device is simply kept out, and nothing of it is
//! stored. Quarantine protects the data: it judges a device over its own history, keeps
//! it connected and heard, keeps every message it sends (as dead letters, replayable),
//! and stays visible in the fleet's state until someone looks. A device may be in both.
//!
//! The check happens before storing, in the pipeline, against the `QuarantineSet`: the
//! set of quarantined ids, written only by the shards when a device enters or leaves
//! quarantine. Why that is not a shared lock on the data path: while no device is
//! quarantined (the normal case) the pipeline reads one atomic counter and takes no lock;
//! otherwise it takes the read side of an `RwLock` once per turn of a connection, which
//! readers share without waiting for each other; the write side is taken only by a
//! quarantine or a release, rare by nature. The device state itself is never shared.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use super::quality::Quality;
use super::settings::FleetSettings;

/// The quarantined devices and why, shared by the shards (writers) and the pipeline.
#[derive(Debug, Default)]
pub struct QuarantineSet {
    /// How many are quarantined: the pipeline's lock-free fast path when zero.
    count: AtomicUsize,
    ids: RwLock<HashMap<String, String>>,
}

impl QuarantineSet {
    pub fn insert(&self, device_id: &str, why: &str) {
        let mut ids = self.ids.write().unwrap_or_else(|e| e.into_inner());
        ids.insert(device_id.to_owned(), why.to_owned());
        self.count.store(ids.len(), Ordering::Release);
    }

    pub fn remove(&self, device_id: &str) {
        let mut ids = self.ids.write().unwrap_or_else(|e| e.into_inner());
        ids.remove(device_id);
        self.count.store(ids.len(), Ordering::Release);
    }

    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    /// Calls `each` for every item of `devices` whose device is quarantined, with the
    /// reason: one read lock for all of them.
    pub fn check<'a, T: 'a>(
        &self,
        devices: impl IntoIterator<Item = (&'a str, T)>,
        mut each: impl FnMut(T, &str),
    ) {
        if self.is_empty() {
            return;
        }
        let ids = self.ids.read().unwrap_or_else(|e| e.into_inner());
        for (device, item) in devices {
            if let Some(why) = ids.get(device) {
                each(item, why);
            }
        }
    }
}

/// Why a device with this quality and this many messages must be quarantined, if it must.
pub fn verdict(quality: &Quality, messages: u64, settings: &FleetSettings) -> Option<String> {
    let rate = settings.quarantine_rejection_rate;
    if rate > 0.0 && messages >= settings.quarantine_min_messages && quality.rejection_rate >= rate
    {
        return Some(format!(
            "rejection rate {:.0}% reached the threshold of {:.0}%",
            quality.rejection_rate * 100.0,
            rate * 100.0
        ));
    }
    let max_skew = settings.quarantine_max_skew.as_millis() as f64;
    if max_skew > 0.0
        && quality.skew_samples >= settings.min_samples
        && quality.skew_ms.abs() > max_skew
    {
        return Some(format!(
            "clock skew of {:.0} ms beyond the limit of {max_skew:.0} ms",
            quality.skew_ms
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_high_rejection_rate_quarantines_only_after_the_minimum_of_messages() {
        let settings = FleetSettings::for_tests();
        let quality = Quality {
            rejection_rate: 0.8,
            ..Quality::default()
        };
        assert_eq!(verdict(&quality, 19, &settings), None);
        let why = verdict(&quality, 20, &settings).unwrap();
        assert!(why.contains("rejection rate 80%"), "{why}");
        let fine = Quality {
            rejection_rate: 0.3,
            ..Quality::default()
        };
        assert_eq!(verdict(&fine, 1000, &settings), None);
    }

    #[test]
    fn skew_beyond_the_limit_either_way_quarantines() {
        let settings = FleetSettings::for_tests();
        let skewed = |skew_ms| Quality {
            skew_ms,
            skew_samples: 10,
            ..Quality::default()
        };
        assert!(verdict(&skewed(-3_700_000.0), 10, &settings).is_some());
        assert!(verdict(&skewed(3_700_000.0), 10, &settings).is_some());
        assert!(verdict(&skewed(3_500_000.0), 10, &settings).is_none());
        let off = FleetSettings {
            quarantine_max_skew: std::time::Duration::ZERO,
            quarantine_rejection_rate: 0.0,
            ..settings
        };
        let worst = Quality {
            rejection_rate: 1.0,
            ..skewed(1e12)
        };
        assert!(verdict(&worst, 1000, &off).is_none(), "both thresholds off");
    }

    #[test]
    fn the_set_answers_for_quarantined_devices_only() {
        let set = QuarantineSet::default();
        assert!(set.is_empty());
        set.insert("d1", "bad data");
        let mut found = Vec::new();
        set.check([("d1", 0), ("d2", 1)], |i, why| {
            found.push((i, why.to_owned()))
        });
        assert_eq!(found, [(0, "bad data".to_owned())]);
        set.remove("d1");
        assert!(set.is_empty());
    }
}
