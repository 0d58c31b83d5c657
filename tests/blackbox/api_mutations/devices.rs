//! `POST /devices`, `POST /devices/{id}/rotate` and `DELETE /devices/{id}` against the
//! binary: the secret shown once logs in (and is never logged), rotate and delete close a
//! device's live connection within seconds and revoke what it logged in with, delete keeps
//! the readings unless asked to purge, and purges no one else's.

use std::path::Path;
use std::time::{Duration, Instant};

use rumqttc::QoS;
use serde_json::json;

use super::{
    admin, assert_forgotten, call, count, login, provision, readings_of, Answer, Body, Publishing,
    WITHIN,
};
use crate::common::process::{free_addr, EliotProcess, Launch};
use crate::common::{eventually, options, reading, Device};
use crate::support::{api_tokens, READ_TOKEN};

/// Eliot with the API's tokens and devices logging in with passwords, `toml` as its
/// configuration, its log in the data directory.
fn password_eliot(dir: &Path, toml: &str) -> EliotProcess {
    let mut launch = Launch::new(dir, free_addr())
        .config(toml)
        .env("ELIOT_API_TOKENS", &api_tokens())
        .env("ELIOT_AUTH_MODE", "password");
    launch.log = Some(dir.join("eliot.log"));
    launch.start()
}

fn post_device(body: serde_json::Value) -> Body {
    Body::Json(body)
}

/// A device logged in with `secret` and storing readings (three acked already).
async fn live(eliot: &EliotProcess, device: &str, secret: Option<&str>) -> Publishing {
    live_every(eliot, device, secret, Duration::from_millis(100)).await
}

/// `live`, publishing every `period`.
async fn live_every(
    eliot: &EliotProcess,
    device: &str,
    secret: Option<&str>,
    period: Duration,
) -> Publishing {
    let raw = login(eliot.addr, device, secret)
        .await
        .unwrap_or_else(|why| {
            let log = std::fs::read_to_string(eliot.data_dir.join("eliot.log")).unwrap_or_default();
            panic!("{device} logs in: {why}; Eliot's log:\n{log}")
        });
    let publishing = Publishing::every(raw, device, period);
    publishing.wait_acked(3, device).await;
    publishing
}

/// The answer to a DELETE that removed a device: what it says it did.
fn assert_removed(answer: &Answer, device: &str, purged: bool) {
    assert_eq!(answer.status, 200, "DELETE {device}: {answer:?}");
    assert_eq!(answer.body["device_id"], device, "{answer:?}");
    assert_eq!(answer.body["removed"], true, "{answer:?}");
    assert_eq!(
        answer.body["readings_purged"].is_null(),
        !purged,
        "{answer:?}"
    );
    // Its connections ended before the answer: nothing they read comes after it.
    assert_eq!(answer.body["connections_still_closing"], 0, "{answer:?}");
}

