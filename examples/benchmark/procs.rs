//! The servers a benchmark run starts, Eliot and Mosquitto, each on a free loopback port and
//! stopped when dropped; and where the programs are (`Programs`). The clients that talk to
//! them are in `clients`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::sampling::cpu_seconds;
use crate::shell_env::as_from_a_shell;

/// Where the built programs are: next to this example, in the same profile.
pub struct Programs {
    pub eliot: PathBuf,
    /// A configuration file Eliot is started with (`--config`), if any.
    pub eliot_config: Option<PathBuf>,
    pub simulator: PathBuf,
    pub subscriber: PathBuf,
}

impl Programs {
    /// Builds Eliot and the two helper examples in this example's profile. Eliot is built
    /// on its own: built with examples, it would get their dev-dependencies' features (the
    /// fault points among them), and the benchmark would not measure the binary users run.
    pub fn build() -> Programs {
        let release = !cfg!(debug_assertions);
        // The cargo that ran this benchmark, in the environment of the shell that ran it.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let targets: [&[&str]; 2] = [
            &["--bin", "eliot"],
            &[
                "--example",
                "fleet_simulator",
                "--example",
                "baseline_subscriber",
            ],
        ];
        for target in targets {
            let mut build = as_from_a_shell(Command::new(&cargo));
            build.args(["build", "--quiet"]).args(target);
            if release {
                build.arg("--release");
            }
            assert!(
                build.status().expect("cargo runs").success(),
                "the build of {target:?} succeeds"
            );
        }
        let examples = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_owned();
        let profile = examples.parent().unwrap().to_owned();
        Programs {
            eliot: profile.join("eliot"),
            eliot_config: None,
            simulator: examples.join("fleet_simulator"),
            subscriber: examples.join("baseline_subscriber"),
        }
    }
}

/// Distinct free addresses on 127.0.0.1: each port is held until all are chosen, so that
/// two listeners of one server never get the same one.
pub fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    free_addrs_on(std::net::Ipv4Addr::LOCALHOST)
}

fn free_addrs_on<const N: usize>(ip: std::net::Ipv4Addr) -> [SocketAddr; N] {
    let held: [std::net::TcpListener; N] =
        std::array::from_fn(|_| std::net::TcpListener::bind((ip, 0)).unwrap());
    held.map(|listener| listener.local_addr().unwrap())
}

/// Free ports on a loopback address of the server's own (`127.77.x.y`, a new one each
/// call). A port free when chosen may be taken before the server binds it, by any socket on
/// the same address: on 127.0.0.1, by the outgoing connections of every client of the run,
/// which take their ports from the same range. Nothing else uses these addresses.
fn own_addrs<const N: usize>() -> [SocketAddr; N] {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let ip = std::net::Ipv4Addr::new(127, 77, (n / 250) as u8, 1 + (n % 250) as u8);
    free_addrs_on(ip)
}

/// Waits until `addr` accepts connections. A server that exits first, or is not listening
/// within `within`, fails the run with what it wrote to its log (`log`), so that a failure
/// on a machine out of reach (CI) says why.
fn wait_listening(child: &mut Child, addr: SocketAddr, what: &str, within: Duration, log: &Path) {
    let fail = |failure: String| -> ! {
        let logged = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = logged.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "{failure}; the last of its log ({}):\n{}",
            log.display(),
            tail.join("\n")
        );
    };
    let deadline = Instant::now() + within;
    while std::net::TcpStream::connect(addr).is_err() {
        match child.try_wait() {
            Ok(Some(status)) => fail(format!(
                "{what} exited ({status}) before listening on {addr}"
            )),
            _ if Instant::now() >= deadline => fail(format!(
                "{what} is not listening on {addr} after {within:?}"
            )),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    // The port was free when chosen, not necessarily when bound: another process (a
    // client's outgoing connection, say) may hold it, and have answered instead.
    std::thread::sleep(Duration::from_millis(50));
    if let Ok(Some(status)) = child.try_wait() {
        fail(format!(
            "{what} exited ({status}) although {addr} answered: the port is someone else's"
        ));
    }
}

/// Where a server's standard error goes, in its directory: what `wait_listening` shows.
const SERVER_LOG: &str = "server.log";

/// The server's standard error, appended to its log in `dir` (a restarted Eliot adds to it).
fn server_log(dir: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(SERVER_LOG))
        .expect("the server's log can be created")
}

