//! Who may call the API v1, against the `eliot` binary: the matrix of credentials (none,
//! a bad token, a read token, an admin token) on every route and method, the open OpenAPI
//! document, bad tokens rate-limited, and the API served without tokens on loopback,
//! saying so at start. (A non-loopback `http.listen` without tokens refusing to start is
//! in tests/cli.rs, `the_api_is_not_served_off_loopback_without_tokens`.)

use std::time::Duration;

use libtest_mimic::Trial;
use rumqttc::QoS;

use crate::common::process::{free_addr, Launch};
use crate::common::{reading, Device};
use crate::support::{api, api_get, api_tokens, trial, ADMIN_TOKEN, READ_TOKEN};

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "api_auth::every_route_and_method_answers_each_credential_as_its_role_allows",
            the_matrix,
        ),
        trial(
            "api_auth::without_tokens_the_api_is_served_on_loopback_and_says_so",
            loopback_without_tokens,
        ),
    ]
}

/// Every route of the API v1 with the methods it answers (its `Allow`), on a device and a
/// dead letter that exist. The device's own path comes last: its `DELETE` removes it.
const ROUTES: [(&str, &str); 20] = [
    ("/api/v1/alerts", "GET"),
    ("/api/v1/alerts/events", "GET"),
    ("/api/v1/alerts/events/1/retry", "POST"),
    ("/api/v1/alerts/rules", "GET"),
    ("/api/v1/alerts/rules/x", "PUT, DELETE"),
    ("/api/v1/alerts/silences", "GET, POST"),
    ("/api/v1/alerts/silences/1", "DELETE"),
    ("/api/v1/devices/robot_auth/alerts/hot/ack", "POST"),
    ("/api/v1/devices/robot_auth/readings", "GET"),
    ("/api/v1/devices/robot_auth/readings/latest", "GET"),
    ("/api/v1/dead-letters", "GET"),
    ("/api/v1/dead-letters/1", "GET"),
    ("/api/v1/dead-letters/1/replay", "POST"),
    ("/api/v1/dead-letters/replay", "POST"),
    ("/api/v1/devices", "GET, POST"),
    ("/api/v1/devices/robot_auth/events", "GET"),
    ("/api/v1/devices/robot_auth/release", "POST"),
    ("/api/v1/devices/robot_auth/rotate", "POST"),
    ("/api/v1/devices/robot_auth", "GET, DELETE"),
    ("/api/v1/devices/robot_auth", "GET, DELETE"),
];

