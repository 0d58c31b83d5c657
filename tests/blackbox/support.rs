//! What the black-box tests share: the helper reader, HTTP from outside, randomness with a
//! seed to repeat it, and the way a test runs.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use libtest_mimic::{Failed, Trial};

use crate::common::outside::Reader;

/// A trial running `test` on a runtime of its own (each test its own, as `#[tokio::test]`).
pub fn trial<F, Fut>(name: &str, test: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    Trial::test(name, move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(test());
        Ok::<(), Failed>(())
    })
}

/// This executable, started again with `ELIOT_BLACKBOX_HELPER=1 <db> <sql>`: a reader in
/// another process, with its own SQLite (rusqlite's, not the shell's), printing rows as
/// the shell does.
pub mod helper {
    const VARIABLE: &str = "ELIOT_BLACKBOX_HELPER";

    pub fn requested() -> bool {
        std::env::var_os(VARIABLE).is_some()
    }

    /// The helper as a reader.
    pub fn reader() -> super::Reader {
        super::Reader::Program {
            path: std::env::current_exe().expect("this executable's path"),
            envs: vec![(VARIABLE.into(), "1".into())],
        }
    }

    pub fn main() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let [db, sql] = &args[..] else {
            eprintln!("usage: {VARIABLE}=1 <this executable> <database> <sql>");
            std::process::exit(2);
        };
        for row in crate::common::outside::query_here(db.as_ref(), sql) {
            println!("{}", row.join("\t"));
        }
    }
}

/// `GET path` on Eliot's HTTP port: the status and the body as JSON (`Null` if it is not).
pub async fn get_json(http: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = crate::common::get(http, path).await;
    (status, serde_json::from_str(&body).unwrap_or_default())
}

/// `/health`'s body.
pub async fn health(http: SocketAddr) -> serde_json::Value {
    get_json(http, "/health").await.1
}

/// The store's WAL file, in bytes, as `/health` shows it; `None` when `/health` has no
/// figures to show: it says `unresponsive` when the health monitor took over 2 s to answer,
/// which a machine at a load of 16 on 2 cores once made it do.
pub async fn wal_bytes(http: SocketAddr) -> Option<u64> {
    let health = health(http).await;
    let wal = health["store"]["holds"]["wal_bytes"].as_u64();
    if wal.is_none() {
        assert_eq!(
            health["status"], "unresponsive",
            "/health shows the WAL: {health}"
        );
    }
    wal
}

/// A small random generator (xorshift), seeded so that a failing run can be repeated.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `variable` if set, else from the clock; says which seed it took.
    pub fn from_env(variable: &str) -> Rng {
        let seed = std::env::var(variable)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        println!("{variable}={seed}");
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(self.between(low, high))
    }
}

/// Tokens the API tests configure (`ELIOT_API_TOKENS`).
pub const READ_TOKEN: &str = "blackbox-read-token-0123456789";
pub const ADMIN_TOKEN: &str = "blackbox-admin-token-0123456789";

/// `ELIOT_API_TOKENS` with both.
pub fn api_tokens() -> String {
    format!("read:{READ_TOKEN},admin:{ADMIN_TOKEN}")
}

/// One answer of the API, with the headers the tests look at.
#[derive(Debug)]
pub struct ApiAnswer {
    pub status: u16,
    /// The body as JSON (`Null` if it is not).
    pub body: serde_json::Value,
    pub www_authenticate: Option<String>,
    pub allow: Option<String>,
}

impl ApiAnswer {
    /// The error body's code, if the body is one.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// `method path` on Eliot's HTTP port, with `Authorization: <authorization>` when given.
pub async fn api(
    http: SocketAddr,
    method: &'static str,
    path: &str,
    authorization: Option<String>,
) -> ApiAnswer {
    let url = format!("http://{http}{path}");
    tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(20))
            .build();
        let mut request = agent.request(method, &url);
        if let Some(value) = &authorization {
            request = request.set("Authorization", value);
        }
        let response = match request.call() {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(e) => panic!("{method} {url}: {e}"),
        };
        let header = |name: &str| response.header(name).map(str::to_owned);
        let (status, www_authenticate, allow) = (
            response.status(),
            header("WWW-Authenticate"),
            header("Allow"),
        );
        let body = response.into_string().unwrap_or_default();
        ApiAnswer {
            status,
            body: serde_json::from_str(&body).unwrap_or_default(),
            www_authenticate,
            allow,
        }
    })
    .await
    .unwrap()
}

/// `GET path` with a bearer token.
pub async fn api_get(http: SocketAddr, path: &str, token: &str) -> ApiAnswer {
    api(http, "GET", path, Some(format!("Bearer {token}"))).await
}
