//! `CapturedLogs`: a slog drain that keeps every record as its key-value pairs, so that
//! the integration tests and the examples read the typed events Eliot emitted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use slog::{Drain, Logger, KV};

/// One record: its keys (the logger's and the record's own, the record's winning) and
/// `msg`.
pub type Fields = BTreeMap<String, String>;

#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<Fields>>>);

impl CapturedLogs {
    pub fn logger(&self) -> Logger {
        Logger::root(self.clone().fuse(), slog::o!())
    }

    /// Every record whose `event` key is `event`.
    pub fn events(&self, event: &str) -> Vec<Fields> {
        self.records()
            .into_iter()
            .filter(|r| r.get("event").map(String::as_str) == Some(event))
            .collect()
    }

    /// Every record kept so far, oldest first.
    pub fn records(&self) -> Vec<Fields> {
        self.lock().clone()
    }

    /// The records kept from the `from`-th on (for a reader that follows the log).
    pub fn records_from(&self, from: usize) -> Vec<Fields> {
        self.lock()
            .get(from..)
            .map(<[Fields]>::to_vec)
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fields>> {
        // A test that panicked while holding the lock left whole records behind.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct Collect(Fields);

impl slog::Serializer for Collect {
    fn emit_arguments(&mut self, key: slog::Key, value: &std::fmt::Arguments) -> slog::Result {
        self.0.insert(key.to_string(), value.to_string());
        Ok(())
    }
}

impl Drain for CapturedLogs {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let mut fields = Collect(Fields::new());
        let _ = values.serialize(record, &mut fields);
        let _ = record.kv().serialize(record, &mut fields);
        fields.0.insert("msg".into(), record.msg().to_string());
        self.lock().push(fields.0);
        Ok(())
    }
}
