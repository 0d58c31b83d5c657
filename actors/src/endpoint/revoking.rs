//! Revocation: credentials checked only at CONNECT would outlive their revocation, so the
//! endpoint reads the revocation log (see `identity::revocations`) every
//! `REVOCATION_POLL` and closes the connections of every device whose secret was rotated
//! or which was removed, whichever process did it. An authenticated client's client id is
//! its device id (`admission`), so each revocation is one look-up in the registry.
//!
//! A revocation revokes only the logins checked before it: each check tells the log's
//! position as it read `devices` (`Authenticated::checked_at`), and a revocation at `seq`
//! closes a connection checked below `seq`. One checked at `seq` or later was checked
//! against what the rotation or removal left: a device that reconnects at once with its new
//! secret stays connected, though its old secret's revocation is read after it got in.
//!
//! A login checked just before a revocation may finish its admission just after the
//! revocation was acted on, when there was no connection yet to close: the revocations
//! acted on lately are kept (`Recent`), and admission refuses a login checked before one
//! of its device's.
//!
//! The log is read off the actor's thread, one poll at a time; with `auth.mode = none`
//! there are no identities, and it is not read at all.

use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;

use super::device_connection::CredentialsRevoked;
use super::device_endpoint::DeviceEndpoint;
use crate::identity::credentials::LogPosition;
use crate::identity::{AuthMode, Cause, Revocation, RevocationLog, Revoked};
use crate::observe::Event;

/// How often the log is read: a revoked device is closed within about this long.
pub(super) const REVOCATION_POLL: Duration = Duration::from_millis(250);

/// Revocations kept at most for the admissions in progress (`Recent`).
const RECENT_MAX: usize = 4_096;

/// Where the endpoint is in the revocation log.
#[derive(Default)]
pub(super) struct Revocations {
    /// The open log; `None` while a poll holds it, or after it failed (reopened).
    log: Option<RevocationLog>,
    /// The last row acted on: kept across restarts and reopenings, so none is skipped.
    seen: Option<i64>,
    polling: bool,
    /// Set while reading fails, so that a lasting failure is logged once, not every poll.
    failing: bool,
    /// The revocations acted on lately, for the admissions in progress.
    pub(super) recent: Recent,
}

/// The revocations acted on lately, for the admissions in progress.
#[derive(Default)]
pub(super) struct Recent {
    /// Oldest first, by `seq`; a device of `None`: every device (revocations were missed).
    revoked: VecDeque<(LogPosition, Option<String>)>,
    /// The last `seq` dropped for room.
    forgotten_through: LogPosition,
}

impl Recent {
    fn record(&mut self, revoked: impl IntoIterator<Item = (LogPosition, Option<String>)>) {
        for entry in revoked {
            if self.revoked.len() == RECENT_MAX {
                if let Some((seq, _)) = self.revoked.pop_front() {
                    self.forgotten_through = seq;
                }
            }
            self.revoked.push_back(entry);
        }
    }

    /// Whether a login as `device` checked at `checked_at` was revoked since: also true
    /// when that can no longer be told (entries dropped for room), since letting a revoked
    /// device in is the worse.
    pub(super) fn revoked_after(&self, checked_at: LogPosition, device: &str) -> bool {
        if self.forgotten_through > checked_at {
            return true;
        }
        self.revoked
            .iter()
            .rev()
            .take_while(|(seq, _)| *seq > checked_at)
            .any(|(_, revoked)| revoked.as_deref().is_none_or(|d| d == device))
    }
}

/// Whether the revocation logged at `seq` revokes a login checked at `checked_at`: only
/// if the check did not see it.
pub(super) fn revokes(seq: LogPosition, checked_at: LogPosition) -> bool {
    checked_at < seq
}

impl Revocations {
    /// A poll in flight belonged to a context that is gone.
    pub(super) fn restarting(&mut self) {
        self.polling = false;
    }
}

impl DeviceEndpoint {
    /// Opens the log before accepting, so that every revocation logged from now on is
    /// read (what was logged before has no connection here); then polls it.
    pub(super) fn watch_revocations(&mut self, ctx: &mut Context<Self>) {
        let authenticator = &self.links.authenticator;
        if authenticator.mode() == AuthMode::None {
            return;
        }
        if self.revocations.log.is_none() {
            match RevocationLog::open(authenticator.db(), self.revocations.seen) {
                Ok(log) => {
                    self.revocations.failing = false;
                    self.revocations.seen = Some(log.seen());
                    self.revocations.log = Some(log);
                }
                Err(e) => self.log_unreadable(&e),
            }
        }
        ctx.run_interval(REVOCATION_POLL, |endpoint, ctx| {
            endpoint.poll_revocations(ctx)
        });
    }

