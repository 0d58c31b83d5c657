//! Replay over HTTP after a configuration change, against the binary: dead letters made by
//! one Eliot under a small string limit are replayed by an Eliot started again on the same
//! data with the limit raised, and the database is read by the `sqlite3` shell.

use std::net::SocketAddr;

use rumqttc::QoS;
use serde_json::json;

use super::{admin, call, count, readings_of, Body};
use crate::common::process::{own_loopback_addr, Launch};
use crate::common::{reading, Device};
use crate::support::{api_tokens, READ_TOKEN};

/// A reading of `device` whose `data` holds a string of `len` bytes.
fn long_reading(device: &str, n: u64, len: usize) -> String {
    reading(device, n).replace(
        "\"celsius\":",
        &format!("\"note\":\"{}\",\"celsius\":", "x".repeat(len)),
    )
}

/// The ids of `device`'s dead letters, oldest first, through the API.
async fn dead_letter_ids(http: SocketAddr, device: &str) -> Vec<i64> {
    let path = format!("/api/v1/dead-letters?device={device}&order=asc&limit=1000");
    let answer = call(http, "GET", &path, Some(READ_TOKEN), Body::None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect()
}

fn ids_in(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Under `max_string_len = 1024`, readings with a 2,000-byte string are dead letters (and a
/// replay under the same rules refuses them again, keeping them). Started again with 4,096:
/// - one replayed by id is accepted, stored, and its dead letter gone (404; replayed again,
///   404); one with a 9,000-byte string is rejected with today's reason and kept;
/// - a replay by filter on one device, two at a time, walks all its dead letters through
///   `next_after`, stores them, and leaves another device's dead letters alone.
pub async fn after_a_configuration_change() {
    let data = tempfile::tempdir().unwrap();
    let mut launch = Launch::new(data.path(), own_loopback_addr())
        .config("[ingest]\nmax_string_len = 1024\n")
        .env("ELIOT_API_TOKENS", &api_tokens());
    launch.log = Some(data.path().join("eliot.log"));
    let eliot = launch.start();
    let sent = [
        (
            "rp-one",
            vec![
                long_reading("rp-one", 1, 2000),
                long_reading("rp-one", 2, 9000),
            ],
        ),
        (
            "rp-a",
            (1..=5).map(|n| long_reading("rp-a", n, 2000)).collect(),
        ),
        (
            "rp-b",
            (1..=3).map(|n| long_reading("rp-b", n, 2000)).collect(),
        ),
    ];
    for (device, payloads) in sent {
        let expected = payloads.len();
        let mut client = Device::connect(eliot.addr, device);
        let acked = client.publish_all(device, payloads, QoS::AtLeastOnce).await;
        assert_eq!(acked, expected, "{device}");
        client.disconnect().await;
    }
    let http = eliot.http;
    let one = dead_letter_ids(http, "rp-one").await;
    let of_a = dead_letter_ids(http, "rp-a").await;
    let of_b = dead_letter_ids(http, "rp-b").await;
    assert_eq!(
        (one.len(), of_a.len(), of_b.len()),
        (2, 5, 3),
        "all dead letters"
    );
    let (valid, invalid) = (one[0], one[1]);

    let path = format!("/api/v1/dead-letters/{valid}/replay");
    let same_rules = admin(http, "POST", &path, Body::None).await;
    assert_eq!(same_rules.status, 200, "{same_rules:?}");
    assert_eq!(same_rules.body["outcome"], "rejected", "{same_rules:?}");
    let (status, _) = tokio::task::spawn_blocking(move || eliot.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    let db = data.path().join("eliot.db");
    assert_eq!(
        count(&db, "SELECT count(*) FROM dead_letters"),
        10,
        "all kept"
    );

    let eliot = launch.config("[ingest]\nmax_string_len = 4096\n").start();
    let http = eliot.http;
    let answer = admin(http, "POST", &path, Body::None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["id"], valid, "{answer:?}");
    assert_eq!(answer.body["outcome"], "accepted", "{answer:?}");
    assert_eq!(answer.body["readings"], 1, "{answer:?}");
    assert_eq!(readings_of(&db, "rp-one"), 1, "stored");
    let gone = call(
        http,
        "GET",
        &format!("/api/v1/dead-letters/{valid}"),
        Some(READ_TOKEN),
        Body::None,
    )
    .await;
    assert_eq!((gone.status, gone.code()), (404, "not_found"), "{gone:?}");
    let again = admin(http, "POST", &path, Body::None).await;
    assert_eq!(
        (again.status, again.code()),
        (404, "not_found"),
        "{again:?}"
    );

    let path = format!("/api/v1/dead-letters/{invalid}/replay");
    let answer = admin(http, "POST", &path, Body::None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["id"], invalid, "{answer:?}");
    assert_eq!(answer.body["outcome"], "rejected", "{answer:?}");
    let reason = answer.body["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("4096"), "today's reason: {answer:?}");
    let kept = call(
        http,
        "GET",
        &format!("/api/v1/dead-letters/{invalid}"),
        Some(READ_TOKEN),
        Body::None,
    )
    .await;
    assert_eq!(kept.status, 200, "kept: {kept:?}");
    assert_eq!(readings_of(&db, "rp-one"), 1, "nothing more stored");

    for (path, status, code) in [
        ("/api/v1/dead-letters/0/replay", 400, "invalid_path"),
        ("/api/v1/dead-letters/abc/replay", 400, "invalid_path"),
        ("/api/v1/dead-letters/999999/replay", 404, "not_found"),
    ] {
        let answer = admin(http, "POST", path, Body::None).await;
        assert_eq!(
            (answer.status, answer.code()),
            (status, code),
            "{path}: {answer:?}"
        );
    }
    let bad = admin(
        http,
        "POST",
        "/api/v1/dead-letters/replay",
        Body::Json(json!({ "device": "rp-a", "limit": "many" })),
    )
    .await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_body"), "{bad:?}");
    assert_eq!(
        readings_of(&db, "rp-a"),
        0,
        "a refused call replays nothing"
    );

    let (mut after, mut pages, mut replayed_ids) = (None::<i64>, 0, Vec::new());
    loop {
        let mut body = json!({ "device": "rp-a", "limit": 2 });
        if let Some(after) = after {
            body["after"] = after.into();
        }
        let answer = admin(
            http,
            "POST",
            "/api/v1/dead-letters/replay",
            Body::Json(body),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let replayed = answer.body["replayed"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(replayed.len() <= 2, "a page of two at most: {answer:?}");
        for r in &replayed {
            let id = r["id"].as_i64().unwrap();
            assert!(of_a.contains(&id), "only rp-a's: {answer:?}");
            assert!(
                after.is_none_or(|after| id > after),
                "past `after`: {answer:?}"
            );
            assert_eq!(
                (&r["outcome"], &r["readings"]),
                (&json!("accepted"), &json!(1)),
                "{answer:?}"
            );
            replayed_ids.push(id);
        }
        assert_eq!(answer.body["accepted"], replayed.len(), "{answer:?}");
        assert_eq!(
            (&answer.body["rejected"], &answer.body["gone"]),
            (&json!(0), &json!(0)),
            "{answer:?}"
        );
        pages += 1;
        assert!(pages <= 4, "five dead letters, two a page: {answer:?}");
        match answer.body["next_after"].as_i64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(replayed_ids, of_a, "each of rp-a's once, in order");
    assert!(pages >= 3, "paged: {pages}");
    assert_eq!(readings_of(&db, "rp-a"), 5, "all stored");
    assert_eq!(readings_of(&db, "rp-b"), 0, "another device's not replayed");
    let left = |ids: &[i64]| {
        count(
            &db,
            &format!(
                "SELECT count(*) FROM dead_letters WHERE id IN ({})",
                ids_in(ids)
            ),
        )
    };
    assert_eq!(left(&of_a), 0, "rp-a's dead letters gone");
    assert_eq!(left(&of_b), 3, "rp-b's kept");
    assert_eq!(left(&[invalid]), 1, "the one still too long kept");
}
