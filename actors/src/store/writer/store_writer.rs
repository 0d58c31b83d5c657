//! `StoreWriter`: batches outcomes from every connection into one SQLite transaction.
//!
//! It runs on its own arbiter (thread), so a commit blocks only this actor. A batch is
//! committed when it holds `batch_max` rows or when its oldest row has waited
//! `batch_delay`; each request is answered only after its transaction committed, and
//! the connection acks only then (acked ⇒ stored). A failed commit is retried at the
//! pace the store's circuit breaker sets, and until it succeeds the writer takes no new
//! request: the backlog stays in the devices, not in memory.

use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use super::super::alerts::AlertWrites;
use super::super::database::{Amendment, Store};
use super::super::device_state::FleetWrites;
use super::super::purge::Purges;
use super::super::readings::SharedMemtable;
use super::super::settings::StoreSettings;
use super::failure::FailureKind;
use super::upkeep::{merge_after, UPKEEP_WHEN_IDLE};
use crate::message::Outcome;
use crate::observe::{Event, Queued, Telemetry};
use crate::supervision::{catch_panic, Breaker, CallResult, Report, Restarts, StoreProgress};

pub const NAME: &str = "store_writer";

/// Why a message was not committed. Nothing in it was acked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotStored(pub String);

/// Answer to a [`Persist`]: once its outcomes are committed, the positions of those the
/// store amended (a conflict made a dead letter, a redelivered dead letter kept once).
pub type Committed = Result<Vec<(usize, Amendment)>, NotStored>;

/// Write these outcomes (those of the messages a connection read in one go); `done` is
/// answered after the commit that holds them all.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Persist {
    pub outcomes: Vec<Outcome>,
    /// Alert changes the messages caused, by the position of the message in `outcomes`:
    /// written in the same transaction, unless the store amended that message.
    pub alerts: Vec<(usize, AlertWrites)>,
    pub done: oneshot::Sender<Committed>,
    /// Counts this request in the store writer's queue until it is handled.
    pub queued: Queued,
}

/// Sends `outcomes` to the writer and waits for their commit. Waits for mailbox room first,
/// so a slow store slows the caller instead of growing a queue.
pub async fn persist(
    writer: &Addr<StoreWriter>,
    (outcomes, alerts): (Vec<Outcome>, Vec<(usize, AlertWrites)>),
    queued: Queued,
) -> Committed {
    let (done, committed) = oneshot::channel();
    writer
        .send(Persist {
            outcomes,
            alerts,
            done,
            queued,
        })
        .await
        .map_err(|e| NotStored(format!("store writer unavailable: {e}")))?;
    committed
        .await
        .map_err(|_| NotStored("store writer stopped before committing".into()))?
}

/// A request waiting for its commit.
struct Request {
    outcomes: Vec<Outcome>,
    alerts: Vec<(usize, AlertWrites)>,
    done: oneshot::Sender<Committed>,
}

/// Requests waiting for the same commit, in arrival order.
type Batch = Vec<Request>;

pub struct StoreWriter {
    pub(super) settings: StoreSettings,
    /// `None` between a failure and the reopening that follows the restart's backoff.
    pub(in crate::store) store: Option<Store>,
    /// Requests waiting for the next commit.
    pending: Batch,
    /// Rows in `pending` (a batch message counts each of its readings).
    pub(in crate::store) pending_rows: usize,
    /// The fleet's device rows and events, written in the next batch's transaction.
    pub(super) fleet_pending: FleetWrites,
    /// The timer that commits a partial batch after `batch_delay`.
    pub(super) flush_timer: Option<SpawnHandle>,
    restarts: Restarts,
    /// Why the writer stopped, for the restart's reason.
    pub(in crate::store) last_failure: Option<String>,
    /// Devices whose readings are being purged, a step at a time between commits.
    pub(in crate::store) purges: Purges,
    /// The memtable, shared with the readers: the same one across reopenings.
    memtable: SharedMemtable,
    /// The store's circuit breaker, told of every failed commit and of the first
    /// success after one.
    breaker: Addr<Breaker>,
    /// True from a failed commit until the next successful one.
    failing: bool,
    /// Rows the last commit wrote, if it succeeded: one step of upkeep follows the answers.
    committed_rows: usize,
    /// A commit happened since the idle timer's last tick: the writer is not idle, and the
    /// steps after the commits pace the merge.
    wrote_since_tick: bool,
    /// The commit latency and backlog, for health and readiness.
    pub(in crate::store) progress: Arc<StoreProgress>,
    pub(in crate::store) telemetry: Telemetry,
}

