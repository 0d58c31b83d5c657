//! Paging a device's readings through the API v1 while devices publish, against the
//! `eliot` binary: no gap, no repeat, either order, across memory and merged chunks; and
//! cursors that are garbage, altered or used with other filters refused with the error
//! body.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use libtest_mimic::Trial;
use rumqttc::QoS;
use serde_json::Value;

use crate::common::process::{free_addr, Launch};
use crate::common::{Device, READING_EPOCH};
use crate::support::{api_get, api_tokens, trial, READ_TOKEN};

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "api_readings::pages_under_concurrent_ingest_have_no_gap_and_no_repeat",
        pages_under_ingest,
    )]
}

const DEVICE: &str = "pager";

/// Reading `n` of the paged device: two sensor types at each second, so that keys tie on
/// time and the sensor type orders them.
fn reading(n: u64) -> [String; 2] {
    let ts = time::OffsetDateTime::from_unix_timestamp(READING_EPOCH + n as i64).unwrap();
    let ts = ts
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    ["counter_a", "counter_b"].map(|sensor| {
        format!(
            r#"{{"device_id":"{DEVICE}","timestamp":"{ts}","sensor_type":"{sensor}","data":{{"n":{n}}}}}"#
        )
    })
}

/// A reading's key as the page shows it.
fn key(reading: &Value) -> (String, String) {
    (
        reading["timestamp"].as_str().unwrap().to_owned(),
        reading["sensor_type"].as_str().unwrap().to_owned(),
    )
}

/// Every page of `query` (without a cursor), following `next_cursor` to the end.
async fn walk(http: std::net::SocketAddr, query: &str) -> (Vec<(String, String)>, usize, String) {
    let base = format!("/api/v1/devices/{DEVICE}/readings?{query}");
    let (mut keys, mut pages, mut a_cursor) = (Vec::new(), 0, String::new());
    let mut path = base.clone();
    loop {
        let answer = api_get(http, &path, READ_TOKEN).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        keys.extend(answer.body["readings"].as_array().unwrap().iter().map(key));
        pages += 1;
        match answer.body["next_cursor"].as_str() {
            Some(cursor) => {
                a_cursor = cursor.to_owned();
                path = format!("{base}&cursor={cursor}");
            }
            None => return (keys, pages, a_cursor),
        }
    }
}

/// 1,200 readings stored first (small generations, so some are merged into chunks and
/// some are in memory), then pages of 37 oldest first and 41 newest first while another
/// connection publishes 600 newer readings and the store merges:
/// - no key twice, and keys strictly in the page order;
/// - every reading stored before the walk began is in both walks;
/// - the oldest-first walk, which ends at the newest reading stored when it ends, is
///   exactly the start of everything stored (nothing skipped, newer readings included).
///
/// Then a real cursor altered by one character, garbage, and a cursor sent with another
/// order or sensor type: 400 `invalid_cursor`.
async fn pages_under_ingest() {
    let data = tempfile::tempdir().unwrap();
    let eliot = Launch::new(data.path(), free_addr())
        .env("ELIOT_API_TOKENS", &api_tokens())
        .config("[store]\ngeneration_rows = 300\nmerge_slice = 100\n")
        .start();
    let http = eliot.http;
    let mut device = Device::connect(eliot.addr, DEVICE);
    let before: Vec<String> = (0..600).flat_map(reading).collect();
    assert_eq!(
        device
            .publish_all(DEVICE, before.clone(), QoS::AtLeastOnce)
            .await,
        1200
    );
    device.disconnect().await;

    let publishing = Arc::new(AtomicBool::new(true));
    let addr = eliot.addr;
    let still = publishing.clone();
    let publisher = tokio::spawn(async move {
        let mut device = Device::connect(addr, DEVICE);
        let mut n = 600;
        while still.load(Ordering::Relaxed) && n < 1200 {
            let batch: Vec<String> = (n..n + 20).flat_map(reading).collect();
            assert_eq!(
                device.publish_all(DEVICE, batch, QoS::AtLeastOnce).await,
                40
            );
            n += 20;
        }
        n
    });

    let all_before: BTreeSet<(String, String)> = {
        let (keys, _, _) = walk(http, "order=asc&limit=10000").await;
        keys.into_iter().take(1200).collect()
    };
    assert_eq!(all_before.len(), 1200);
    let (ascending, asc_pages, asc_cursor) = walk(http, "order=asc&limit=37").await;
    let (descending, desc_pages, _) = walk(http, "limit=41").await;
    publishing.store(false, Ordering::Relaxed);
    let published = publisher.await.unwrap();
    println!(
        "api_readings: {} readings oldest first in {asc_pages} pages, {} newest first in \
         {desc_pages} pages, while {} more were published",
        ascending.len(),
        descending.len(),
        (published - 600) * 2
    );
    assert!(asc_pages > 30 && desc_pages > 28, "many pages each way");

    for (name, walked, newest_first) in [("asc", &ascending, false), ("desc", &descending, true)] {
        let mut sorted = walked.clone();
        sorted.sort();
        if newest_first {
            sorted.reverse();
        }
        assert_eq!(walked, &sorted, "{name}: in order");
        let unique: BTreeSet<_> = walked.iter().cloned().collect();
        assert_eq!(unique.len(), walked.len(), "{name}: no repeat");
        let missing: Vec<_> = all_before.difference(&unique).take(3).collect();
        assert!(missing.is_empty(), "{name}: no gap: {missing:?} missing");
    }
    let (everything, _, _) = walk(http, "order=asc&limit=10000").await;
    assert_eq!(everything.len(), published as usize * 2);
    assert_eq!(
        ascending[..],
        everything[..ascending.len()],
        "the oldest-first walk is the start of everything stored"
    );

    let base = format!("/api/v1/devices/{DEVICE}/readings");
    let mut altered = asc_cursor.clone().into_bytes();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for query in [
        format!("order=asc&limit=37&cursor={altered}"),
        "order=asc&cursor=bm90IGEgY3Vyc29y".to_owned(),
        format!("order=desc&limit=37&cursor={asc_cursor}"),
        format!("order=asc&sensor_type=counter_a&cursor={asc_cursor}"),
        format!("order=asc&from=2025-01-01T00:00:00Z&cursor={asc_cursor}"),
    ] {
        let answer = api_get(http, &format!("{base}?{query}"), READ_TOKEN).await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_cursor"),
            "{query}"
        );
    }
    let other_device =
        format!("/api/v1/devices/someone_else/readings?order=asc&cursor={asc_cursor}");
    let answer = api_get(http, &other_device, READ_TOKEN).await;
    assert_eq!((answer.status, answer.code()), (400, "invalid_cursor"));
    // The same cursor with another limit is fine.
    let answer = api_get(
        http,
        &format!("{base}?order=asc&limit=5&cursor={asc_cursor}"),
        READ_TOKEN,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}
