//! The dead letters through the API v1, against the `eliot` binary: pages while devices
//! keep sending rejected messages (no gap, no repeat), the filters, one dead letter whole
//! with its payload as text or as base64, and the refusals.

use std::collections::BTreeSet;

use base64::Engine;
use libtest_mimic::Trial;
use rumqttc::QoS;

use crate::common::process::{free_addr, Launch};
use crate::common::Device;
use crate::support::{api_get, api_tokens, trial, READ_TOKEN};

pub fn tests() -> Vec<Trial> {
    vec![trial(
        "api_dead_letters::pages_filters_and_payloads_as_text_or_base64",
        dead_letters,
    )]
}

/// Rejected messages of `device`, numbered from `from`: text that is not JSON.
fn rejected(device: &str, from: usize, count: usize) -> Vec<String> {
    (from..from + count)
        .map(|n| format!("not json from {device} #{n}"))
        .collect()
}

/// Ids of every page of `query`, following `next_cursor` to the end.
async fn walk(http: std::net::SocketAddr, query: &str) -> Vec<i64> {
    let base = format!("/api/v1/dead-letters?{query}");
    let (mut ids, mut path) = (Vec::new(), base.clone());
    loop {
        let answer = api_get(http, &path, READ_TOKEN).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        let page = answer.body["dead_letters"].as_array().unwrap();
        ids.extend(page.iter().map(|d| d["id"].as_i64().unwrap()));
        match answer.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("{base}&cursor={cursor}"),
            None => return ids,
        }
    }
}

/// Four devices send 30 rejected messages each (fewer than their breakers allow), then
/// pages of 7 are walked newest first and oldest first while two more devices send 20
/// each: every dead letter stored before is seen once, ids strictly in order; the
/// oldest-first walk is the start of everything stored. The `device` and `reason`
/// filters narrow the listing; a UTF-8 payload reads back as text, a binary one as
/// base64; an unknown id is 404, a bad one 400, an altered cursor 400.
async fn dead_letters() {
    let data = tempfile::tempdir().unwrap();
    let eliot = Launch::new(data.path(), free_addr())
        .env("ELIOT_API_TOKENS", &api_tokens())
        .start();
    let http = eliot.http;
    for n in 0..4 {
        let name = format!("sender_{n}");
        let mut device = Device::connect(eliot.addr, &name);
        let sent = device
            .publish_all(&name, rejected(&name, 0, 30), QoS::AtLeastOnce)
            .await;
        assert_eq!(sent, 30);
    }
    let before: BTreeSet<i64> = walk(http, "limit=1000").await.into_iter().collect();
    assert_eq!(before.len(), 120);

    let addr = eliot.addr;
    let more = tokio::spawn(async move {
        for n in 4..6 {
            let name = format!("sender_{n}");
            let mut device = Device::connect(addr, &name);
            for chunk in 0..4 {
                let batch = rejected(&name, chunk * 5, 5);
                assert_eq!(device.publish_all(&name, batch, QoS::AtLeastOnce).await, 5);
            }
        }
    });
    let newest_first = walk(http, "limit=7").await;
    let oldest_first = walk(http, "limit=7&order=asc").await;
    more.await.unwrap();
    for (name, walked, descending) in [("desc", &newest_first, true), ("asc", &oldest_first, false)]
    {
        let mut sorted = walked.clone();
        sorted.sort();
        if descending {
            sorted.reverse();
        }
        sorted.dedup();
        assert_eq!(walked, &sorted, "{name}: in order, no repeat");
        let seen: BTreeSet<i64> = walked.iter().copied().collect();
        assert!(before.is_subset(&seen), "{name}: no gap");
    }
    let everything = walk(http, "limit=1000&order=asc").await;
    assert_eq!(everything.len(), 160);
    assert_eq!(oldest_first[..], everything[..oldest_first.len()]);

    let of_one = walk(http, "device=sender_2").await;
    assert_eq!(of_one.len(), 30);
    let answer = api_get(
        http,
        "/api/v1/dead-letters?reason=not%20valid%20JSON&limit=3",
        READ_TOKEN,
    )
    .await;
    assert_eq!(
        answer.body["dead_letters"].as_array().unwrap().len(),
        3,
        "{answer:?}"
    );
    let answer = api_get(
        http,
        "/api/v1/dead-letters?reason=no%20such%20reason",
        READ_TOKEN,
    )
    .await;
    assert_eq!(answer.body["dead_letters"], serde_json::json!([]));

    let device = Device::connect(eliot.addr, "binary");
    let bytes = vec![0xff, 0xfe, 0x00, b'{'];
    device
        .client
        .publish(
            "devices/binary/telemetry",
            QoS::AtLeastOnce,
            false,
            bytes.clone(),
        )
        .await
        .unwrap();
    let text_one = *of_one.first().unwrap();
    let found = crate::common::eventually_async(std::time::Duration::from_secs(20), || async {
        walk(http, "device=binary").await.len() == 1
    })
    .await;
    assert!(found, "the binary message is a dead letter");
    let binary_id = walk(http, "device=binary").await[0];
    let binary = api_get(
        http,
        &format!("/api/v1/dead-letters/{binary_id}"),
        READ_TOKEN,
    )
    .await;
    assert_eq!(binary.status, 200, "{binary:?}");
    assert_eq!(binary.body["payload_encoding"], "base64");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(binary.body["payload"].as_str().unwrap())
        .unwrap();
    assert_eq!(decoded, bytes);
    assert_eq!(binary.body["payload_bytes"], 4);
    let text = api_get(
        http,
        &format!("/api/v1/dead-letters/{text_one}"),
        READ_TOKEN,
    )
    .await;
    assert_eq!(text.body["payload_encoding"], "utf8", "{text:?}");
    assert_eq!(text.body["payload"], "not json from sender_2 #29");
    assert_eq!(text.body["topic"], "devices/sender_2/telemetry");
    assert!(text.body["reason"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    for (path, status, code) in [
        ("/api/v1/dead-letters/999999", 404, "not_found"),
        ("/api/v1/dead-letters/abc", 400, "invalid_path"),
        ("/api/v1/dead-letters/0", 400, "invalid_path"),
        ("/api/v1/dead-letters?limit=1001", 400, "invalid_query"),
        ("/api/v1/dead-letters?device=a%20b", 400, "invalid_query"),
        ("/api/v1/dead-letters?cursor=AAAA", 400, "invalid_cursor"),
    ] {
        let answer = api_get(http, path, READ_TOKEN).await;
        assert_eq!(
            (answer.status, answer.code()),
            (status, code),
            "{path}: {answer:?}"
        );
    }
    let first = api_get(http, "/api/v1/dead-letters?limit=2", READ_TOKEN).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let answer = api_get(
        http,
        &format!("/api/v1/dead-letters?limit=2&device=sender_1&cursor={cursor}"),
        READ_TOKEN,
    )
    .await;
    assert_eq!((answer.status, answer.code()), (400, "invalid_cursor"));
}