/// What the store writer works with, besides its settings and database.
pub struct StoreWriterLinks {
    pub restarts: Restarts,
    pub breaker: Addr<Breaker>,
    pub progress: Arc<StoreProgress>,
}

impl StoreWriter {
    /// `store` is the database the tree opened; after a restart the writer reopens it.
    pub fn new(
        settings: StoreSettings,
        store: Store,
        links: StoreWriterLinks,
        telemetry: &Telemetry,
    ) -> Self {
        StoreWriter {
            settings,
            memtable: store.memtable(),
            store: Some(store),
            pending: Vec::new(),
            pending_rows: 0,
            fleet_pending: FleetWrites::default(),
            flush_timer: None,
            restarts: links.restarts,
            last_failure: None,
            purges: Purges::new(),
            breaker: links.breaker,
            failing: false,
            committed_rows: 0,
            wrote_since_tick: false,
            progress: links.progress,
            telemetry: telemetry.for_actor(NAME),
        }
    }

    /// Runs after the restart backoff: a fresh connection, since a failure may have left
    /// the old one mid-transaction. Failing to open stops the writer again, and the next
    /// restart waits longer.
    fn reopen(&mut self, ctx: &mut Context<Self>) {
        if self.store.is_some() {
            return;
        }
        match open_store(&self.settings, self.memtable.clone()) {
            Ok(store) => self.store = Some(store),
            Err(error) => {
                Event::StoreFailed {
                    error: &format!("reopening the database: {error}"),
                    requests: self.pending.len(),
                }
                .emit(&self.telemetry);
                self.last_failure = Some(format!("reopening the database failed: {error}"));
                ctx.stop();
            }
        }
    }

    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.flush_timer.take() {
            ctx.cancel_future(timer);
        }
        if self.pending.is_empty() && self.fleet_pending.is_empty() {
            return;
        }
        let batch = mem::take(&mut self.pending);
        self.pending_rows = 0;
        self.commit(batch, ctx);
        let committed = mem::take(&mut self.committed_rows);
        if committed > 0 {
            self.upkeep(merge_after(committed), ctx);
        }
    }

    /// Commits `batch` and answers every request in it. A failed commit answers nothing:
    /// the batch is retried when the store breaker allows, and meanwhile this actor takes
    /// no new request, so the connections stop reading their sockets (backpressure).
    fn commit(&mut self, batch: Batch, ctx: &mut Context<Self>) {
        let started = Instant::now();
        let fleet = &self.fleet_pending;
        let written = match self.store.as_mut() {
            None => Ok(Err((
                FailureKind::Broken,
                NotStored("the database is not open".into()),
            ))),
            Some(store) => catch_panic(|| {
                fail::fail_point!("store::write", |kind| Err((
                    match kind.as_deref() {
                        Some("broken") => FailureKind::Broken,
                        _ => FailureKind::Transient,
                    },
                    NotStored("injected store failure".into())
                )));
                let mut offset = 0;
                let mut tied = Vec::new();
                for request in &batch {
                    tied.extend(request.alerts.iter().map(|(i, w)| (offset + i, w)));
                    offset += request.outcomes.len();
                }
                store
                    .write_with(batch.iter().flat_map(|r| &r.outcomes), fleet, &tied)
                    .map_err(|e| (e.kind(), NotStored(e.to_string())))
            }),
        };
        let answer = match written {
            Ok(Ok(stats)) => {
                let took = started.elapsed();
                self.fleet_pending = FleetWrites::default();
                if stats.shed.rows > 0 {
                    Event::DeadLettersShed {
                        rows: stats.shed.rows,
                        bytes: stats.shed.bytes,
                        quota: self.settings.dead_letter_quota,
                    }
                    .emit(&self.telemetry);
                }
                Event::BatchCommitted {
                    rows: stats.readings,
                    duplicates: stats.duplicates,
                    dead_letters: stats.dead_letters,
                    took,
                }
                .emit(&self.telemetry);
                if mem::take(&mut self.failing) {
                    self.breaker.do_send(Report(CallResult::Success));
                    self.progress.set_condition(None);
                }
                self.progress
                    .committed(took, self.pending_rows, Instant::now());
                self.committed_rows = stats.readings + stats.dead_letters + stats.duplicates;
                self.wrote_since_tick = true;
                Ok(stats.amended)
            }
            // Not open (a failed reopen, stopping): the restart will deal with it.
            Ok(Err((_, failure))) if self.store.is_none() => Err(failure),
            Ok(Err((FailureKind::Transient, failure))) => return self.retry(batch, failure, ctx),
            Ok(Err((FailureKind::Full, failure))) => {
                self.make_room(&failure);
                return self.retry(batch, failure, ctx);
            }
            // This connection will not heal: answer the batch (its devices re-send), and
            // restart to reopen; if reopening keeps failing, the restart intensity
            // escalates and Eliot exits for its own supervisor to deal with.
            Ok(Err((FailureKind::Broken, failure))) => {
                Event::StoreFailed {
                    error: &failure.0,
                    requests: batch.len(),
                }
                .emit(&self.telemetry);
                self.last_failure = Some(format!("the database cannot be written: {failure}"));
                ctx.stop();
                Err(failure)
            }
            Err(panic) => {
                Event::ActorPanicked { panic: &panic }.emit(&self.telemetry);
                ctx.stop();
                self.last_failure = Some(format!("panic: {panic}"));
                Err(NotStored(format!("store writer panic: {panic}")))
            }
        };
        if answer.is_err() {
            // Answered, if not committed: the batch no longer waits.
            self.progress.settled(self.pending_rows);
        }
        let mut amended = answer.as_ref().map(|r| r.iter().peekable()).ok();
        let mut offset = 0;
        for Request { outcomes, done, .. } in batch {
            // Each request gets the positions of its own amendments.
            let end = offset + outcomes.len();
            let own = match &mut amended {
                Some(all) => {
                    let mut own = Vec::new();
                    while let Some((i, how)) = all.next_if(|(i, _)| *i < end) {
                        own.push((i - offset, how.clone()));
                    }
                    Ok(own)
                }
                None => answer.clone().map(|_| Vec::new()),
            };
            offset = end;
            // The requester may have gone (connection closed): nothing to tell it.
            let _ = done.send(own);
        }
    }

    /// The disk is full: dead letters are shed first, so that readings can be written; while
    /// nothing can be, the store reports the condition (health `failed`, `/ready` 503) and
    /// acks nothing (the retry, paced by the breaker, holds the mailbox).
    fn make_room(&mut self, failure: &NotStored) {
        self.progress
            .set_condition(Some(format!("the disk is full: {failure}")));
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match store.make_room() {
            Ok(shed) if shed.rows > 0 => Event::DeadLettersShed {
                rows: shed.rows,
                bytes: shed.bytes,
                quota: self.settings.dead_letter_quota,
            }
            .emit(&self.telemetry),
            Ok(_) => {}
            Err(e) => Event::StoreFailed {
                error: &format!("shedding dead letters for room: {e}"),
                requests: 0,
            }
            .emit(&self.telemetry),
        }
    }

    fn retry(&mut self, batch: Batch, failure: NotStored, ctx: &mut Context<Self>) {
        self.failing = true;
        let rows = batch
            .iter()
            .flat_map(|r| &r.outcomes)
            .map(Outcome::len)
            .sum();
        let verdict = self
            .breaker
            .send(Report(CallResult::Failure(failure.0.clone())));
        let telemetry = self.telemetry.clone();
        let waited = async move {
            let wait = verdict.await.unwrap_or(Duration::from_secs(1));
            Event::StoreRetry {
                rows,
                wait,
                error: &failure.0,
            }
            .emit(&telemetry);
            actix::clock::sleep(wait).await;
        };
        ctx.wait(
            waited
                .into_actor(self)
                .map(move |(), writer, ctx| writer.commit(batch, ctx)),
        );
    }
}

