//! `drill`: kill -9 at scale (issue 8, goal 5). The sustained fleet publishes into a fresh
//! store as fast as acks allow, with persistent sessions, while Eliot is killed with
//! SIGKILL several times, each at a random point of its share of the run, and started again
//! at once on the same data. The connections reconnect and send again (DUP) whatever was
//! not acked, until every reading is acked. Then Eliot is stopped and its `readings` counted:
//! each reading made must be there exactly once (none lost, none twice), and none refused.

use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::field_load::FieldLoad;
use crate::procs::{Programs, Server};
use crate::report::{Figure, Goal, Report, Row, Target};
use crate::sustained::{self, SustainedScale};

pub struct DrillScale {
    /// The fleet and the readings it makes, as in `sustained`.
    pub fleet: SustainedScale,
    pub kills: u32,
}

/// What the store held after the drill.
struct Counted {
    rows: u64,
    distinct: u64,
    dead_letters: u64,
}

pub fn measure(programs: &Programs, drill: &DrillScale, report: &mut Report) {
    let scale = &drill.fleet;
    let mut eliot = Server::eliot(programs);
    let addr = eliot.addr;
    let load = FieldLoad {
        progress_step: None,
        client_prefix: "drill",
        reconnects: true,
        ..sustained::load(scale)
    };
    let shared = load.shared();
    let mut restarts: Vec<Duration> = Vec::new();
    let mut never_ready = 0;
    let outcome = std::thread::scope(|s| {
        let loading = s.spawn(|| load.run_sharing(addr, shared.clone()));
        // Kill k falls at random in the second half of the k-th of `kills + 1` equal shares
        // of the readings: restarts are apart, and the last share runs without a kill.
        let share = scale.readings / u64::from(drill.kills + 1);
        let mut random = RandomPoints::default();
        for kill in 0..u64::from(drill.kills) {
            let at = share * kill + share / 2 + random.below(share / 2);
            while shared.acked() < at && !loading.is_finished() {
                std::thread::sleep(Duration::from_millis(5));
            }
            if loading.is_finished() {
                break;
            }
            let killed = eliot.kill_and_restart(programs);
            let http = eliot.http.expect("Eliot listens for HTTP");
            let Some(took) = ready(http).map(|at| at - killed) else {
                never_ready += 1;
                continue;
            };
            eprintln!(
                "  kill -9 at {} acked; ready again after {:.2} s",
                shared.acked(),
                took.as_secs_f64()
            );
            restarts.push(took);
        }
        loading.join().expect("the load does not panic")
    });
    // The data outlives the server that stopped: its directory is shared.
    let (dir, db) = (eliot.dir.clone(), eliot.db());
    let stopped = eliot.terminate(Duration::from_secs(60));
    let counted = count(&db);
    drop(dir);

    let slowest = restarts.iter().max().copied().unwrap_or_default();
    let mut row = Row::measured(
        &format!(
            "Eliot, kill -9 drill: {} devices over {} connections, {} readings into a fresh \
             store, killed {} times (1 run; msg/s: acked over the whole run, restarts included)",
            scale.devices,
            scale.connections,
            scale.readings,
            restarts.len() + never_ready
        ),
        Some(Figure::of([outcome.rate()])),
        None,
        match &counted {
            Ok(c) => format!(
                "{} rows, {} distinct; lost {}, duplicated {}; {} reconnections; \
                 slowest restart (kill to /ready 200) {:.2} s",
                c.rows,
                c.distinct,
                scale.readings.saturating_sub(c.distinct),
                c.rows - c.distinct,
                outcome.reconnects,
                slowest.as_secs_f64()
            ),
            Err(e) => format!("the store could not be counted: {e}"),
        },
    )
    .with_label("Kill drill");
    row.in_chart = false;
    let mut problems = outcome.errors.clone();
    if outcome.acked != scale.readings {
        problems.push(format!("{} of {} acked", outcome.acked, scale.readings));
    }
    if !stopped {
        problems.push("Eliot did not stop within 60 s of SIGTERM".into());
    }
    if never_ready > 0 {
        problems.push(format!("{never_ready} restarts never got /ready 200"));
    }
    if restarts.len() + never_ready < drill.kills as usize {
        problems.push(format!(
            "killed {} times of {}",
            restarts.len(),
            drill.kills
        ));
    }
    match counted {
        Ok(c) => {
            let wrong = scale.readings.abs_diff(c.distinct) + (c.rows - c.distinct);
            row = row.with_target(Target::new(
                "lost + duplicated + unexpected",
                wrong as f64,
                Goal::AtMost(0.0),
                " readings",
            ));
            // Not only a missed target: a broken guarantee fails the benchmark, quick
            // mode (CI) included.
            if wrong > 0 {
                problems.push(format!(
                    "{} readings made, {} stored, {} of them distinct",
                    scale.readings, c.rows, c.distinct
                ));
            }
            if c.dead_letters > 0 {
                problems.push(format!(
                    "{} readings refused (dead letters)",
                    c.dead_letters
                ));
            }
        }
        Err(e) => problems.push(format!("the store could not be counted: {e}")),
    }
    if !problems.is_empty() {
        row.failure = Some(problems.join("; "));
    }
    report.add(row);
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
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
