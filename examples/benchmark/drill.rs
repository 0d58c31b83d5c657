//! `drill`: kill -9 at scale. The sustained fleet (every 4th connection
//! ending each write one byte into the next packet) publishes into a fresh store as fast as
//! acks allow, with persistent sessions, until 10,000,000 readings are made and 120 s have
//! passed, whichever comes later, while Eliot is killed with SIGKILL several times, each at a
//! random point of its share of the run (of its readings and of its time, whichever is
//! reached later), and started again at once on the same data. The connections reconnect and
//! send again (DUP) whatever was not acked, until every reading is acked. Then Eliot is
//! stopped and its `readings` counted: each reading made must be there exactly once (none
//! lost, none twice), and none refused.
//!
//! Every server-side disconnect is put down to a kill when it happened between the kill and
//! `AFTER_READY` after Eliot answered `/ready` again; any other fails the drill.

use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::field_load::{Disconnect, FieldLoad, LoadOutcome};
use crate::load_shared::Shared;
use crate::procs::{Programs, Server};
use crate::report::{Figure, Report, Row};
use crate::sustained::{self, SustainedScale};
use crate::target::{Goal, Target};

/// How long after Eliot is ready again a disconnect is still the kill's: a bound on the
/// restart's aftermath, past which a disconnect has some other cause.
const AFTER_READY: Duration = Duration::from_secs(2);

pub struct DrillScale {
    /// The fleet, the readings it makes and its least time, as in `sustained`.
    pub fleet: SustainedScale,
    pub kills: u32,
}

/// What the store held after the drill.
struct Counted {
    rows: u64,
    distinct: u64,
    dead_letters: u64,
}

impl Counted {
    /// Readings lost, duplicated or unexpected, of `made`: 0 when each is there once.
    fn wrong(&self, made: u64) -> u64 {
        made.abs_diff(self.distinct) + (self.rows - self.distinct)
    }
}

/// One kill of the drill.
struct Kill {
    /// Just before SIGKILL was sent.
    at: Instant,
    /// When Eliot answered `/ready` with 200 again (`None`: it never did).
    ready: Option<Instant>,
}

impl Kill {
    /// Whether a disconnect at `at` is this kill's: from the kill to `AFTER_READY` after
    /// Eliot was ready again (or ever after, if it never was: the drill fails anyway).
    fn explains(&self, at: Instant) -> bool {
        at >= self.at && self.ready.is_none_or(|ready| at <= ready + AFTER_READY)
    }
}

/// The drill's server-side disconnects, each put down to a kill or not.
struct Disconnects {
    /// Each described, with the kill that explains it or "unexplained".
    listed: Vec<String>,
    explained: usize,
    unexplained: usize,
}

impl Disconnects {
    /// Sorts the load's disconnects into those a kill explains (the latest kill whose
    /// window holds it) and the others.
    fn sort(outcome: &LoadOutcome, kills: &[Kill]) -> Disconnects {
        let mut sorted = Disconnects {
            listed: Vec::new(),
            explained: 0,
            unexplained: 0,
        };
        for disconnect in &outcome.disconnects {
            let at = outcome.started + disconnect.after;
            let kill = kills.iter().rposition(|kill| kill.explains(at));
            sorted
                .listed
                .push(describe(disconnect, kill, outcome.started, kills));
            match kill {
                Some(_) => sorted.explained += 1,
                None => sorted.unexplained += 1,
            }
        }
        sorted
    }
}

/// "connection 3 at 12.345 s: closed by the server (kill 1, at 12.340 s)", or "...
/// (unexplained: no kill then)".
fn describe(
    disconnect: &Disconnect,
    kill: Option<usize>,
    started: Instant,
    kills: &[Kill],
) -> String {
    match kill {
        Some(k) => format!(
            "{disconnect} (kill {}, at {:.3} s)",
            k + 1,
            kills[k].at.saturating_duration_since(started).as_secs_f64()
        ),
        None => format!("{disconnect} (unexplained: no kill then)"),
    }
}

/// What a drill did: the load, its kills, and what Eliot stored.
struct Drilled {
    outcome: LoadOutcome,
    kills: Vec<Kill>,
    /// Whether Eliot stopped within 60 s of SIGTERM at the end.
    stopped: bool,
    counted: rusqlite::Result<Counted>,
}

impl Drilled {
    /// Readings the load made (each once, whatever was sent again).
    fn made(&self) -> u64 {
        self.outcome.sent
    }

