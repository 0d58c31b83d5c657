//! Real Mosquitto brokers for integration tests: each on a free loopback port, in a
//! temporary directory of its own (configuration, password file, persistence, log).
//!
//! A test that needs one starts with
//! `let Some(bin) = require_mosquitto("name") else { return };`: without Mosquitto it is
//! skipped locally (with a message saying so) and fails on CI, which installs it.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::outside::on_ci;

/// How long a broker may take to listen after it was started.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// How long a broker may take to save its persistence file and exit after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(10);
/// How long a restart keeps retrying its port (it may still be in TIME_WAIT).
const REBIND_WITHIN: Duration = Duration::from_secs(5);
/// Fresh ports tried by `Mosquitto::start`: another test may grab a free port between
/// our probe and the broker's bind.
const START_ATTEMPTS: usize = 5;
/// The line Mosquitto logs once its listeners are bound (and persistence loaded).
const RUNNING_LINE: &str = " running";

/// Where `name` (a Mosquitto program) is: on PATH, or where Debian and a source build
/// install it (sbin is often not on a non-root PATH).
pub fn find_tool(name: &str) -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let usual = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from);
    on_path
        .into_iter()
        .chain(usual)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("{name} is neither on PATH nor in /usr/sbin or /usr/bin"))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The `mosquitto` broker binary, if installed.
pub fn mosquitto_available() -> Result<PathBuf, String> {
    find_tool("mosquitto")
}

/// The broker binary, or `None` after saying the test was skipped. On CI (`CI` set) a
/// missing Mosquitto is a failure: a skipped interop test there would prove nothing.
pub fn require_mosquitto(test: &str) -> Option<PathBuf> {
    match mosquitto_available() {
        Ok(bin) => Some(bin),
        Err(why) if on_ci() => {
            panic!("{test}: CI must have Mosquitto (.ci/run installs it with apt-get): {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED {test}: mosquitto not found (install mosquitto to run it); {why}");
            None
        }
    }
}

/// Runs `command` to completion, killing it after `within`. Its output is piped, so it
/// suits chatty-but-short programs (mosquitto_pub, mosquitto_passwd), not floods.
pub fn run_with_timeout(command: &mut Command, within: Duration) -> Result<Output, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{command:?} does not start: {e}"))?;
    if wait_for_exit(&mut child, within).is_none() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("{command:?} still ran after {within:?}; killed"));
    }
    child
        .wait_with_output()
        .map_err(|e| format!("{command:?}: reading its output: {e}"))
}

/// Polls for `child`'s exit for at most `within`; `None` if it still runs.
fn wait_for_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// The broker's own certificate and key, and the CA its clients' certificates must chain to.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a test broker is set up with. Persistence is always on (saved every second and on
/// a graceful stop) so that restarts behave as in production; `extra` lines come last and
/// override anything above them (`persistence false`, say).
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// TLS on the (only) listener instead of plain TCP.
    pub tls: Option<TlsFiles>,
    /// With `tls`: refuse clients without a certificate signed by `tls.ca`.
    pub require_certificate: bool,
    /// (username, password) pairs for a generated password file.
    pub users: Vec<(String, String)>,
    pub allow_anonymous: bool,
    pub max_inflight_messages: u32,
    pub max_queued_messages: u32,
    /// Further mosquitto.conf lines, verbatim.
    pub extra: Vec<String>,
}

impl Default for BrokerConfig {
    /// Plain TCP, anyone may connect, and queues deep enough that a test's offline
    /// subscriber loses nothing to Mosquitto's defaults (1000 queued, 20 in flight).
    fn default() -> Self {
        BrokerConfig {
            tls: None,
            require_certificate: false,
            users: Vec::new(),
            allow_anonymous: true,
            max_inflight_messages: 1000,
            max_queued_messages: 1_000_000,
            extra: Vec::new(),
        }
    }
}

/// A running `mosquitto` child process. Killed when dropped.
pub struct Mosquitto {
    bin: PathBuf,
    config: BrokerConfig,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// Where this run's lines begin in the (appended-to) log file.
    log_start: usize,
}

