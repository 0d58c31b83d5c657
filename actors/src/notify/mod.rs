//! Alerting's outside: `AlertsHandle` (`handle.rs`), what the HTTP API asks (the alerts
//! as committed, silences, retries), and notifications: the `Notifier` delivers each alert event that is due one (a row of
//! `alert_deliveries`, committed with its event) to the webhook, in event order, at least
//! once.
//!
//! - It reads the outbox from the database (committed rows only: an event whose commit
//!   was lost to a crash was never sent), one notification at a time: the ones after a
//!   failing notification wait for it, so a receiver sees them in order.
//! - A failed attempt waits `alerts.webhook.backoff`, doubling up to `backoff_max`; after
//!   `max_attempts` the notification is kept as failed (retryable through the API) and the
//!   next goes.
//! - Each attempt's outcome goes to the store writer, written with its next batch. A
//!   notification delivered just before a crash, whose record was not yet committed, is
//!   sent again after the restart: receivers deduplicate on `X-Eliot-Event-Id`.

mod handle;
mod notifier;
mod self_watch;

pub use handle::{AlertsError, AlertsHandle, Retried, RuleChange, RuleSource};
pub use notifier::{Notifier, NotifierLinks, NAME as NOTIFIER};
pub use self_watch::{SelfWatch, NAME as SELF_WATCH};
