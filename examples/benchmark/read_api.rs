//! The three reads of Eliot's API v1 the `reads` configuration times, each checked for
//! what a dashboard relies on: 200 and a page (`readings`) with the device's readings.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::telemetry::{device_id, rfc3339_seconds, unix_micros};

/// Longest a read may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Readings asked for by `?limit=` (newest first).
const LAST: usize = 1000;

/// A kind of read.
#[derive(Clone, Copy, Debug)]
pub enum ReadKind {
    /// `GET /api/v1/devices/{id}/readings/latest`: one reading per sensor type.
    Latest,
    /// `GET /api/v1/devices/{id}/readings?limit=1000`: newest first.
    LastThousand,
    /// `GET /api/v1/devices/{id}/readings?from=&to=&order=asc&limit=10000`: the hour up
    /// to now, in time order.
    LastHour,
}

pub const READ_KINDS: [ReadKind; 3] =
    [ReadKind::Latest, ReadKind::LastThousand, ReadKind::LastHour];

impl ReadKind {
    pub fn describe(self) -> &'static str {
        match self {
            ReadKind::Latest => "GET /api/v1/devices/{id}/readings/latest",
            ReadKind::LastThousand => "GET /api/v1/devices/{id}/readings?limit=1000",
            ReadKind::LastHour => {
                "GET /api/v1/devices/{id}/readings?from=&to=&order=asc&limit=10000 (the last hour)"
            }
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ReadKind::Latest => "Read latest",
            ReadKind::LastThousand => "Read last 1000",
            ReadKind::LastHour => "Read last hour",
        }
    }
}

/// A client of one Eliot's read API.
pub struct ReadApi {
    agent: ureq::Agent,
    base: String,
}

impl ReadApi {
    pub fn new(http: std::net::SocketAddr) -> ReadApi {
        ReadApi {
            agent: ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).build(),
            base: format!("http://{http}"),
        }
    }

    /// Reads device `index` the way `kind` says: how long the answer took to arrive whole,
    /// or why it is not the answer expected.
    pub fn read(&self, kind: ReadKind, index: u32) -> Result<Duration, String> {
        let id = device_id(index);
        let request = match kind {
            ReadKind::Latest => self.agent.get(&format!(
                "{}/api/v1/devices/{id}/readings/latest",
                self.base
            )),
            ReadKind::LastThousand => self
                .agent
                .get(&format!("{}/api/v1/devices/{id}/readings", self.base))
                .query("limit", &LAST.to_string()),
            ReadKind::LastHour => {
                let now = unix_micros();
                self.agent
                    .get(&format!("{}/api/v1/devices/{id}/readings", self.base))
                    .query("from", &rfc3339_seconds(now - 3_600_000_000))
                    .query("to", &rfc3339_seconds(now + 1_000_000))
                    .query("order", "asc")
                    .query("limit", "10000")
            }
        };
        let started = Instant::now();
        let body = match request.call() {
            Ok(response) => response.into_string().map_err(|e| e.to_string())?,
            Err(ureq::Error::Status(code, response)) => {
                let body = response.into_string().unwrap_or_default();
                return Err(format!(
                    "{code} {}",
                    body.chars().take(120).collect::<String>()
                ));
            }
            Err(e) => return Err(e.to_string()),
        };
        let took = started.elapsed();
        check(kind, &id, &body)?;
        Ok(took)
    }
}

/// The answer is a page holding a non-empty array of this device's readings (every device
/// read has published in the last hour), at most `LAST` for `?limit=`.
fn check(kind: ReadKind, id: &str, body: &str) -> Result<(), String> {
    let value: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let readings = value["readings"].as_array().ok_or("no `readings` array")?;
    let first = readings.first().ok_or("an empty array")?;
    if first["device_id"] != id {
        return Err(format!("a reading of {} for {id}", first["device_id"]));
    }
    if first["data"].as_object().is_none() || first["timestamp"].as_str().is_none() {
        return Err("a reading without `data` or `timestamp`".into());
    }
    if matches!(kind, ReadKind::LastThousand) && readings.len() > LAST {
        return Err(format!("{} readings for limit={LAST}", readings.len()));
    }
    Ok(())
}
