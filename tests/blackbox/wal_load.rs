//! The load behind the WAL tests (`locks`, `long_read`): a steady device publishing until
//! the test is done, and a device sending readings big enough that a few hundred take the
//! WAL past its bound.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::common::checker::{reading_ts, Ledger, Pace};
use crate::common::drill_device::{DeviceReport, DrillDevice};
use crate::common::process::EliotProcess;

/// The WAL's bound (`checkpointer::WAL_MAX_BYTES`): past it the WAL is started over.
pub const WAL_BOUND: u64 = 64 << 20;

/// A reading of about 200 KB (200 fields of 1,000 bytes), with `reading`'s timestamp.
fn big_reading(device: &str, n: u64) -> String {
    let ts = reading_ts(n);
    let fields: Vec<String> = (0..200)
        .map(|i| format!(r#""f{i:03}":"{}""#, "x".repeat(1_000)))
        .collect();
    format!(
        r#"{{"device_id":"{device}","timestamp":"{ts}","sensor_type":"blob","data":{{{}}}}}"#,
        fields.join(",")
    )
}

/// The two devices, publishing.
pub struct WalLoad {
    ledger: Ledger,
    stop: Arc<AtomicBool>,
    steady: JoinHandle<DeviceReport>,
    big: Option<JoinHandle<DeviceReport>>,
}

impl WalLoad {
    /// Starts the steady device (a reading every 10 ms until `finish`).
    pub fn start(addr: SocketAddr, ledger: &Ledger) -> WalLoad {
        let mut steady = DrillDevice::new(
            addr,
            "steady",
            Pace {
                count: u64::MAX,
                every: Duration::from_millis(10),
                within: Duration::from_secs(600),
            },
        );
        let stop = Arc::new(AtomicBool::new(false));
        steady.stop = Some(stop.clone());
        WalLoad {
            ledger: ledger.clone(),
            stop,
            steady: tokio::spawn(steady.run(ledger.clone())),
            big: None,
        }
    }

    /// Starts the big device: 500 readings of about 200 KB (100 MB), `every` apart.
    pub fn send_big(&mut self, addr: SocketAddr, every: Duration) {
        let mut big = DrillDevice::new(
            addr,
            "big",
            Pace {
                count: 500,
                every,
                within: Duration::from_secs(300),
            },
        );
        big.payload = big_reading;
        big.window = 8;
        self.big = Some(tokio::spawn(big.run(self.ledger.clone())));
    }

    /// Stops the steady device, waits for both, stops Eliot, and checks the database:
    /// every reading published was acked (so acks went on throughout) and stored once.
    pub async fn finish(self, eliot: EliotProcess, test: &str) {
        self.stop.store(true, Ordering::Relaxed);
        let steady = self.steady.await.unwrap();
        let big = match self.big {
            Some(big) => big.await.unwrap().acked,
            None => 0,
        };
        let db = eliot.db_path();
        let (status, _) = eliot.terminate();
        assert!(status.success());
        let verdict = self.ledger.check(&db);
        println!("{test}: {verdict}");
        assert_eq!(
            (verdict.lost, verdict.duplicated, verdict.unexpected),
            (0, 0, 0),
            "{verdict}"
        );
        assert_eq!(verdict.acked, verdict.published, "{verdict}");
        assert_eq!(big, 500, "{verdict}");
        assert!(steady.acked > 0);
    }
}
