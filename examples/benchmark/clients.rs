//! The programs that talk to the servers: the fleet simulator (load) and the baseline
//! subscriber.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::procs::Programs;
use crate::sampling::cpu_seconds;

/// The fleet simulator's load, as its options.
#[derive(Debug, Clone)]
pub struct Load {
    pub devices: u32,
    /// Messages per second per device; 0 for as fast as acks allow.
    pub rate: f64,
    pub qos: u8,
    /// Messages per device, or a duration.
    pub count: Option<u64>,
    pub duration: Option<Duration>,
}

/// Runs the fleet simulator against `addr` and returns its JSON summary.
pub fn simulate(programs: &Programs, addr: SocketAddr, load: &Load) -> Value {
    let mut command = Command::new(&programs.simulator);
    command.args(["--addr", &addr.to_string(), "--json", "--quiet"]);
    command.args(["--devices", &load.devices.to_string()]);
    command.args([
        "--rate",
        &load.rate.to_string(),
        "--qos",
        &load.qos.to_string(),
    ]);
    command.args(["--connect-rate", "2000"]);
    if let Some(count) = load.count {
        command.args(["--count", &count.to_string()]);
    }
    if let Some(duration) = load.duration {
        command.args(["--duration", &format!("{}ms", duration.as_millis())]);
    }
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .expect("the simulator runs");
    assert!(out.status.success(), "the simulator failed: {load:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "simulator summary: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The baseline subscriber, started and subscribed.
pub struct Subscriber(Child);

impl Subscriber {
    pub fn start(
        programs: &Programs,
        broker: SocketAddr,
        qos: u8,
        expect: u64,
        db: &Path,
        count_only: bool,
    ) -> Subscriber {
        let mut command = Command::new(&programs.subscriber);
        command.args(["--addr", &broker.to_string(), "--qos", &qos.to_string()]);
        command
            .args(["--expect", &expect.to_string()])
            .arg("--db")
            .arg(db);
        if count_only {
            command.arg("--count-only");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the subscriber starts");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut said = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(line)) if line == "ready" => break,
                Some(Ok(line)) => said.push(line),
                Some(Err(_)) => continue,
                None => panic!(
                    "the subscriber ended before subscribing ({:?}), saying:\n{}",
                    child.wait(),
                    said.join("\n")
                ),
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        Subscriber(child)
    }

    /// Waits (at most `within`) for its summary: messages stored per second.
    pub fn finish(mut self, within: Duration) -> Option<f64> {
        let deadline = Instant::now() + within;
        while self.0.try_wait().ok()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.0.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        std::io::Read::read_to_string(self.0.stdout.as_mut()?, &mut out).ok()?;
        let summary: Value = serde_json::from_str(out.trim()).ok()?;
        summary["rate"].as_f64()
    }
}

/// How a watched subscriber ended.
pub struct Finished {
    /// Its summary line.
    pub summary: Value,
    /// When it was seen to have exited (within 5 ms).
    pub at: Instant,
    /// The CPU seconds it used, as last read while it ran.
    pub cpu_seconds: f64,
}

impl Subscriber {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Waits (at most `within`) for it to exit, watching it closely: when it exited, the CPU
    /// it used, and its summary.
    pub fn finish_watched(mut self, within: Duration) -> Result<Finished, String> {
        let deadline = Instant::now() + within;
        let mut cpu = 0.0f64;
        loop {
            cpu = cpu.max(cpu_seconds(self.pid()));
            match self.0.try_wait() {
                Ok(Some(status)) if status.success() => break,
                Ok(Some(status)) => return Err(format!("the subscriber exited: {status}")),
                Ok(None) if Instant::now() > deadline => {
                    return Err(format!("the subscriber did not finish within {within:?}"))
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(e.to_string()),
            }
        }
        let at = Instant::now();
        let mut out = String::new();
        if let Some(stdout) = self.0.stdout.as_mut() {
            std::io::Read::read_to_string(stdout, &mut out).map_err(|e| e.to_string())?;
        }
        let summary = serde_json::from_str(out.trim())
            .map_err(|e| format!("the subscriber's summary: {e}: {out}"))?;
        Ok(Finished {
            summary,
            at,
            cpu_seconds: cpu,
        })
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
