//! Who may mutate, against the binary: every mutation answers a read token 403 `forbidden`
//! and no token 401 `unauthorized` (with its challenge), and neither changes anything.

use rumqttc::QoS;
use serde_json::json;

use super::{admin, call, count, provision, Body};
use crate::common::process::{free_addr, Launch};
use crate::common::Device;
use crate::support::{api_tokens, READ_TOKEN};

/// A device provisioned, one dead letter; then each mutation with a read token and with
/// none is refused; the device's secret, its fleet state and the dead letter are as they
/// were, and the id refused a POST is still free.
pub async fn every_mutation_needs_admin() {
    let data = tempfile::tempdir().unwrap();
    let eliot = Launch::new(data.path(), free_addr())
        .env("ELIOT_API_TOKENS", &api_tokens())
        .start();
    let (http, db) = (eliot.http, eliot.db_path());
    provision(http, "role-1").await;
    let mut device = Device::connect(eliot.addr, "role-1");
    let sent = device
        .publish_all("role-1", vec!["not json".into()], QoS::AtLeastOnce)
        .await;
    assert_eq!(sent, 1);
    device.disconnect().await;
    let secrets = "SELECT group_concat(secret_hash) FROM devices WHERE device_id = 'role-1'";
    let before = crate::common::outside::default_reader().query(&db, secrets);
    assert!(
        before.concat().concat().starts_with('$'),
        "a hash: {before:?}"
    );

    let mutations = [
        (
            "POST",
            "/api/v1/devices",
            Some(json!({ "device_id": "role-new" })),
        ),
        ("POST", "/api/v1/devices/role-1/rotate", None),
        ("DELETE", "/api/v1/devices/role-1", None),
        ("DELETE", "/api/v1/devices/role-1?purge=true", None),
        ("POST", "/api/v1/devices/role-1/release", None),
        ("POST", "/api/v1/dead-letters/1/replay", None),
        (
            "POST",
            "/api/v1/dead-letters/replay",
            Some(json!({ "device": "role-1" })),
        ),
    ];
    for (method, path, body) in mutations {
        for (who, token) in [("read", Some(READ_TOKEN)), ("none", None)] {
            let body = body.clone().map_or(Body::None, Body::Json);
            let answer = call(http, method, path, token, body).await;
            let expected = match who {
                "read" => (403, "forbidden"),
                _ => (401, "unauthorized"),
            };
            assert_eq!(
                (answer.status, answer.code()),
                expected,
                "{method} {path} as {who}: {answer:?}"
            );
        }
    }

    let after = crate::common::outside::default_reader().query(&db, secrets);
    assert_eq!(
        before, after,
        "role-1's secret unchanged, still provisioned"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM dead_letters"),
        1,
        "not replayed"
    );
    let known = call(
        http,
        "GET",
        "/api/v1/devices/role-1",
        Some(READ_TOKEN),
        Body::None,
    )
    .await;
    assert_eq!(
        known.status, 200,
        "role-1 still known to the fleet: {known:?}"
    );
    let created = admin(
        http,
        "POST",
        "/api/v1/devices",
        Body::Json(json!({ "device_id": "role-new" })),
    )
    .await;
    assert_eq!(
        created.status, 201,
        "role-new was not provisioned: {created:?}"
    );
}