    /// How long each restart took, from the kill to `/ready` 200.
    fn restarts(&self) -> Vec<Duration> {
        self.kills
            .iter()
            .filter_map(|kill| Some(kill.ready? - kill.at))
            .collect()
    }
}

pub fn measure(programs: &Programs, drill: &DrillScale, report: &mut Report) {
    let drilled = run(programs, drill);
    let disconnects = Disconnects::sort(&drilled.outcome, &drilled.kills);
    eprintln!(
        "  server-side disconnects: {} explained (a kill's), {} unexplained",
        disconnects.explained, disconnects.unexplained
    );
    report.disconnects("Kill drill", &disconnects.listed);
    let mut row = row(drill, &drilled, &disconnects);
    if let Ok(c) = &drilled.counted {
        row = row.with_target(Target::new(
            "lost + duplicated + unexpected",
            c.wrong(drilled.made()) as f64,
            Goal::AtMost(0.0),
            " readings",
        ));
    }
    report.add(row.with_problems(&problems(drill, &drilled, &disconnects)));
}

/// Runs the load into a fresh Eliot, killing it over the run; then stops Eliot and counts
/// its store.
fn run(programs: &Programs, drill: &DrillScale) -> Drilled {
    let mut eliot = Server::eliot(programs);
    let addr = eliot.addr;
    let load = FieldLoad {
        progress_step: None,
        client_prefix: "drill",
        reconnects: true,
        ..sustained::load(&drill.fleet)
    };
    let shared = load.shared();
    let started = Instant::now();
    let (outcome, kills) = std::thread::scope(|s| {
        let loading = s.spawn(|| load.run_sharing(addr, shared.clone()));
        let kills = kill_over_the_run(&mut eliot, programs, drill, &shared, started, &|| {
            loading.is_finished()
        });
        (loading.join().expect("the load does not panic"), kills)
    });
    // The data outlives the server that stopped: its directory is shared.
    let (dir, db) = (eliot.dir.clone(), eliot.db());
    let stopped = eliot.terminate(Duration::from_secs(60));
    let counted = count(&db);
    drop(dir);
    Drilled {
        outcome,
        kills,
        stopped,
        counted,
    }
}

/// The drill's row: what was made and stored, the reconnections, the disconnects explained
/// and not, the slowest restart.
fn row(drill: &DrillScale, drilled: &Drilled, disconnects: &Disconnects) -> Row {
    let (outcome, made) = (&drilled.outcome, drilled.made());
    let slowest = drilled.restarts().into_iter().max().unwrap_or_default();
    let stored = match &drilled.counted {
        Ok(c) => format!(
            "{made} readings made in {:.0} s: {} rows, {} distinct; lost {}, duplicated {}",
            outcome.duration.as_secs_f64(),
            c.rows,
            c.distinct,
            made.saturating_sub(c.distinct),
            c.rows - c.distinct
        ),
        Err(e) => format!("the store could not be counted: {e}"),
    };
    let mut row = Row::measured(
        &format!(
            "Eliot, kill -9 drill: {} into a fresh store, killed {} times (1 run; msg/s: \
             acked over the whole run, restarts included)",
            sustained::shape(&drill.fleet),
            drilled.kills.len()
        ),
        Some(Figure::of([outcome.rate()])),
        None,
        format!(
            "{stored}; {} reconnections; server-side disconnects: {} explained (a kill's), {} \
             unexplained; slowest restart (kill to /ready 200) {:.2} s",
            outcome.reconnects,
            disconnects.explained,
            disconnects.unexplained,
            slowest.as_secs_f64()
        ),
    )
    .with_label("Kill drill");
    row.in_chart = false;
    row
}