/// Where `Server::mosquitto_logged` has Mosquitto log, in its directory.
const MOSQUITTO_LOG: &str = "mosquitto.log";

/// A running server (Eliot or Mosquitto), killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Eliot's HTTP listener (the read API, /health); Mosquitto has none.
    pub http: Option<SocketAddr>,
    /// Its data: Eliot's data directory, or Mosquitto's config directory. Shared, so that a
    /// later Eliot can start on the data an earlier one stored (`Server::eliot_in`).
    pub dir: Arc<TempDir>,
}

impl Server {
    /// Eliot on a fresh, empty data directory.
    pub fn eliot(programs: &Programs) -> Server {
        Server::eliot_in(programs, Arc::new(tempfile::tempdir().unwrap()))
    }

    /// Eliot on the data directory `dir`, which may hold what an earlier Eliot stored.
    /// Killed when dropped: what it acked is committed (`synchronous = normal` survives a
    /// kill), so the next one on `dir` finds it.
    pub fn eliot_in(programs: &Programs, dir: Arc<TempDir>) -> Server {
        let mut eliot = Server::spawn_eliot(programs, dir, programs.eliot_config.as_deref());
        // Opening a large store may take a while.
        eliot.wait_listening(eliot.addr, "eliot", Duration::from_secs(120));
        eliot
    }

    /// Eliot on the data directory `dir`, started with the configuration file `config`
    /// instead of `--eliot-config`'s (say, one that turns a part off, to measure its cost).
    pub fn eliot_configured(programs: &Programs, dir: Arc<TempDir>, config: &Path) -> Server {
        let mut eliot = Server::spawn_eliot(programs, dir, Some(config));
        eliot.wait_listening(eliot.addr, "eliot", Duration::from_secs(120));
        eliot
    }

    /// Eliot in the upstream broker mode, started with the configuration file `config` (its
    /// own device endpoint off: nothing listens on `addr`) on the data directory `dir`;
    /// ready once its HTTP listener is.
    pub fn eliot_upstream(programs: &Programs, dir: Arc<TempDir>, config: &Path) -> Server {
        let mut eliot = Server::spawn_eliot(programs, dir, Some(config));
        let http = eliot.http.unwrap();
        eliot.wait_listening(http, "eliot's HTTP", Duration::from_secs(120));
        eliot
    }

    /// Kills Eliot with SIGKILL, as a crash would, and starts it again at once on the same
    /// data and addresses; returns once it listens (its store may still be opening), with
    /// when it was killed (just before the signal: nothing the kill causes comes earlier).
    pub fn kill_and_restart(&mut self, programs: &Programs) -> Instant {
        let killed = Instant::now();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let http = self.http.expect("Eliot listens for HTTP");
        *self = Server::spawn_eliot_at(
            programs,
            self.dir.clone(),
            programs.eliot_config.as_deref(),
            (self.addr, http),
        );
        self.wait_listening(self.addr, "eliot", Duration::from_secs(120));
        killed
    }

    fn spawn_eliot(programs: &Programs, dir: Arc<TempDir>, config: Option<&Path>) -> Server {
        let [addr, http] = own_addrs();
        Server::spawn_eliot_at(programs, dir, config, (addr, http))
    }

