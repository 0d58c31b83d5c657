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

/// The routes of the API v1 (phase 1), with a dead letter that exists.
const ROUTES: [&str; 4] = [
    "/api/v1/devices/robot_auth/readings",
    "/api/v1/devices/robot_auth/readings/latest",
    "/api/v1/dead-letters",
    "/api/v1/dead-letters/1",
];

/// Every route and method, with no token, a bad one, a read one and an admin one:
/// - none: 401 with `WWW-Authenticate: Bearer` and the error body;
/// - bad: 401 likewise (or 429 once that address has guessed too often);
/// - read: GET 200, POST and DELETE 403 `forbidden`;
/// - admin: GET 200, POST and DELETE 405 `method_not_allowed` with `Allow: GET`.
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
    for route in ROUTES {
        for method in ["GET", "POST", "DELETE"] {
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
                    (_, "GET") => {
                        assert_eq!(answer.status, 200, "{what}");
                        assert!(answer.body.is_object(), "{what}");
                    }
                    ("read", _) => {
                        assert_eq!((answer.status, answer.code()), (403, "forbidden"), "{what}")
                    }
                    _ => {
                        assert_eq!(
                            (answer.status, answer.code()),
                            (405, "method_not_allowed"),
                            "{what}"
                        );
                        assert_eq!(answer.allow.as_deref(), Some("GET"), "{what}");
                    }
                }
                assert!(!answer.body["error"]["message"].is_null() || answer.status == 200);
            }
        }
    }
    assert_eq!(bad_answers[0], 401, "the first bad token is a 401");

    let unknown = "/api/v1/nothing/here";
    assert_eq!(api(http, "GET", unknown, None).await.status, 401);
    let answer = api_get(http, unknown, READ_TOKEN).await;
    assert_eq!((answer.status, answer.code()), (404, "not_found"));

    let document = api(http, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(document.status, 200);
    for route in [
        "/api/v1/devices/{id}/readings",
        "/api/v1/devices/{id}/readings/latest",
        "/api/v1/dead-letters",
        "/api/v1/dead-letters/{id}",
    ] {
        assert!(document.body["paths"][route]["get"].is_object(), "{route}");
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
            ROUTES[2],
            Some("Bearer guess-guess-guess".into()),
        )
        .await;
        if answer.status == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "forty bad tokens in a row meet the rate limit");
    assert_eq!(api_get(http, ROUTES[2], ADMIN_TOKEN).await.status, 200);
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