/// Everything that fails the drill: not only a missed target, a broken guarantee fails the
/// benchmark, quick mode (CI) included.
fn problems(drill: &DrillScale, drilled: &Drilled, disconnects: &Disconnects) -> Vec<String> {
    let (outcome, made) = (&drilled.outcome, drilled.made());
    let mut problems = outcome.errors.clone();
    if disconnects.unexplained > 0 {
        problems.push(format!(
            "{} server-side disconnects no kill explains (listed under the table)",
            disconnects.unexplained
        ));
    }
    if outcome.acked != made || made < drill.fleet.readings {
        problems.push(format!(
            "{} acked of {made} readings made ({} asked for)",
            outcome.acked, drill.fleet.readings
        ));
    }
    if !drilled.stopped {
        problems.push("Eliot did not stop within 60 s of SIGTERM".into());
    }
    let never_ready = drilled.kills.len() - drilled.restarts().len();
    if never_ready > 0 {
        problems.push(format!("{never_ready} restarts never got /ready 200"));
    }
    if drilled.kills.len() < drill.kills as usize {
        problems.push(format!(
            "killed {} times of {}",
            drilled.kills.len(),
            drill.kills
        ));
    }
    match &drilled.counted {
        Ok(c) if c.wrong(made) > 0 => problems.push(format!(
            "{made} readings made, {} stored, {} of them distinct",
            c.rows, c.distinct
        )),
        Ok(_) => {}
        Err(e) => problems.push(format!("the store could not be counted: {e}")),
    }
    if let Ok(Counted { dead_letters, .. }) = &drilled.counted {
        if *dead_letters > 0 {
            problems.push(format!("{dead_letters} readings refused (dead letters)"));
        }
    }
    problems
}

/// Kills Eliot `drill.kills` times while the load runs, and starts it again at once. Kill k
/// falls at random in the second half of the k-th of `kills + 1` equal shares of the run:
/// once both that share of the readings is acked and that share of the least time has
/// passed (`started` is the load's start), so that the kills spread over whichever of the
/// two ends the run; restarts are apart, and the last share runs without a kill. Stops early
/// once `finished` (the load is done).
fn kill_over_the_run(
    eliot: &mut Server,
    programs: &Programs,
    drill: &DrillScale,
    shared: &Shared,
    started: Instant,
    finished: &dyn Fn() -> bool,
) -> Vec<Kill> {
    let shares = f64::from(drill.kills + 1);
    let mut random = RandomPoints::default();
    let mut kills = Vec::new();
    for kill in 0..drill.kills {
        let point = (f64::from(kill) + 0.5 + random.fraction() / 2.0) / shares;
        let readings = (drill.fleet.readings as f64 * point) as u64;
        let time = started + drill.fleet.min_duration.mul_f64(point);
        while (shared.acked() < readings || Instant::now() < time) && !finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if finished() {
            break;
        }
        let at = eliot.kill_and_restart(programs);
        let http = eliot.http.expect("Eliot listens for HTTP");
        let ready = ready(http);
        match ready {
            Some(ready) => eprintln!(
                "  kill -9 at {} acked, {:.1} s in; ready again after {:.2} s",
                shared.acked(),
                at.saturating_duration_since(started).as_secs_f64(),
                (ready - at).as_secs_f64()
            ),
            None => eprintln!("  kill -9: Eliot never got ready again"),
        }
        kills.push(Kill { at, ready });
    }
    kills
}

/// When Eliot at `http` answered `/ready` with 200 (its store open, its endpoint taking
/// devices), polled every 10 ms for at most 2 minutes; `None` if it never did.
fn ready(http: std::net::SocketAddr) -> Option<Instant> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(2))
        .build();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if agent.get(&format!("http://{http}/ready")).call().is_ok() {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Counts the `readings` view's rows and distinct keys, and the dead letters.
fn count(db: &std::path::Path) -> rusqlite::Result<Counted> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let one = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0).map(|n| n as u64));
    Ok(Counted {
        rows: one("SELECT count(*) FROM readings")?,
        distinct: one(
            "SELECT count(*) FROM (SELECT DISTINCT device_id, sensor_type, ts FROM readings)",
        )?,
        dead_letters: one("SELECT count(*) FROM dead_letters")?,
    })
}

/// Where in its share each kill falls: xorshift, seeded by the clock, so that every run
/// kills at other points.
struct RandomPoints(u64);

impl Default for RandomPoints {
    fn default() -> RandomPoints {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        RandomPoints(u64::from(nanos) | 1)
    }
}

impl RandomPoints {
    /// The next point, in [0, 1).
    fn fraction(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kill_explains_disconnects_from_itself_to_shortly_after_ready() {
        let at = Instant::now();
        let ready = at + Duration::from_secs(1);
        let kill = Kill {
            at,
            ready: Some(ready),
        };
        assert!(!kill.explains(at - Duration::from_millis(1)));
        assert!(kill.explains(at));
        assert!(kill.explains(ready + AFTER_READY));
        assert!(!kill.explains(ready + AFTER_READY + Duration::from_millis(1)));
        let never_ready = Kill { at, ready: None };
        assert!(never_ready.explains(at + Duration::from_secs(3600)));
    }
}