/// Reopens the database after a restart. A database file that is gone is not recreated
/// empty in its place: readings and sessions would silently vanish. The reopen fails
/// instead, and if it keeps failing the restart intensity escalates.
fn open_store(settings: &StoreSettings, memtable: SharedMemtable) -> Result<Store, String> {
    fail::fail_point!("store::open", |_| Err("injected open failure".to_owned()));
    let path = settings.db_path();
    if !path.exists() {
        return Err(format!("the database file {} is gone", path.display()));
    }
    Store::open_sharing(settings, memtable).map_err(|e| e.to_string())
}

impl Actor for StoreWriter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.settings.mailbox);
        self.restarts.start(ctx, |writer, ctx| {
            writer.reopen(ctx);
            writer.opened();
        });
        // Merging and retention go on while no device writes.
        ctx.run_interval(UPKEEP_WHEN_IDLE, |writer, ctx| {
            if !mem::take(&mut writer.wrote_since_tick) {
                writer.upkeep(usize::MAX, ctx);
            }
        });
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        // Commit what is waiting rather than drop it with the actor.
        self.flush(ctx);
        Running::Stop
    }
}

impl Supervised for StoreWriter {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.store = None;
        // Their steps were the stopped actor's: each caller is told, and may purge again.
        for job in self.purges.drain(..) {
            job.fail(NotStored(
                "the store writer restarted during the purge".into(),
            ));
        }
        let reason = self.last_failure.take().unwrap_or_else(|| "stopped".into());
        self.restarts.restarting(reason);
    }
}