    fn poll_revocations(&mut self, ctx: &mut Context<Self>) {
        if self.revocations.polling {
            return;
        }
        self.revocations.polling = true;
        let (log, seen) = (self.revocations.log.take(), self.revocations.seen);
        let db = self.links.authenticator.db().to_owned();
        let read = tokio::task::spawn_blocking(move || {
            let mut log = match log {
                Some(log) => log,
                None => RevocationLog::open(&db, seen)?,
            };
            let revoked = log.poll()?;
            Ok::<_, rusqlite::Error>((log, revoked))
        });
        read.into_actor(self)
            .map(|read, endpoint, ctx| {
                endpoint.revocations.polling = false;
                match read {
                    Ok(Ok((log, revoked))) => {
                        endpoint.revocations.failing = false;
                        endpoint.revocations.seen = Some(log.seen());
                        endpoint.revocations.log = Some(log);
                        endpoint.revoke(revoked, ctx);
                    }
                    Ok(Err(e)) => endpoint.log_unreadable(&e),
                    Err(e) => endpoint.log_unreadable(&e),
                }
            })
            .spawn(ctx);
    }

    fn revoke(&mut self, revoked: Revoked, ctx: &mut Context<Self>) {
        match revoked {
            Revoked::Devices(revocations) => {
                let entries = revocations.iter();
                let entries = entries.map(|r| (r.seq, Some(r.device.clone())));
                self.revocations.recent.record(entries);
                for revocation in revocations {
                    self.revoke_device(revocation, ctx);
                }
            }
            Revoked::Unknown { through } => {
                self.revocations.recent.record([(through, None)]);
                let why = "credentials maybe revoked: revocations were missed";
                for connection in self.connections.values() {
                    connection.addr.do_send(CredentialsRevoked { why });
                }
                Event::CredentialsRevoked {
                    device_id: None,
                    cause: "unknown",
                    connections: self.connections.len(),
                }
                .emit(&self.telemetry);
            }
        }
    }

    /// Closes the connection of `revocation.device` if its credentials were checked before
    /// the revocation; one checked after it is left alone.
    fn revoke_device(&mut self, revocation: Revocation, ctx: &mut Context<Self>) {
        let Revocation { seq, device, cause } = revocation;
        // A delayed will set under the revoked credentials (maybe by whoever leaked the
        // secret) is dropped, not published.
        let _dropped = self.pending_wills.take_checked_before(&device, seq, ctx);
        let connection = self
            .connections
            .get(&device)
            .filter(|connection| revokes(seq, connection.checked_at));
        if let Some(connection) = connection {
            let why = match cause {
                Cause::Rotated => "credentials revoked: the secret was rotated",
                Cause::Removed => "credentials revoked: the device was removed",
            };
            // Control, not data: one message per revoked device.
            connection.addr.do_send(CredentialsRevoked { why });
        }
        Event::CredentialsRevoked {
            device_id: Some(&device),
            cause: cause.name(),
            connections: usize::from(connection.is_some()),
        }
        .emit(&self.telemetry);
    }

    fn log_unreadable(&mut self, error: &dyn std::fmt::Display) {
        if std::mem::replace(&mut self.revocations.failing, true) {
            return;
        }
        Event::RevocationsUnreadable {
            error: &error.to_string(),
            retry_in: REVOCATION_POLL,
        }
        .emit(&self.telemetry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_revokes_the_logins_checked_before_it_and_no_later_one() {
        let n = 7;
        assert!(revokes(n, n - 1), "checked before the revocation: closed");
        assert!(
            !revokes(n, n),
            "checked with the revocation in the log: left alone"
        );
        assert!(!revokes(n, n + 1));
        let mut recent = Recent::default();
        recent.record([(n, Some("robot_1".to_owned()))]);
        assert!(recent.revoked_after(n - 1, "robot_1"), "refused at CONNACK");
        assert!(
            !recent.revoked_after(n, "robot_1"),
            "let in with the new secret"
        );
        assert!(!recent.revoked_after(n - 1, "robot_2"), "another device");
    }

    #[test]
    fn an_admission_sees_the_revocations_acted_on_after_its_check() {
        let mut recent = Recent::default();
        recent.record([(1, Some("robot_1".to_owned()))]);
        let checked_at = 1;
        recent.record([(2, Some("robot_2".to_owned()))]);
        assert!(recent.revoked_after(checked_at, "robot_2"));
        assert!(!recent.revoked_after(checked_at, "robot_1"));
        recent.record([(3, None)]);
        assert!(recent.revoked_after(checked_at, "robot_1"), "every device");
        assert!(
            !recent.revoked_after(3, "robot_1"),
            "checked after the rows missed"
        );
    }

    #[test]
    fn when_entries_were_dropped_for_room_an_older_admission_is_refused() {
        let mut recent = Recent::default();
        let checked_at = 0;
        let last = RECENT_MAX as LogPosition + 1;
        recent.record((1..=last).map(|seq| (seq, Some(format!("robot_{seq}")))));
        assert_eq!(recent.revoked.len(), RECENT_MAX);
        assert!(recent.revoked_after(checked_at, "anyone"));
        assert!(!recent.revoked_after(last, "anyone"));
        assert!(!recent.revoked_after(1, "anyone"), "only row 1 was dropped");
    }
}
