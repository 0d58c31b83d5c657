//! The black-box acceptance suite: Eliot as its users meet it.
//!
//! Every test starts the built `eliot` binary as a process of its own, with a temporary
//! data directory, and talks to it only over sockets (MQTT, HTTP). The database is read
//! only from other processes: the `sqlite3` shell (`.ci/run` installs it), and this same
//! executable started again as a helper with its own SQLite (`ELIOT_BLACKBOX_HELPER`).
//! Faults come from outside too: SIGKILL, another process holding SQLite's lock, a reader
//! keeping an old snapshot, writes that split packets. A test inside Eliot's process shares
//! what users never share (SQLite's lock table, a well-behaved client): the worst defect
//! found so far, acked readings lost once anyone queried the database, passed them all.
//! Every later test of a guarantee belongs here.
//!
//! # Layout
//!
//! - `support`: the helper, HTTP from outside (the API with its tokens too), seeded
//!   randomness, the tests' runtime.
//! - `alerts`: thresholds firing once and resolving once, from two connections at once,
//!   across kill -9; absence by each device's rhythm, across a restart; a webhook failing
//!   then recovering; silences and acknowledgements (a webhook receiver the test runs).
//! - `anomalies`: scores kept, served and bounded; detectors rebuilt after kill -9.
//! - `api_auth`: the API v1's credentials matrix on every route and method, the open
//!   OpenAPI document, bad tokens rate-limited, no tokens on loopback.
//! - `api_readings`: paging a device's readings while it publishes: no gap, no repeat;
//!   cursors garbage, altered or used with other filters refused.
//! - `api_devices`: the fleet through the API: a device online then offline with its
//!   times, its events paged, the listing's filters and sorts, paging while devices
//!   appear, release, and the fleet's routes with the fleet off.
//! - `api_dead_letters`: paging dead letters while devices send rejected messages, the
//!   filters, payloads as text or base64.
//! - `api_mutations`: provisioning, rotate and delete closing live connections, purge,
//!   replay after a configuration change, and the admin role each mutation needs.
//! - `dashboard`: log in, a new device shown live, log out, in headless Chromium; strict
//!   session cookies, forged and anonymous requests refused (over plain HTTP).
//! - `drills`: kill -9 mid-stream, its stress mode (`ELIOT_KILL_ROUNDS` rounds of varied
//!   fleets, pace, kills and readers, 20 by default; `ELIOT_KILL_SEED` repeats a run), a
//!   stalled store, SIGTERM under load.
//! - `fleet`: device state and presence (online, offline, late by rhythm), restarts,
//!   quarantine, read from the database the fleet persists to; `fleet_counts`: counts
//!   exact while the shards' mailboxes are full; `fleet_status`: a will on the upstream
//!   status topic (a real Mosquitto) makes a device offline at once.
//! - `outside_reader`: a user's `sqlite3` counting and backing up while Eliot is killed.
//! - `locks`: Eliot's SHARED lock on its database, seen in `/proc/locks`.
//! - `long_read`: a reader keeping its snapshot for 60 s during ingest.
//! - `packet_timer`: a device whose writes split packets, for 60 s; one whose packets
//!   wait in the socket through a 40 s store stall.
//! - `quick_start`: README's first commands, run as written.
//! - `wal_load`: the load behind `locks` and `long_read`.
//!
//! `ELIOT_BLACKBOX_BIN=/path/to/eliot` runs the suite against another build (the one
//! before a change, to see a test fail).

#[path = "../common/mod.rs"]
mod common;

mod alerts;
mod anomalies;
mod api_auth;
mod api_dead_letters;
mod api_devices;
mod api_mutations;
mod api_readings;
mod dashboard;
mod drills;
mod fleet;
mod fleet_counts;
mod fleet_status;
mod locks;
mod long_read;
mod outside_reader;
mod packet_timer;
mod quick_start;
mod support;
mod wal_load;

use libtest_mimic::{Arguments, Trial};

fn main() {
    if support::helper::requested() {
        return support::helper::main();
    }
    let mut args = Arguments::from_args();
    // These tests spend most of their time waiting (a 60 s read held, 60 s of streaming, a
    // 40 s stall, restarts after kills), not computing: four at once on two cores, unless
    // `--test-threads` says otherwise.
    args.test_threads.get_or_insert(4);
    let tests = [
        alerts::tests(),
        anomalies::tests(),
        api_auth::tests(),
        api_readings::tests(),
        api_dead_letters::tests(),
        api_devices::tests(),
        api_mutations::tests(),
        dashboard::tests(),
        drills::tests(),
        fleet::tests(),
        fleet_counts::tests(),
        fleet_status::tests(),
        outside_reader::tests(),
        locks::tests(),
        long_read::tests(),
        packet_timer::tests(),
        quick_start::tests(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<Trial>>();
    libtest_mimic::run(&args, tests).exit();
}
