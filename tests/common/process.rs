//! The real `eliot` binary as a child process, for what only a process can show:
//! signals, kill -9, exit status, memory.

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

pub struct EliotProcess {
    child: Child,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
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
        let child = Command::new(env!("CARGO_BIN_EXE_eliot"))
            .args(args)
            .env("ELIOT_ENV", "test")
            .env("ELIOT_DATA_DIR", data_dir)
            .env("ELIOT_MQTT_ADDR", addr.to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the eliot binary starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "eliot listens on {addr} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        EliotProcess {
            child,
            addr,
            data_dir: data_dir.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }

    /// SIGKILL: no drain, no flush, nothing but what was committed survives.
    pub fn kill9(mut self) {
        self.signal("-KILL");
        self.child.wait().unwrap();
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
}

impl Drop for EliotProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
