//! The silences in force: loaded at start, changed by the API after it wrote them, read by
//! the shards only when an alert fires or resolves (rare), so a lock is cheap here.

use std::sync::RwLock;

use crate::store::SilenceRow;

#[derive(Debug, Default)]
pub struct Silences {
    rows: RwLock<Vec<SilenceRow>>,
}

impl Silences {
    pub fn new(rows: Vec<SilenceRow>) -> Silences {
        Silences {
            rows: RwLock::new(rows),
        }
    }

    /// Whether a silence in force at `now` covers `rule` on `device_id`.
    pub fn covers(&self, rule: &str, device_id: &str, now: i64) -> bool {
        let rows = self.rows.read().unwrap_or_else(|e| e.into_inner());
        rows.iter().any(|s| {
            s.until > now
                && s.rule.as_deref().is_none_or(|r| r == rule)
                && s.device_id.as_deref().is_none_or(|d| d == device_id)
        })
    }

    pub fn add(&self, row: SilenceRow) {
        let mut rows = self.rows.write().unwrap_or_else(|e| e.into_inner());
        rows.push(row);
    }

    pub fn remove(&self, id: i64) {
        let mut rows = self.rows.write().unwrap_or_else(|e| e.into_inner());
        rows.retain(|s| s.id != id);
    }

    /// Those in force at `now`; the ended ones are dropped.
    pub fn in_force(&self, now: i64) -> Vec<SilenceRow> {
        let mut rows = self.rows.write().unwrap_or_else(|e| e.into_inner());
        rows.retain(|s| s.until > now);
        rows.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(id: i64, rule: Option<&str>, device: Option<&str>, until: i64) -> SilenceRow {
        SilenceRow {
            id,
            rule: rule.map(str::to_owned),
            device_id: device.map(str::to_owned),
            until,
            created_at: 0,
            comment: String::new(),
        }
    }

    #[test]
    fn a_silence_covers_its_rule_its_device_or_both_until_it_ends() {
        let silences = Silences::new(vec![
            silence(1, Some("hot"), None, 100),
            silence(2, None, Some("d9"), 100),
            silence(3, Some("cold"), Some("d1"), 100),
        ]);
        assert!(silences.covers("hot", "any", 50));
        assert!(silences.covers("other", "d9", 50));
        assert!(silences.covers("cold", "d1", 50));
        assert!(!silences.covers("cold", "d2", 50));
        assert!(!silences.covers("hot", "any", 100), "ended");
        silences.remove(1);
        assert!(!silences.covers("hot", "any", 50));
        assert_eq!(silences.in_force(100).len(), 0);
    }
}