/// Every route and method, with no token, a bad one, a read one and an admin one:
/// - none: 401 with `WWW-Authenticate: Bearer` and the error body;
/// - bad: 401 likewise (or 429 once that address has guessed too often);
/// - read: GET 200 where the path answers GET (405 where not), any other method 403
///   `forbidden`;
/// - admin: GET 200; a method the path answers reaches its handler (whatever it then
///   says of the request: no 401, 403 or 405); another 405 `method_not_allowed` with the
///   path's `Allow`.
///
/// An unknown path is 401 without a token, 404 with one. The OpenAPI document is open
/// and documents every route and the bearer scheme. Forty quick bad tokens from one
/// address meet 429 `too_many_requests`, while a good token still passes.
async fn the_matrix() {
    let data = tempfile::tempdir().unwrap();
    let eliot = Launch::new(data.path(), free_addr())
        .env("ELIOT_API_TOKENS", &api_tokens())
        .start();
    let mut device = Device::connect(eliot.addr, "robot_auth");
    let payloads = vec![reading("robot_auth", 1), "not json".to_owned()];
    assert_eq!(
        device
            .publish_all("robot_auth", payloads, QoS::AtLeastOnce)
            .await,
        2
    );
    let http = eliot.http;
    let credentials: [(&str, Option<String>); 5] = [
        ("none", None),
        ("bad", Some("Bearer not-a-token-of-this-eliot".into())),
        ("basic", Some("Basic cmVhZDpwYXNzd29yZA==".into())),
        ("read", Some(format!("Bearer {READ_TOKEN}"))),
        ("admin", Some(format!("Bearer {ADMIN_TOKEN}"))),
    ];
    let mut bad_answers = Vec::new();
    let mut deleted = false;
    for (route, allow) in ROUTES {
        let answers = |method: &str| allow.split(", ").any(|m| m == method);
        for method in ["GET", "POST", "PUT", "DELETE"] {
            for (who, authorization) in &credentials {
                let answer = api(http, method, route, authorization.clone()).await;
                let what = format!("{method} {route} as {who}: {answer:?}");
                match (*who, method) {
                    ("none", _) => {
                        assert_eq!(
                            (answer.status, answer.code()),
                            (401, "unauthorized"),
                            "{what}"
                        );
                        let challenge = answer.www_authenticate.as_deref().unwrap_or_default();
                        assert!(challenge.starts_with("Bearer"), "{what}");
                    }
                    ("bad" | "basic", _) => {
                        bad_answers.push(answer.status);
                        match answer.status {
                            401 => {
                                assert_eq!(answer.code(), "unauthorized", "{what}");
                                assert!(answer.www_authenticate.is_some(), "{what}");
                            }
                            429 => assert_eq!(answer.code(), "too_many_requests", "{what}"),
                            _ => panic!("{what}"),
                        }
                    }
                    // After the first DELETE (the last route, twice), the device is gone.
                    (_, "GET") if answers("DELETE") && deleted => {
                        assert_eq!((answer.status, answer.code()), (404, "not_found"), "{what}")
                    }
                    (_, "GET") if answers("GET") => {
                        assert_eq!(answer.status, 200, "{what}");
                        assert!(answer.body.is_object(), "{what}");
                    }
                    ("read", m) if m != "GET" => {
                        assert_eq!((answer.status, answer.code()), (403, "forbidden"), "{what}")
                    }
                    ("admin", _) if answers(method) => {
                        assert!(![401, 403, 405].contains(&answer.status), "{what}");
                        assert!(answer.body.is_object(), "{what}");
                        deleted |= method == "DELETE" && answer.status == 200;
                    }
                    _ => {
                        assert_eq!(
                            (answer.status, answer.code()),
                            (405, "method_not_allowed"),
                            "{what}"
                        );
                        assert_eq!(answer.allow.as_deref(), Some(allow), "{what}");
                    }
                }
                assert!(!answer.body["error"]["message"].is_null() || answer.status == 200);
            }
        }
    }
    assert!(
        deleted,
        "the admin's DELETE reached its handler and removed the device"
    );
    assert_eq!(bad_answers[0], 401, "the first bad token is a 401");

    let unknown = "/api/v1/nothing/here";
    assert_eq!(api(http, "GET", unknown, None).await.status, 401);
    let answer = api_get(http, unknown, READ_TOKEN).await;
    assert_eq!((answer.status, answer.code()), (404, "not_found"));

    let document = api(http, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(document.status, 200);
    for (route, methods) in [
        ("/api/v1/devices/{id}/readings", "get"),
        ("/api/v1/devices/{id}/readings/latest", "get"),
        ("/api/v1/dead-letters", "get"),
        ("/api/v1/dead-letters/{id}", "get"),
        ("/api/v1/dead-letters/{id}/replay", "post"),
        ("/api/v1/dead-letters/replay", "post"),
        ("/api/v1/devices", "get post"),
        ("/api/v1/devices/{id}", "get delete"),
        ("/api/v1/devices/{id}/events", "get"),
        ("/api/v1/devices/{id}/release", "post"),
        ("/api/v1/devices/{id}/rotate", "post"),
        ("/api/v1/alerts", "get"),
        ("/api/v1/alerts/events", "get"),
        ("/api/v1/alerts/events/{id}/retry", "post"),
        ("/api/v1/alerts/rules", "get"),
        ("/api/v1/alerts/rules/{name}", "put delete"),
        ("/api/v1/alerts/silences", "get post"),
        ("/api/v1/alerts/silences/{id}", "delete"),
        ("/api/v1/devices/{id}/alerts/{rule}/ack", "post"),
    ] {
        for method in methods.split(' ') {
            let operation = &document.body["paths"][route][method];
            assert!(operation.is_object(), "{method} {route}");
            assert!(
                operation["responses"]["401"].is_object(),
                "{method} {route}"
            );
        }
    }
    assert_eq!(
        document.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let mut limited = false;
    for _ in 0..40 {
        let answer = api(
            http,
            "GET",
            ROUTES[0].0,
            Some("Bearer guess-guess-guess".into()),
        )
        .await;
        if answer.status == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "forty bad tokens in a row meet the rate limit");
    assert_eq!(api_get(http, ROUTES[0].0, ADMIN_TOKEN).await.status, 200);
}

/// With no token configured and `http.listen` on loopback, the API answers without a
/// token (reads and, as an admin would, everything else), and Eliot's log says at start
/// that the API is open to whoever reaches that address.
async fn loopback_without_tokens() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("eliot.log");
    let mut launch = Launch::new(data.path(), free_addr());
    launch.log = Some(log.clone());
    let eliot = launch.start();
    let answer = api(eliot.http, "GET", "/api/v1/dead-letters", None).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["dead_letters"], serde_json::json!([]));
    let answer = api(eliot.http, "POST", "/api/v1/dead-letters", None).await;
    assert_eq!((answer.status, answer.code()), (405, "method_not_allowed"));
    let said = crate::common::eventually(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|text| {
            text.contains("http_listening") && text.contains("no API token is configured")
        })
    })
    .await;
    assert!(
        said,
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