/// A provisioned device's secret, shown once in the 201, logs in over MQTT; a second POST
/// of the id is 409 `device_exists` without a secret and leaves the first one working;
/// bad bodies are 400 `invalid_body`; a certificate login gets no secret and cannot be
/// rotated (409 `certificate_only`); a device provisioned and never seen is listed offline,
/// never seen; and no secret reaches Eliot's log.
pub async fn provisioning() {
    let data = tempfile::tempdir().unwrap();
    let eliot = password_eliot(data.path(), "");
    let http = eliot.http;
    let answer = admin(
        http,
        "POST",
        "/api/v1/devices",
        post_device(json!({ "device_id": "prov-1" })),
    )
    .await;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(answer.body["device_id"], "prov-1", "{answer:?}");
    assert_eq!(answer.body["login"], "secret", "{answer:?}");
    let secret = answer.body["secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(secret.len() >= 16, "a secret worth the name: {answer:?}");
    let location = answer.location.clone().unwrap_or_default();
    assert!(
        location.ends_with("/api/v1/devices/prov-1"),
        "Location: {answer:?}"
    );

    let raw = login(eliot.addr, "prov-1", Some(&secret)).await;
    assert!(raw.is_ok(), "the secret shown logs in: {:?}", raw.err());
    drop(raw);
    let wrong = login(eliot.addr, "prov-1", Some("not-the-secret-0123456789")).await;
    assert!(wrong.is_err(), "another secret does not log in");

    let again = admin(
        http,
        "POST",
        "/api/v1/devices",
        post_device(json!({ "device_id": "prov-1", "login": "secret" })),
    )
    .await;
    assert_eq!(
        (again.status, again.code()),
        (409, "device_exists"),
        "{again:?}"
    );
    assert!(!again.text.contains(&secret), "no secret in a refusal");
    let still = login(eliot.addr, "prov-1", Some(&secret)).await;
    assert!(
        still.is_ok(),
        "the first secret still logs in: {:?}",
        still.err()
    );
    drop(still);

    for body in [
        post_device(json!({ "device_id": "bad/id" })),
        post_device(json!({ "device_id": "" })),
        post_device(json!({ "device_id": "a+b#c" })),
        post_device(json!({ "device_id": "x".repeat(65) })),
        post_device(json!({ "device_id": "prov-odd", "login": "fingerprint" })),
        post_device(json!({ "login": "secret" })),
        post_device(json!({ "device_id": 7 })),
        Body::Raw("{\"device_id\": \"prov-half"),
    ] {
        let answer = admin(http, "POST", "/api/v1/devices", body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "invalid_body"),
            "{answer:?}"
        );
    }
    let odd = call(
        http,
        "GET",
        "/api/v1/devices/prov-odd",
        Some(READ_TOKEN),
        Body::None,
    )
    .await;
    assert_eq!(
        odd.status, 404,
        "a refused body provisions nothing: {odd:?}"
    );

    let certificate = admin(
        http,
        "POST",
        "/api/v1/devices",
        post_device(json!({ "device_id": "prov-cert", "login": "certificate" })),
    )
    .await;
    assert_eq!(certificate.status, 201, "{certificate:?}");
    assert_eq!(certificate.body["login"], "certificate", "{certificate:?}");
    assert!(certificate.body["secret"].is_null(), "{certificate:?}");
    let rotate = admin(http, "POST", "/api/v1/devices/prov-cert/rotate", Body::None).await;
    assert_eq!(
        (rotate.status, rotate.code()),
        (409, "certificate_only"),
        "{rotate:?}"
    );

    let second = provision(http, "prov-2").await;
    let deadline = Instant::now() + WITHIN;
    let one = loop {
        let answer = call(
            http,
            "GET",
            "/api/v1/devices/prov-2",
            Some(READ_TOKEN),
            Body::None,
        )
        .await;
        if answer.status == 200 || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        one.status, 200,
        "the fleet knows a provisioned device: {one:?}"
    );
    assert_eq!(one.body["device_id"], "prov-2", "{one:?}");
    assert_eq!(one.body["status"], "offline", "{one:?}");
    assert!(one.body["last_seen"].is_null(), "never seen: {one:?}");
    assert!(one.body["connected_since"].is_null(), "{one:?}");
    let list = call(
        http,
        "GET",
        "/api/v1/devices?id_prefix=prov-&status=offline",
        Some(READ_TOKEN),
        Body::None,
    )
    .await;
    assert_eq!(list.status, 200, "{list:?}");
    let ids: Vec<&str> = list.body["devices"]
        .as_array()
        .map(|devices| {
            devices
                .iter()
                .filter_map(|d| d["device_id"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(ids.contains(&"prov-2"), "listed offline: {list:?}");

    let log = data.path().join("eliot.log");
    let (status, _) = tokio::task::spawn_blocking(move || eliot.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    let logged = std::fs::read_to_string(log).unwrap_or_default();
    for shown in [&secret, &second] {
        assert!(
            !logged.contains(shown.as_str()),
            "a secret in the log:\n{logged}"
        );
    }
}

/// A device publishing with its secret is disconnected within seconds of a rotate; the
/// new secret, used at once, logs in and its connection stays (the revocation of the old
/// one must not close it); the old secret no longer logs in. Rotating an unknown device
/// is 404 `not_found`.
pub async fn rotate() {
    let data = tempfile::tempdir().unwrap();
    let eliot = password_eliot(data.path(), "");
    let http = eliot.http;
    let old = provision(http, "rot-1").await;
    let publishing = live(&eliot, "rot-1", Some(&old)).await;
    let since = Instant::now();
    let answer = admin(http, "POST", "/api/v1/devices/rot-1/rotate", Body::None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["device_id"], "rot-1", "{answer:?}");
    let new = answer.body["secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(new.len() >= 16 && new != old, "a new secret: {answer:?}");
    publishing.closed_within(since, "rot-1").await;

    // At once, as a device given its new secret reconnects: it gets in and stays in.
    let again = live(&eliot, "rot-1", Some(&new)).await;
    let refused = login(eliot.addr, "rot-1", Some(&old)).await;
    assert!(refused.is_err(), "the old secret is revoked");
    tokio::time::sleep(Duration::from_secs(1)).await;
    again.wait_acked(10, "rot-1").await;

    let unknown = admin(http, "POST", "/api/v1/devices/nobody/rotate", Body::None).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (404, "not_found"),
        "{unknown:?}"
    );
}

/// With `auth.mode = "none"` there is nothing to revoke, yet DELETE closes the connection
/// of a device publishing (through the fleet): one provisioned first, and one only heard.
/// Their readings are kept.
pub async fn delete_without_credentials() {
    let data = tempfile::tempdir().unwrap();
    let eliot = Launch::new(data.path(), free_addr())
        .env("ELIOT_API_TOKENS", &api_tokens())
        .start();
    let (http, db) = (eliot.http, eliot.db_path());
    provision(http, "open-1").await;
    let first = live(&eliot, "open-1", None).await;
    let heard = live(&eliot, "open-2", None).await;
    // The fleet has heard of open-2 once it has written its state.
    let known = eventually(Duration::from_secs(20), || {
        count(
            &db,
            "SELECT count(*) FROM device_state WHERE device_id = 'open-2'",
        ) == 1
    })
    .await;
    assert!(known, "the fleet knows open-2");

    for (device, publishing) in [("open-1", first), ("open-2", heard)] {
        let since = Instant::now();
        let path = format!("/api/v1/devices/{device}");
        let answer = admin(http, "DELETE", &path, Body::None).await;
        assert_removed(&answer, device, false);
        assert_eq!(answer.body["connections_closed"], 1, "{answer:?}");
        let acked = publishing.closed_within(since, device).await;
        assert!(
            readings_of(&db, device) >= acked as i64,
            "{device}: its {acked} acked readings kept"
        );
        assert_forgotten(http, device).await;
    }
}

/// DELETE closes a publishing device's connection and removes its credentials (its
/// secret is refused after) and its fleet state, and keeps its readings; with
/// `?purge=true` another device's readings are deleted, a third device's kept. Unknown
/// devices, and a device deleted already, are 404; a bad `purge` is 400.
pub async fn delete_and_purge() {
    let data = tempfile::tempdir().unwrap();
    let eliot = password_eliot(data.path(), "");
    let (http, db) = (eliot.http, eliot.db_path());
    let kept = provision(http, "del-kept").await;
    let purged = provision(http, "del-purged").await;
    let bystander = provision(http, "del-other").await;
    let mut options = options(eliot.addr, "del-other");
    options.set_credentials("del-other", bystander);
    let mut other = Device::connect_with(options);
    let payloads = (1..=5).map(|n| reading("del-other", n)).collect();
    assert_eq!(
        other
            .publish_all("del-other", payloads, QoS::AtLeastOnce)
            .await,
        5
    );
    other.disconnect().await;
    let kept_live = live(&eliot, "del-kept", Some(&kept)).await;
    // Fast, so that readings are in flight when it is deleted: none may be stored after
    // the purge.
    let period = Duration::from_millis(5);
    let purged_live = live_every(&eliot, "del-purged", Some(&purged), period).await;

    let since = Instant::now();
    let answer = admin(http, "DELETE", "/api/v1/devices/del-kept", Body::None).await;
    assert_removed(&answer, "del-kept", false);
    assert_eq!(answer.body["connections_closed"], 1, "{answer:?}");
    let acked = kept_live.closed_within(since, "del-kept").await;
    let refused = login(eliot.addr, "del-kept", Some(&kept)).await;
    assert!(refused.is_err(), "del-kept's credentials are gone");
    let stored = readings_of(&db, "del-kept");
    assert!(
        stored >= acked as i64,
        "its {acked} acked readings kept: {stored}"
    );

    let bad = admin(
        http,
        "DELETE",
        "/api/v1/devices/del-purged?purge=maybe",
        Body::None,
    )
    .await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_query"), "{bad:?}");
    let since = Instant::now();
    let answer = admin(
        http,
        "DELETE",
        "/api/v1/devices/del-purged?purge=true",
        Body::None,
    )
    .await;
    assert_removed(&answer, "del-purged", true);
    assert_eq!(answer.body["connections_closed"], 1, "{answer:?}");
    let acked = purged_live.closed_within(since, "del-purged").await;
    let reported = answer.body["readings_purged"].as_i64().unwrap_or(-1);
    assert!(
        reported >= acked as i64,
        "{acked} acked, all purged: {answer:?}"
    );
    assert_eq!(readings_of(&db, "del-purged"), 0, "purged");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(readings_of(&db, "del-purged"), 0, "nothing written after");
    assert_eq!(readings_of(&db, "del-other"), 5, "another device's kept");
    assert_eq!(readings_of(&db, "del-kept"), stored, "the kept ones kept");
    let refused = login(eliot.addr, "del-purged", Some(&purged)).await;
    assert!(refused.is_err(), "del-purged's credentials are gone");

    // Deleted devices do not come back: not in the fleet, no state stored, a second
    // DELETE finds nothing.
    assert_forgotten(http, "del-kept").await;
    assert_forgotten(http, "del-purged").await;
    let forgotten = eventually(Duration::from_secs(20), || {
        count(
            &db,
            "SELECT count(*) FROM device_state WHERE device_id IN ('del-kept', 'del-purged')",
        ) == 0
    })
    .await;
    assert!(
        forgotten,
        "the fleet's stored state of deleted devices is gone"
    );
    for path in [
        "/api/v1/devices/del-kept",
        "/api/v1/devices/del-purged?purge=true",
        "/api/v1/devices/nobody",
    ] {
        let answer = admin(http, "DELETE", path, Body::None).await;
        assert_eq!(
            (answer.status, answer.code()),
            (404, "not_found"),
            "{path}: {answer:?}"
        );
    }
}

/// With `fleet.enabled = false`, provisioning, rotate and delete still work and still
/// close the device's connection (through the revocation of its credentials), while the
/// fleet's routes answer 503 `fleet_disabled`.
pub async fn without_the_fleet() {
    let data = tempfile::tempdir().unwrap();
    let eliot = password_eliot(data.path(), "[fleet]\nenabled = false\n");
    let http = eliot.http;
    let old = provision(http, "nf-1").await;
    let publishing = live(&eliot, "nf-1", Some(&old)).await;
    let since = Instant::now();
    let answer = admin(http, "POST", "/api/v1/devices/nf-1/rotate", Body::None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let new = answer.body["secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    publishing.closed_within(since, "nf-1").await;
    assert!(
        login(eliot.addr, "nf-1", Some(&old)).await.is_err(),
        "old secret revoked"
    );

    let publishing = live(&eliot, "nf-1", Some(&new)).await;
    let since = Instant::now();
    let answer = admin(http, "DELETE", "/api/v1/devices/nf-1", Body::None).await;
    assert_removed(&answer, "nf-1", false);
    publishing.closed_within(since, "nf-1").await;
    assert!(
        login(eliot.addr, "nf-1", Some(&new)).await.is_err(),
        "credentials removed"
    );
    let answer = admin(http, "DELETE", "/api/v1/devices/nf-1", Body::None).await;
    assert_eq!(
        (answer.status, answer.code()),
        (404, "not_found"),
        "{answer:?}"
    );

    let fleet = call(http, "GET", "/api/v1/devices", Some(READ_TOKEN), Body::None).await;
    assert_eq!(
        (fleet.status, fleet.code()),
        (503, "fleet_disabled"),
        "{fleet:?}"
    );
}
