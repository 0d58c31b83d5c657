//! Revocation: credentials checked only at CONNECT would outlive their revocation, so the
//! endpoint reads the revocation log (see `identity::revocations`) every
//! `REVOCATION_POLL` and closes the connections of every device whose secret was rotated
//! or which was removed, whichever process did it. An authenticated client's client id is
//! its device id (`admission`), so each revocation is one look-up in the registry.
//!
//! A login checked just before a revocation may finish its admission just after the
//! revocation was acted on, when there was no connection yet to close: the revocations
//! acted on lately are kept (`Recent`), and admission refuses a device revoked since it
//! began.
//!
//! The log is read off the actor's thread, one poll at a time; with `auth.mode = none`
//! there are no identities, and it is not read at all.

use std::collections::VecDeque;
use std::time::Duration;

use actix::prelude::*;

use super::device_connection::CredentialsRevoked;
use super::device_endpoint::DeviceEndpoint;
use crate::identity::{AuthMode, Cause, RevocationLog, Revoked};
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

/// The devices revoked lately, each with the number of the poll that revoked it.
#[derive(Default)]
pub(super) struct Recent {
    /// Oldest first; `None`: every device (revocations were missed).
    revoked: VecDeque<(u64, Option<String>)>,
    /// The number of the last poll that revoked anything.
    polls: u64,
    /// The last poll some of whose entries were dropped for room.
    forgotten_through: u64,
}

impl Recent {
    /// Where admission begins: it asks `revoked_since` this mark once it is done.
    pub(super) fn mark(&self) -> u64 {
        self.polls
    }

    fn record(&mut self, devices: impl IntoIterator<Item = Option<String>>) {
        self.polls += 1;
        for device in devices {
            if self.revoked.len() == RECENT_MAX {
                if let Some((poll, _)) = self.revoked.pop_front() {
                    self.forgotten_through = poll;
                }
            }
            self.revoked.push_back((self.polls, device));
        }
    }

    /// Whether `device` was revoked after `mark`; also true when that can no longer be
    /// told (entries dropped for room), since letting a revoked device in is the worse.
    pub(super) fn revoked_since(&self, mark: u64, device: &str) -> bool {
        if self.forgotten_through > mark {
            return true;
        }
        self.revoked
            .iter()
            .rev()
            .take_while(|(poll, _)| *poll > mark)
            .any(|(_, revoked)| revoked.as_deref().is_none_or(|d| d == device))
    }
}

impl Revocations {
    /// A poll in flight belonged to a context that is gone.
    pub(super) fn restarting(&mut self) {
        self.polling = false;
    }
}

impl DeviceEndpoint {
    /// Opens the log before accepting, so that every login checked from now on is older
    /// than the first row read; then polls it.
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
            Revoked::Devices(devices) if devices.is_empty() => {}
            Revoked::Devices(devices) => {
                let names = devices.iter().map(|(device, _)| Some(device.clone()));
                self.revocations.recent.record(names);
                for (device, cause) in devices {
                    // A delayed will was set under the revoked credentials (maybe by
                    // whoever leaked the secret): it is dropped, not published.
                    let _dropped = self.pending_wills.take(&device, ctx);
                    let connection = self.connections.get(&device);
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
            }
            Revoked::Unknown => {
                self.revocations.recent.record([None]);
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
    fn an_admission_sees_the_revocations_acted_on_since_it_began() {
        let mut recent = Recent::default();
        recent.record([Some("robot_1".to_owned())]);
        let mark = recent.mark();
        assert!(
            !recent.revoked_since(mark, "robot_1"),
            "revoked before it began"
        );
        recent.record([Some("robot_2".to_owned())]);
        assert!(recent.revoked_since(mark, "robot_2"));
        assert!(!recent.revoked_since(mark, "robot_1"));
        recent.record([None]);
        assert!(recent.revoked_since(mark, "robot_1"), "every device");
    }

    #[test]
    fn when_entries_were_dropped_for_room_an_older_admission_is_refused() {
        let mut recent = Recent::default();
        let mark = recent.mark();
        recent.record((0..=RECENT_MAX).map(|n| Some(format!("robot_{n}"))));
        assert_eq!(recent.revoked.len(), RECENT_MAX);
        assert!(recent.revoked_since(mark, "anyone"));
        let later = recent.mark();
        assert!(!recent.revoked_since(later, "anyone"));
    }
}