    fn spawn_eliot_at(
        programs: &Programs,
        dir: Arc<TempDir>,
        config: Option<&Path>,
        (addr, http): (SocketAddr, SocketAddr),
    ) -> Server {
        let mut command = Command::new(&programs.eliot);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        // The `dev` overlay only raises the log level, lowered again here: Eliot runs on the
        // defaults. (`test` tunes the store for tests, not for a fleet.)
        let child = command
            .env("ELIOT_ENV", "dev")
            .env("ELIOT_LOG_LEVEL", "warning")
            .env("ELIOT_DATA_DIR", dir.path())
            .env("ELIOT_MQTT_ADDR", addr.to_string())
            .env("ELIOT_HTTP_ADDR", http.to_string())
            .stdout(Stdio::null())
            .stderr(server_log(dir.path()))
            .spawn()
            .expect("eliot starts");
        Server {
            child,
            addr,
            http: Some(http),
            dir,
        }
    }

    /// Mosquitto set up for ingestion, as docs/upstream.md's broker notes say: no queue
    /// limit (its default of 1000 loses messages), a wide in-flight window, no persistence
    /// (the subscriber's SQLite is the durable copy).
    pub fn mosquitto() -> Server {
        Server::start_mosquitto(tempfile::tempdir().unwrap(), "")
    }

    /// The same with `extra` lines of configuration, logging to a file that
    /// `Server::mosquitto_log` reads (`extra` says what to log: `log_type ...`).
    pub fn mosquitto_logged(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = format!(
            "log_dest file {}\n{extra}",
            dir.path().join(MOSQUITTO_LOG).display()
        );
        Server::start_mosquitto(dir, &log)
    }

    fn start_mosquitto(dir: TempDir, extra: &str) -> Server {
        let [addr] = own_addrs();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} {}\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 0\nmax_inflight_messages 1000\nset_tcp_nodelay true\n\
                 {extra}",
                addr.port(),
                addr.ip()
            ),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(server_log(dir.path()))
            .spawn()
            .expect("mosquitto is installed (apt-get install mosquitto)");
        let mut mosquitto = Server {
            child,
            addr,
            http: None,
            dir: Arc::new(dir),
        };
        mosquitto.wait_listening(addr, "mosquitto", Duration::from_secs(10));
        mosquitto
    }

    fn wait_listening(&mut self, addr: SocketAddr, what: &str, within: Duration) {
        let log = self.dir.path().join(SERVER_LOG);
        wait_listening(&mut self.child, addr, what, within, &log);
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What Mosquitto logged so far (started `mosquitto_logged`).
    pub fn mosquitto_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(MOSQUITTO_LOG)).unwrap_or_default()
    }

    /// Stops the server with SIGTERM (a graceful shutdown) and waits for it to exit, at most
    /// `within`; then kills it. Whether it exited in time.
    pub fn terminate(mut self, within: Duration) -> bool {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + within;
        while sent && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("eliot.db")
    }

    /// Rows in Eliot's `readings` (0 before the table exists).
    pub fn rows(&self) -> u64 {
        rusqlite::Connection::open(self.db())
            .and_then(|db| {
                db.query_row("SELECT count(*) FROM readings", [], |r| r.get::<_, i64>(0))
            })
            .map_or(0, |n| n as u64)
    }

    /// Rows in Eliot's `dead_letters`: messages acked but refused (0 before the table exists).
    /// A load of valid readings leaves none; any means the benchmark measured the wrong thing.
    pub fn dead_letters(&self) -> u64 {
        rusqlite::Connection::open(self.db())
            .and_then(|db| {
                db.query_row("SELECT count(*) FROM dead_letters", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .map_or(0, |n| n as u64)
    }

    /// Why the first dead letter was refused, if there is one.
    pub fn first_dead_letter(&self) -> Option<String> {
        rusqlite::Connection::open(self.db())
            .and_then(|db| {
                db.query_row(
                    "SELECT reason FROM dead_letters ORDER BY id LIMIT 1",
                    [],
                    |r| r.get::<_, String>(0),
                )
            })
            .ok()
    }

    /// CPU seconds (user + system) the server has used so far, from `/proc/<pid>/stat`.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