impl Mosquitto {
    /// Starts `bin` with `config` on a free loopback port and waits until it accepts
    /// connections. Panics, with the broker's log, if it cannot.
    pub fn start(bin: &Path, config: BrokerConfig) -> Mosquitto {
        let dir = tempfile::tempdir().expect("a temporary directory for mosquitto");
        let mut broker = Mosquitto {
            bin: bin.to_owned(),
            config,
            dir,
            port: 0,
            child: None,
            log_start: 0,
        };
        broker.write_password_file();
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            broker.port = free_port();
            match broker.launch() {
                Ok(()) => return broker,
                Err(why) => failures.push(why),
            }
        }
        panic!(
            "mosquitto did not start in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n---\n")
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The broker's directory: configuration, password file, persistence, log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits (at most 10 s) until this run of the broker has bound its listener (its log
    /// says it is running) and a TCP connection to it succeeds. Checking the log, not just
    /// the port, tells our broker from another process that took the port first.
    pub fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.exited() {
                return Err(format!(
                    "mosquitto exited ({status}) before listening on port {}:\n{}",
                    self.port,
                    self.log()
                ));
            }
            if self.current_run_log().contains(RUNNING_LINE)
                && TcpStream::connect(self.addr()).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "mosquitto did not listen on port {} within {READY_WITHIN:?}:\n{}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for the exit: Mosquitto saves its persistence file as it exits
    /// cleanly. Nothing to do if it is not running. Panics if it takes over 10 s.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Err(why) = signal(child.id(), "-TERM") {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{why}");
        }
        match wait_for_exit(&mut child, STOP_WITHIN) {
            Some(status) => Some(status),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mosquitto did not exit within {STOP_WITHIN:?} of SIGTERM; killed:\n{}",
                    self.log()
                );
            }
        }
    }

    /// SIGKILL: a crash. Only what the last autosave (every second) wrote survives.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker gracefully (if it runs: after `kill` this starts it again as after
    /// a crash), then starts it on the same port, with the same configuration and
    /// persistence directory. Retries binding for a few seconds. Panics if it cannot.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + REBIND_WITHIN;
        loop {
            match self.launch() {
                Ok(()) => return,
                Err(why) if Instant::now() >= deadline => {
                    panic!("mosquitto did not restart on port {}: {why}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Everything the broker logged, across restarts, and anything it wrote to stderr
    /// before its log was open: for assertion messages.
    pub fn log(&self) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let stderr = fs::read_to_string(self.stderr_path()).unwrap_or_default();
        if stderr.trim().is_empty() {
            log
        } else {
            format!("{log}--- stderr ---\n{stderr}")
        }
    }

    /// Waits (at most `within`) for a log line containing `needle`: the broker's account
    /// of what a client did (`Client x disconnected.`, say) is often the surest signal.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One run: writes the configuration for the current port, spawns, waits until ready.
    /// Leaves no process behind when it fails.
    fn launch(&mut self) -> Result<(), String> {
        fs::write(self.config_path(), self.config_text())
            .map_err(|e| format!("writing {}: {e}", self.config_path().display()))?;
        self.log_start = fs::metadata(self.log_path()).map_or(0, |meta| meta.len() as usize);
        let stderr = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .map_err(|e| format!("opening {}: {e}", self.stderr_path().display()))?;
        let stdout = stderr
            .try_clone()
            .map_err(|e| format!("duplicating a descriptor: {e}"))?;
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("{} does not start: {e}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_ready().inspect_err(|_| self.kill())
    }

    /// The exit status, if the broker has exited (then it is forgotten).
    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    fn current_run_log(&self) -> String {
        let log = fs::read(self.log_path()).unwrap_or_default();
        String::from_utf8_lossy(log.get(self.log_start..).unwrap_or_default()).into_owned()
    }

    fn config_text(&self) -> String {
        let config = &self.config;
        let dir = self.dir.path().display();
        let mut lines = vec![
            "per_listener_settings false".to_owned(),
            // Started as root, Mosquitto drops to the `mosquitto` user, which cannot open
            // our (0700) temporary directory. `root` means "do not drop"; as any other
            // user the option has no effect.
            "user root".to_owned(),
            format!("allow_anonymous {}", config.allow_anonymous),
            "persistence true".to_owned(),
            // A prefix, not a directory: the file name is appended without a separator.
            format!("persistence_location {dir}/"),
            "autosave_interval 1".to_owned(),
            format!("max_inflight_messages {}", config.max_inflight_messages),
            format!("max_queued_messages {}", config.max_queued_messages),
            "max_queued_bytes 0".to_owned(),
            format!("log_dest file {}", self.log_path().display()),
            "log_type all".to_owned(),
            "connection_messages true".to_owned(),
        ];
        if !config.users.is_empty() {
            lines.push(format!("password_file {}", self.password_path().display()));
        }
        lines.push(format!("listener {} 127.0.0.1", self.port));
        if let Some(tls) = &config.tls {
            lines.extend([
                format!("cafile {}", tls.ca.display()),
                format!("certfile {}", tls.cert.display()),
                format!("keyfile {}", tls.key.display()),
                format!("require_certificate {}", config.require_certificate),
                "use_identity_as_username false".to_owned(),
            ]);
        }
        lines.extend(config.extra.iter().cloned());
        lines.join("\n") + "\n"
    }

    /// Hashes the configured users' passwords into a password file with mosquitto_passwd
    /// (the file format is Mosquitto's own: salted PBKDF2).
    fn write_password_file(&self) {
        if self.config.users.is_empty() {
            return;
        }
        let tool = find_tool("mosquitto_passwd").expect("mosquitto_passwd (package mosquitto)");
        for (index, (user, password)) in self.config.users.iter().enumerate() {
            let mut command = Command::new(&tool);
            command.arg("-b");
            if index == 0 {
                command.arg("-c"); // creates (truncates) the file
            }
            command.arg(self.password_path()).arg(user).arg(password);
            let output = run_with_timeout(&mut command, Duration::from_secs(10))
                .unwrap_or_else(|why| panic!("mosquitto_passwd: {why}"));
            assert!(
                output.status.success(),
                "mosquitto_passwd for {user}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("mosquitto.conf")
    }

    fn password_path(&self) -> PathBuf {
        self.dir.path().join("passwords")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("mosquitto.log")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr.log")
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port free right now (bound, then released for the broker to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Sends `signal` (`-TERM`, ...) to `pid` with kill(1), as tests/common/process.rs does.
fn signal(pid: u32, signal: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .map_err(|e| format!("kill {signal} {pid}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill {signal} {pid}: {status}"))
    }
}
