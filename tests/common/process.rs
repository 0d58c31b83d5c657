//! The real `eliot` binary as a child process, for what only a process can show:
//! signals, kill -9, exit status, memory, and locks seen from another process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A loopback address with a port free right now (the drills restart Eliot on it).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A free port on a loopback address of its own (`127.x.y.z`), for an Eliot that is killed
/// and started again on the same address: while it is down, no other test's `bind` to
/// `127.0.0.1:0` can take its port, nor can a device's outgoing connection.
pub fn own_loopback_addr() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let ip = std::net::Ipv4Addr::new(
        127,
        10 + (pid % 200) as u8,
        (n / 250) as u8,
        1 + (n % 250) as u8,
    );
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The `eliot` binary under test: `ELIOT_BLACKBOX_BIN` if set (another build, say the one
/// before a change), else the one Cargo built with the tests.
pub fn eliot_binary() -> PathBuf {
    std::env::var_os("ELIOT_BLACKBOX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_eliot")))
}

/// How to start Eliot: kept, so that it can be started again as it was.
#[derive(Debug, Clone)]
pub struct Launch {
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    /// Where `/health`, `/ready`, `/metrics` and the read API answer.
    pub http: SocketAddr,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    /// Eliot's standard error goes here (appended), when set; else to the test's.
    pub log: Option<PathBuf>,
    /// Shell commands run before Eliot, in its process (`umask 000`, `ulimit -n 64`).
    pub before: Option<String>,
}

impl Launch {
    /// Eliot (test environment) on `addr` and a free HTTP port on the same address, data
    /// in `data_dir`.
    pub fn new(data_dir: &Path, addr: SocketAddr) -> Launch {
        let http = std::net::TcpListener::bind((addr.ip(), 0))
            .and_then(|l| l.local_addr())
            .expect("a free HTTP port");
        Launch {
            data_dir: data_dir.to_owned(),
            addr,
            http,
            env: Vec::new(),
            args: Vec::new(),
            log: None,
            before: None,
        }
    }

    /// Started with `--config`, a file in the data directory holding `toml`.
    pub fn config(mut self, toml: &str) -> Launch {
        let file = self.data_dir.join("eliot.toml");
        std::fs::write(&file, toml).expect("the configuration file is written");
        self.args = vec!["--config".into(), file.display().to_string()];
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Launch {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts it, and waits until it is started: it answers on its HTTP port, which it
    /// serves once its store is open (its listening sockets are bound before that).
    pub fn start(&self) -> EliotProcess {
        let stderr = match &self.log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("the log file opens"),
            ),
            None => Stdio::inherit(),
        };
        // A shell runs `before`, then becomes Eliot (`exec`: the same process).
        let mut command = match &self.before {
            None => Command::new(eliot_binary()),
            Some(before) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("{before}; exec \"$0\" \"$@\""))
                    .arg(eliot_binary());
                shell
            }
        };
        let mut child = command
            .args(&self.args)
            .env("ELIOT_ENV", "test")
            .env("ELIOT_DATA_DIR", &self.data_dir)
            .env("ELIOT_MQTT_ADDR", self.addr.to_string())
            .env("ELIOT_HTTP_ADDR", self.http.to_string())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the eliot binary starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        let health = format!("http://{}/health", self.http);
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(1))
            .build();
        let answers = || match agent.get(&health).call() {
            Ok(_) | Err(ureq::Error::Status(..)) => true,
            Err(_) => false,
        };
        while std::net::TcpStream::connect(self.addr).is_err() || !answers() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("eliot exited ({status}) before it started on {}", self.addr);
            }
            assert!(
                Instant::now() < deadline,
                "eliot starts on {} within 10 s",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // Something else may hold the port (a restart on a port another test took).
        std::thread::sleep(Duration::from_millis(20));
        if let Some(status) = child.try_wait().unwrap() {
            panic!("eliot exited ({status}): is {} taken?", self.addr);
        }
        EliotProcess {
            child,
            addr: self.addr,
            http: self.http,
            data_dir: self.data_dir.clone(),
            launch: self.clone(),
        }
    }
}

pub struct EliotProcess {
    child: Child,
    pub addr: SocketAddr,
    pub http: SocketAddr,
    pub data_dir: PathBuf,
    /// How it was started, to start it again.
    pub launch: Launch,
}

impl EliotProcess {
    /// Starts `eliot` (test environment) on `addr` with its data in `data_dir`, and waits
    /// until it accepts connections.
    pub fn start(data_dir: &Path, addr: SocketAddr, env: &[(&str, &str)]) -> EliotProcess {
        EliotProcess::start_with_args(data_dir, addr, env, &[])
    }

    /// Like `start`, with command-line arguments (`--config FILE`, say).
    pub fn start_with_args(
        data_dir: &Path,
        addr: SocketAddr,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> EliotProcess {
        let mut launch = Launch::new(data_dir, addr);
        launch.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        launch.args = args.iter().map(|a| a.to_string()).collect();
        launch.start()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("eliot.db")
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }

    /// SIGKILL: no drain, no flush, nothing but what was committed survives. Returns how
    /// it was started, to start it again.
    pub fn kill9(mut self) -> Launch {
        self.signal("-KILL");
        self.child.wait().unwrap();
        self.launch.clone()
    }

    /// SIGHUP: what a closed terminal or `systemctl reload` sends.
    pub fn hangup(&self) {
        self.signal("-HUP");
    }

    /// SIGTERM, then waits for the exit; returns the status and how long it took.
    pub fn terminate(mut self) -> (ExitStatus, Duration) {
        let signalled = Instant::now();
        self.signal("-TERM");
        let status = self.child.wait().unwrap();
        (status, signalled.elapsed())
    }

    /// Waits (at most `within`) for the process to exit by itself; `None` if it did not.
    pub fn exit_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Resident memory now, in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Whether Eliot holds SQLite's SHARED lock on its database (`/proc/locks`).
    #[cfg(target_os = "linux")]
    pub fn holds_shared_lock(&self) -> bool {
        super::locks::holds_shared_lock(self.pid(), &self.db_path())
    }
}

impl Drop for EliotProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