crate::answers_pings!(StoreWriter);

impl Handler<Persist> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: Persist, ctx: &mut Context<Self>) {
        self.pending_rows += msg.outcomes.iter().map(Outcome::len).sum::<usize>();
        self.pending.push(Request {
            outcomes: msg.outcomes,
            alerts: msg.alerts,
            done: msg.done,
        });
        self.progress.received(self.pending_rows, Instant::now());
        if self.pending_rows >= self.settings.batch_max {
            self.flush(ctx);
        } else if self.flush_timer.is_none() {
            self.flush_timer = Some(ctx.run_later(self.settings.batch_delay, |writer, ctx| {
                writer.flush_timer = None;
                writer.flush(ctx);
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn a_vanished_database_is_not_recreated_empty_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let settings = StoreSettings::for_tests(dir.path());
        let memtable = SharedMemtable::default();
        let error = open_store(&settings, memtable.clone()).err().unwrap();
        assert!(error.contains("is gone"), "{error}");
        Store::open(&settings).unwrap();
        assert!(
            open_store(&settings, memtable).is_ok(),
            "an existing database reopens"
        );
    }

    #[test]
    fn sqlite_failures_are_classified_by_what_the_writer_can_do() {
        use rusqlite::ffi;
        let failure = |code| StoreError::Sqlite {
            path: "x".into(),
            source: rusqlite::Error::SqliteFailure(ffi::Error::new(code), None),
        };
        assert_eq!(failure(ffi::SQLITE_FULL).kind(), FailureKind::Full);
        assert_eq!(failure(ffi::SQLITE_BUSY).kind(), FailureKind::Transient);
        assert_eq!(failure(ffi::SQLITE_READONLY).kind(), FailureKind::Broken);
        assert_eq!(failure(ffi::SQLITE_CORRUPT).kind(), FailureKind::Broken);
        assert_eq!(failure(ffi::SQLITE_NOTADB).kind(), FailureKind::Broken);
    }
}
