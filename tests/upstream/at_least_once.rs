//! At least once, end to end: publishers → Mosquitto (persistent, autosave every second)
//! → Eliot, killed and restarted, and the broker restarted, mid-stream. Every message
//! the broker acked to its publisher is stored by Eliot exactly once.

use std::time::{Duration, Instant};

use super::common::checker::{publish_through_failures, Ledger, Pace};
use super::common::mosquitto::BrokerConfig;
use super::common::process::{free_addr, EliotProcess};
use super::*;

fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % n
}

fn stored_in(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .and_then(|db| db.query_row("SELECT count(*) FROM readings", [], |r| r.get(0)))
        .unwrap_or(0)
}

/// 20 publishers send 1,000 QoS 1 readings each through Mosquitto. Eliot is killed with
/// SIGKILL 3 times (and restarted), and Mosquitto is restarted once, meanwhile. Eliot's
/// persistent session keeps what it missed at the broker; what it stored and had not
/// acked comes again and is recognised. 0 lost, 0 duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_of_eliot_and_a_broker_restart_lose_and_duplicate_nothing() {
    let Some(mut broker) = broker("at least once", BrokerConfig::default()) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let config = upstream_file(data.path(), &broker, "drill", "");
    let args = ["--config", config.as_str()];
    let addr = free_addr();
    let start = || EliotProcess::start_with_args(data.path(), addr, &[], &args);
    let mut eliot = start();
    // Until Eliot's first subscription, the broker keeps nothing for it.
    subscribed(&broker, "drill");
    let ledger = Ledger::default();
    // One reading every 5 ms from each: about 5 s of stream, across every fault.
    let pace = Pace {
        count: 1_000,
        every: Duration::from_millis(5),
        within: Duration::from_secs(120),
    };
    let publishers: Vec<_> = (0..20)
        .map(|d| {
            tokio::spawn(publish_through_failures(
                broker.addr(),
                format!("device_{d:02}"),
                pace,
                ledger.clone(),
            ))
        })
        .collect();

    let started = Instant::now();
    for fault in 1..=4 {
        tokio::time::sleep(Duration::from_millis(400 + random_below(800))).await;
        let acked = ledger.acked_count();
        if fault == 3 {
            tokio::task::block_in_place(|| broker.restart());
            println!(
                "mosquitto restarted at {:?}: {acked} acked so far",
                started.elapsed()
            );
            continue;
        }
        eliot.kill9();
        println!(
            "kill -9 of eliot at {:?}: {acked} acked so far",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(random_below(300))).await;
        eliot = start();
    }
    let mut acked = 0;
    for publisher in publishers {
        acked += publisher.await.unwrap();
    }
    assert_eq!(
        acked, 20_000,
        "the broker acked every reading to its publisher"
    );
    let db = data.path().join("eliot.db");
    let drained = eventually(Duration::from_secs(60), || stored_in(&db) >= 20_000).await;
    let (status, _) = eliot.terminate();
    assert!(status.success());
    let verdict = ledger.check(&db);
    println!(
        "upstream, 3 kills and a broker restart: {verdict}, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if verdict.lost > 0 {
        let lost = ledger.lost(&db);
        println!("lost, first 40: {:?}", &lost[..lost.len().min(40)]);
        println!("data kept in {:?}", data.keep());
        println!("broker log kept in {:?}", broker.dir());
        std::mem::forget(broker);
        panic!("lost {}", lost.len());
    }
    assert!(drained, "everything reached the store: {verdict}");
    assert_eq!(
        (verdict.lost, verdict.duplicated, verdict.unexpected),
        (0, 0, 0),
        "{verdict}"
    );
    assert_eq!(verdict.stored, 20_000, "{verdict}");
}
