//! Alerting, against the `eliot` binary, with real MQTT devices, a webhook receiver this
//! test runs (`receiver.rs`: a real HTTP server, scripted to fail), the API, and the
//! `sqlite3` shell reading the database from another process:
//!
//! - a threshold crossed for longer than `for` fires once and resolves once, each
//!   notified once, signed; the pending and the resolution are committed with the
//!   readings that caused them (seen by `sqlite3` as soon as the reading is acked);
//! - the same crossing from two connections at the same instant fires once;
//! - kill -9 before the webhook took a firing: after the restart it is delivered, once;
//!   kill -9 while firing: after the restart still firing, no second notification, and
//!   the resolution notified;
//! - a device that stops is alerted on within its rhythm, and so is one whose connection
//!   died with Eliot, after the restart;
//! - a receiver that fails 5 times, then recovers, gets every notification once, in order;
//! - silences and acknowledgements hold;
//! - rules made through the API judge at once, survive kill -9, and end when deleted;
//! - `count` dead letters within a window fire, once, and resolve when the window passed;
//! - an `eliot` rule: a full store fires once; kill -9, restarted with room: resolved,
//!   once.

#[path = "alerts/receiver.rs"]
mod receiver;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use rumqttc::QoS;
use serde_json::Value;

use crate::api_mutations::count;
use crate::common::process::{own_loopback_addr, EliotProcess, Launch};
use crate::common::{eventually, eventually_async, metric, Device, READING_EPOCH};
use crate::support::{api, api_get, api_tokens, trial, ADMIN_TOKEN, READ_TOKEN};
use receiver::Receiver;

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "alerts::a_threshold_held_past_for_fires_once_and_resolves_once",
            fires_once_resolves_once,
        ),
        trial(
            "alerts::the_same_crossing_from_two_connections_fires_once",
            two_connections_fire_once,
        ),
        trial(
            "alerts::kill_9_loses_no_notification_and_repeats_none",
            kill_9_loses_and_repeats_nothing,
        ),
        trial(
            "alerts::a_device_that_stops_is_alerted_within_its_rhythm_also_after_a_restart",
            absence,
        ),
        trial(
            "alerts::a_receiver_failing_5_times_gets_every_notification_once_in_order",
            failing_receiver,
        ),
        trial(
            "alerts::silences_and_acknowledgements_hold",
            silences_and_acknowledgements,
        ),
        trial(
            "alerts::rules_made_through_the_api_take_effect_survive_a_kill_and_go",
            rules_through_the_api,
        ),
        trial(
            "alerts::dead_letters_within_a_window_fire_and_resolve_when_it_passes",
            dead_letters_in_a_window,
        ),
        trial(
            "alerts::a_full_store_is_alerted_on_once_and_resolved_after_a_kill_and_more_room",
            eliot_itself,
        ),
    ]
}

const SECRET: &str = "webhook-secret-for-the-suite";

/// The webhook at `url`, retried quickly; state written every 100 ms; `rules` after.
fn config(url: &str, rules: &str) -> String {
    format!(
        r#"
[fleet]
flush_interval = "100ms"
state_interval = "100ms"
late_floor = "200ms"
min_samples = 5

[alerts.webhook]
url = "{url}"
secret = "{SECRET}"
timeout = "2s"
backoff = "100ms"
backoff_max = "200ms"
{rules}"#
    )
}

/// `too_hot`: temperature.celsius above 30, held until 28 or below, for `hold`.
fn too_hot(hold: &str) -> String {
    format!(
        r#"
[[alerts.rules]]
name = "too_hot"
severity = "critical"
kind = "threshold"
sensor_type = "temperature"
field = "celsius"
op = ">"
value = 30.0
clear = 28.0
for = "{hold}"
"#
    )
}

fn start(dir: &Path, config: &str) -> EliotProcess {
    Launch::new(dir, own_loopback_addr())
        .config(config)
        .env("ELIOT_API_TOKENS", &api_tokens())
        .start()
}

/// `device`'s temperature reading `n` (its time n seconds after the suite's epoch).
fn temperature(device: &str, n: u64, celsius: f64) -> String {
    let ts = time::OffsetDateTime::from_unix_timestamp(READING_EPOCH + n as i64).unwrap();
    let ts = ts
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    format!(
        r#"{{"device_id":"{device}","timestamp":"{ts}","sensor_type":"temperature","data":{{"celsius":{celsius}}}}}"#
    )
}

/// Publishes one reading and waits for its ack.
async fn send(dev: &mut Device, device: &str, n: u64, celsius: f64) {
    let payload = temperature(device, n, celsius);
    assert_eq!(
        dev.publish_all(device, vec![payload], QoS::AtLeastOnce)
            .await,
        1
    );
}

/// The kinds of the notifications delivered, in the order delivered.
fn kinds(receiver: &Receiver) -> Vec<String> {
    receiver
        .delivered()
        .iter()
        .map(|r| r.body["event"].as_str().unwrap_or("?").to_owned())
        .collect()
}

async fn delivered(receiver: &Receiver, n: usize, within: Duration) -> bool {
    eventually(within, || receiver.delivered().len() >= n).await
}

/// The alerts raised now, through the API.
async fn raised(http: SocketAddr, query: &str) -> Vec<Value> {
    let answer = api_get(http, &format!("/api/v1/alerts{query}"), READ_TOKEN).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body["alerts"].as_array().unwrap().clone()
}

async fn fires_once_resolves_once() {
    let receiver = Receiver::start(Vec::new());
    let data = tempfile::tempdir().unwrap();
    let eliot = start(data.path(), &config(&receiver.url(), &too_hot("1s")));
    let (http, db) = (eliot.http, eliot.db_path());
    let mut dev = Device::connect(eliot.addr, "hot-1");
    for n in 0..5 {
        send(&mut dev, "hot-1", n, 25.0).await;
    }
    assert_eq!(count(&db, "SELECT count(*) FROM alert_states"), 0);

    // The crossing: pending, committed with the reading (there as soon as it is acked).
    send(&mut dev, "hot-1", 5, 31.0).await;
    let pending = "SELECT count(*) FROM alert_states WHERE rule = 'too_hot' \
                   AND device_id = 'hot-1' AND phase = 'pending' AND value = 31.0";
    assert_eq!(
        count(&db, pending),
        1,
        "pending, in the reading's transaction"
    );
    // Held past `for`: fires, once.
    let crossed = Instant::now();
    let mut n = 6;
    while crossed.elapsed() < Duration::from_millis(1_500) {
        send(&mut dev, "hot-1", n, 32.0).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(delivered(&receiver, 1, Duration::from_secs(10)).await);
    let fired = &receiver.delivered()[0];
    assert_eq!(fired.body["event"], "fired", "{:?}", fired.body);
    assert_eq!(fired.body["rule"], "too_hot");
    assert_eq!(fired.body["device_id"], "hot-1");
    assert_eq!(fired.body["severity"], "critical");
    assert!(fired.signed_with(SECRET), "{:?}", fired.headers);
    assert!(!fired.signed_with("another secret"));
    let firing = raised(http, "?state=firing").await;
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert_eq!(firing[0]["severity"], "critical");

    // Above `clear`: still firing. At `clear`: resolved, with the reading.
    send(&mut dev, "hot-1", n, 29.0).await;
    assert_eq!(count(&db, "SELECT count(*) FROM alert_states"), 1);
    send(&mut dev, "hot-1", n + 1, 27.5).await;
    assert_eq!(
        count(&db, "SELECT count(*) FROM alert_states"),
        0,
        "resolved, in the reading's transaction"
    );
    let resolved = "SELECT count(*) FROM alert_events WHERE kind = 'resolved' AND value = 27.5";
    assert_eq!(count(&db, resolved), 1);
    assert!(delivered(&receiver, 2, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(kinds(&receiver), ["fired", "resolved"], "each once");
    let ids: Vec<i64> = receiver.delivered().iter().map(|r| r.event_id()).collect();
    assert!(ids[0] < ids[1], "{ids:?}");

    assert!(raised(http, "").await.is_empty());
    let history = api_get(http, "/api/v1/alerts/events", READ_TOKEN)
        .await
        .body;
    let events = history["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{history}");
    let delivered_logged = eventually_async(Duration::from_secs(5), || async {
        let history = api_get(http, "/api/v1/alerts/events", READ_TOKEN)
            .await
            .body;
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["delivery"]["state"] == "delivered")
    })
    .await;
    assert!(delivered_logged, "the delivery log says delivered");
    assert_eq!(
        metric(http, "eliot_alert_notifications_total").await,
        Some(2.0)
    );
    eliot.terminate();
}

async fn two_connections_fire_once() {
    let receiver = Receiver::start(Vec::new());
    let data = tempfile::tempdir().unwrap();
    let eliot = start(data.path(), &config(&receiver.url(), &too_hot("0s")));
    let db = eliot.db_path();
    let mut a = Device::connect(eliot.addr, "twin-a");
    let mut b = Device::connect(eliot.addr, "twin-b");
    // Both publish for the same device, at the same time, every reading above 30.
    let batch = |odd: u64| -> Vec<String> {
        (0..40)
            .map(|i| temperature("twin", 2 * i + odd, 35.0))
            .collect()
    };
    let (sent_a, sent_b) = tokio::join!(
        a.publish_all("twin", batch(0), QoS::AtLeastOnce),
        b.publish_all("twin", batch(1), QoS::AtLeastOnce)
    );
    assert_eq!((sent_a, sent_b), (40, 40));
    let fired = "SELECT count(*) FROM alert_events WHERE device_id = 'twin' AND kind = 'fired'";
    assert_eq!(count(&db, fired), 1, "one alert, however many crossings");
    assert!(delivered(&receiver, 1, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(kinds(&receiver), ["fired"]);
    eliot.terminate();
}

/// A port nothing listens on.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn kill_9_loses_and_repeats_nothing() {
    let receiver = Receiver::start(Vec::new());
    let data = tempfile::tempdir().unwrap();
    // The webhook is down: the firing waits in the outbox when Eliot is killed.
    let down = format!("http://{}/hooks/eliot", closed_port());
    let eliot = start(data.path(), &config(&down, &too_hot("0s")));
    let db = eliot.db_path();
    let mut dev = Device::connect(eliot.addr, "hot-9");
    send(&mut dev, "hot-9", 0, 35.0).await;
    let waiting = "SELECT count(*) FROM alert_deliveries WHERE delivered_at IS NULL";
    assert_eq!(
        count(&db, waiting),
        1,
        "the notification, committed with the reading"
    );
    drop(dev);
    let launch = eliot
        .kill9()
        .config(&config(&receiver.url(), &too_hot("0s")));

    // Back, with the webhook up: delivered once.
    let eliot = launch.start();
    assert!(delivered(&receiver, 1, Duration::from_secs(10)).await);
    assert_eq!(kinds(&receiver), ["fired"]);
    let since = raised(eliot.http, "?state=firing").await[0]["since"].clone();
    let mut dev = Device::connect(eliot.addr, "hot-9");
    send(&mut dev, "hot-9", 1, 36.0).await;
    let recorded = "SELECT count(*) FROM alert_deliveries WHERE delivered_at IS NOT NULL";
    assert!(
        eventually(Duration::from_secs(10), || count(&db, recorded) == 1).await,
        "the delivery is recorded"
    );
    drop(dev);

    // Killed while firing: still firing after the restart, and not notified again.
    let eliot = eliot.kill9().start();
    let mut dev = Device::connect(eliot.addr, "hot-9");
    for n in 2..6 {
        send(&mut dev, "hot-9", n, 37.0).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(kinds(&receiver), ["fired"], "no second notification");
    let firing = raised(eliot.http, "?state=firing").await;
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert_eq!(
        firing[0]["since"], since,
        "the same alert, since the same time"
    );
    send(&mut dev, "hot-9", 6, 20.0).await;
    assert!(delivered(&receiver, 2, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(kinds(&receiver), ["fired", "resolved"]);
    let fired = "SELECT count(*) FROM alert_events WHERE kind = 'fired'";
    assert_eq!(count(&db, fired), 1);
    eliot.terminate();
}

const SILENT: &str = r#"
[[alerts.rules]]
name = "silent"
kind = "absence"
status = "late"
for = "300ms"
"#;

/// A device that reports every 200 ms for 3 s.
async fn steady(dev: &mut Device, device: &str, from: u64) -> u64 {
    for n in from..from + 15 {
        send(dev, device, n, 20.0).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    from + 15
}

async fn absence() {
    let receiver = Receiver::start(Vec::new());
    let data = tempfile::tempdir().unwrap();
    let eliot = start(data.path(), &config(&receiver.url(), SILENT));
    let mut dev = Device::connect(eliot.addr, "quiet-1");
    let n = steady(&mut dev, "quiet-1", 0).await;
    // It stops (still connected): late within its rhythm, then the alert's 300 ms.
    let stopped = Instant::now();
    assert!(delivered(&receiver, 1, Duration::from_secs(5)).await);
    let took = stopped.elapsed();
    let fired = &receiver.delivered()[0];
    assert_eq!(
        (fired.body["event"].as_str(), fired.body["rule"].as_str()),
        (Some("fired"), Some("silent"))
    );
    assert!(
        took < Duration::from_secs(3),
        "alerted {took:?} after it stopped"
    );
    // Reporting again: resolved.
    send(&mut dev, "quiet-1", n, 20.0).await;
    assert!(delivered(&receiver, 2, Duration::from_secs(5)).await);
    assert_eq!(kinds(&receiver), ["fired", "resolved"]);
    let n = steady(&mut dev, "quiet-1", n + 1).await;
    assert_eq!(
        receiver.delivered().len(),
        2,
        "no alert while it reports: {n}"
    );

    // Its connection dies with Eliot (kill -9), and it does not come back: after the
    // restart it is offline, and alerted on.
    let launch = eliot.kill9();
    drop(dev);
    let restarted = Instant::now();
    let eliot = launch.start();
    assert!(delivered(&receiver, 3, Duration::from_secs(5)).await);
    assert!(restarted.elapsed() < Duration::from_secs(5));
    assert_eq!(kinds(&receiver), ["fired", "resolved", "fired"]);
    let firing = raised(eliot.http, "?rule=silent").await;
    assert_eq!(firing[0]["device_id"], "quiet-1", "{firing:?}");
    eliot.terminate();
}

async fn failing_receiver() {
    let receiver = Receiver::start(vec![503; 5]);
    let data = tempfile::tempdir().unwrap();
    let eliot = start(data.path(), &config(&receiver.url(), &too_hot("0s")));
    let mut dev = Device::connect(eliot.addr, "flaky-1");
    // Four events: fired, resolved, fired, resolved.
    for (n, celsius) in [35.0, 20.0, 35.0, 20.0].into_iter().enumerate() {
        send(&mut dev, "flaky-1", n as u64, celsius).await;
    }
    assert!(delivered(&receiver, 4, Duration::from_secs(20)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = receiver.all();
    let failed: Vec<i64> = all.iter().take(5).map(|r| r.event_id()).collect();
    assert!(
        failed.iter().all(|id| *id == failed[0]),
        "the first waits for itself: {failed:?}"
    );
    let ids: Vec<i64> = receiver.delivered().iter().map(|r| r.event_id()).collect();
    assert_eq!(ids.len(), 4, "each once: {ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    assert_eq!(ids[0], failed[0]);
    assert_eq!(kinds(&receiver), ["fired", "resolved", "fired", "resolved"]);
    assert_eq!(all.len(), 9, "5 failures and 4 deliveries");
    let attempts = "SELECT attempts FROM alert_deliveries ORDER BY event_id LIMIT 1";
    let db = eliot.db_path();
    assert!(eventually(Duration::from_secs(5), || count(&db, attempts) == 6).await);
    eliot.terminate();
}

/// `POST path` with a JSON body and the admin token.
async fn post_json(http: SocketAddr, path: &str, body: Value) -> (u16, Value) {
    send_json(http, "POST", path, body).await
}

/// `method path` with a JSON body and the admin token.
async fn send_json(
    http: SocketAddr,
    method: &'static str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let url = format!("http://{http}{path}");
    tokio::task::spawn_blocking(move || {
        let response = ureq::request(method, &url)
            .set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
            .send_json(body);
        let response = match response {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{url}: {e}"),
        };
        let status = response.status();
        (status, response.into_json().unwrap_or_default())
    })
    .await
    .unwrap()
}

async fn silences_and_acknowledgements() {
    let receiver = Receiver::start(Vec::new());
    let data = tempfile::tempdir().unwrap();
    let eliot = start(data.path(), &config(&receiver.url(), &too_hot("0s")));
    let (http, db) = (eliot.http, eliot.db_path());
    let in_an_hour = eliot_actors::format_micros(eliot_actors::now_micros() + 3_600_000_000);
    let (status, silence) = post_json(
        http,
        "/api/v1/alerts/silences",
        serde_json::json!({"device_id": "quiet-2", "until": in_an_hour, "comment": "maintenance"}),
    )
    .await;
    assert_eq!(status, 201, "{silence}");
    let (status, refused) = post_json(
        http,
        "/api/v1/alerts/silences",
        serde_json::json!({"device_id": "not a device id", "until": in_an_hour}),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("invalid_body"))
    );

    // The silenced device's alert fires, recorded and not notified; the other's is.
    let mut quiet = Device::connect(eliot.addr, "quiet-2");
    let mut loud = Device::connect(eliot.addr, "loud-2");
    send(&mut quiet, "quiet-2", 0, 35.0).await;
    send(&mut loud, "loud-2", 0, 35.0).await;
    assert!(delivered(&receiver, 1, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let notified: Vec<String> = receiver
        .delivered()
        .iter()
        .map(|r| r.body["device_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(notified, ["loud-2"]);
    let silenced = "SELECT count(*) FROM alert_events WHERE device_id = 'quiet-2' \
                    AND kind = 'fired' AND silenced = 1";
    assert_eq!(count(&db, silenced), 1);
    assert_eq!(
        raised(http, "?device_id=quiet-2").await.len(),
        1,
        "still firing"
    );

    // Acknowledged: by an admin only, once.
    let ack = "/api/v1/devices/quiet-2/alerts/too_hot/ack";
    let as_reader = api(http, "POST", ack, Some(format!("Bearer {READ_TOKEN}"))).await;
    assert_eq!(as_reader.status, 403);
    let as_admin = api(http, "POST", ack, Some(format!("Bearer {ADMIN_TOKEN}"))).await;
    assert_eq!(as_admin.status, 200, "{as_admin:?}");
    let again = api(http, "POST", ack, Some(format!("Bearer {ADMIN_TOKEN}"))).await;
    assert_eq!((again.status, again.code()), (409, "not_firing"));
    let acked = eventually_async(Duration::from_secs(5), || async {
        raised(http, "?device_id=quiet-2").await[0]["acknowledged_at"].is_string()
    })
    .await;
    assert!(acked, "the acknowledgement is written");
    let history = api_get(http, "/api/v1/alerts/events?kind=acknowledged", READ_TOKEN).await;
    assert_eq!(history.body["events"].as_array().unwrap().len(), 1);

    // The silence ends: the resolution is notified.
    let id = silence["id"].as_i64().unwrap();
    let path = format!("/api/v1/alerts/silences/{id}");
    let ended = api(http, "DELETE", &path, Some(format!("Bearer {ADMIN_TOKEN}"))).await;
    assert_eq!(ended.status, 204);
    send(&mut quiet, "quiet-2", 1, 20.0).await;
    assert!(delivered(&receiver, 2, Duration::from_secs(10)).await);
    let last = receiver.delivered()[1].body.clone();
    assert_eq!(
        (last["device_id"].as_str(), last["event"].as_str()),
        (Some("quiet-2"), Some("resolved"))
    );
    eliot.terminate();
}

async fn rules_through_the_api() {
    let receiver = Receiver::start(Vec::new());
    let data = tempfile::tempdir().unwrap();
    // One rule in the configuration; the API makes the others.
    let eliot = start(data.path(), &config(&receiver.url(), &too_hot("0s")));
    let http = eliot.http;
    let rule = |value: f64| {
        serde_json::json!({"kind": "threshold", "severity": "info", "sensor_type": "temperature",
            "field": "celsius", "op": ">", "value": value, "device_prefix": "api-"})
    };
    let path = "/api/v1/alerts/rules/api_hot";
    let (status, created) = send_json(http, "PUT", path, rule(40.0)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["source"], "api");
    let (status, refused) = send_json(http, "PUT", "/api/v1/alerts/rules/too_hot", rule(1.0)).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("rule_in_configuration"))
    );
    let missing_field =
        serde_json::json!({"kind": "threshold", "sensor_type": "t", "op": ">", "value": 1});
    let (status, _) = send_json(http, "PUT", "/api/v1/alerts/rules/broken", missing_field).await;
    assert_eq!(status, 400);
    let listed = api_get(http, "/api/v1/alerts/rules", READ_TOKEN).await.body;
    let sources: Vec<(String, String)> = listed["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rule"]["name"].as_str().unwrap().to_owned(),
                r["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        [
            ("too_hot".to_owned(), "configuration".to_owned()),
            ("api_hot".to_owned(), "api".to_owned())
        ]
    );

    // In force at once: 45 fires both rules for api-1 (too_hot too: it covers every device).
    let mut dev = Device::connect(eliot.addr, "api-1");
    send(&mut dev, "api-1", 0, 45.0).await;
    assert!(delivered(&receiver, 2, Duration::from_secs(10)).await);
    // Replaced, its bound raised: 45 no longer holds it, and its alert resolves.
    let (status, _) = send_json(http, "PUT", path, rule(50.0)).await;
    assert_eq!(status, 200);
    send(&mut dev, "api-1", 1, 45.0).await;
    assert!(delivered(&receiver, 3, Duration::from_secs(10)).await);
    let api_events = |r: &Receiver| -> Vec<String> {
        r.delivered()
            .iter()
            .filter(|n| n.body["rule"] == "api_hot")
            .map(|n| n.body["event"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(api_events(&receiver), ["fired", "resolved"]);
    send(&mut dev, "api-1", 2, 55.0).await;
    assert!(delivered(&receiver, 4, Duration::from_secs(10)).await);
    assert_eq!(api_events(&receiver), ["fired", "resolved", "fired"]);
    drop(dev);
    // Delivery is at least once: killed after the receiver's answer but before the
    // delivery was recorded, Eliot would send it again. Killed once it is recorded.
    let recorded = eventually_async(Duration::from_secs(10), || async {
        let history = api_get(http, "/api/v1/alerts/events", READ_TOKEN)
            .await
            .body;
        history["events"]
            .as_array()
            .is_some_and(|events| events.iter().all(|e| e["delivery"]["state"] == "delivered"))
    })
    .await;
    assert!(recorded, "every delivery recorded");

    // Kept across kill -9, and still judging.
    let eliot = eliot.kill9().start();
    let http = eliot.http;
    let listed = api_get(http, "/api/v1/alerts/rules", READ_TOKEN).await.body;
    assert_eq!(listed["rules"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(raised(http, "?rule=api_hot").await.len(), 1, "still firing");

    // Deleted: its alert is over, resolved and notified; a second delete finds nothing.
    let deleted = api(http, "DELETE", path, Some(format!("Bearer {ADMIN_TOKEN}"))).await;
    assert_eq!(deleted.status, 204);
    let again = api(http, "DELETE", path, Some(format!("Bearer {ADMIN_TOKEN}"))).await;
    assert_eq!(again.status, 404);
    assert!(eventually(Duration::from_secs(10), || api_events(&receiver).len() == 4).await);
    assert_eq!(
        api_events(&receiver),
        ["fired", "resolved", "fired", "resolved"]
    );
    assert!(raised(http, "?rule=api_hot").await.is_empty());
    eliot.terminate();
}

/// `count` rejected messages of one device within the window fire, once (more do not
/// fire again); with none since, the alert resolves when the window has passed, by its
/// timer. Another device's rejections count for it alone. (A dead letter adds no device
/// to the fleet: each device here is known by a reading first.)
async fn dead_letters_in_a_window() {
    let receiver = Receiver::start(Vec::new());
    let data = tempfile::tempdir().unwrap();
    let rule = r#"
[[alerts.rules]]
name = "bad_data"
kind = "dead_letters"
count = 3
window = "2s"
"#;
    let eliot = start(data.path(), &config(&receiver.url(), rule));
    let mut dev = Device::connect(eliot.addr, "junk-1");
    let mut other = Device::connect(eliot.addr, "junk-2");
    let junk = |n: usize| (0..n).map(|i| format!("not json {i}")).collect::<Vec<_>>();
    // Known to the fleet by a stored reading (a dead letter alone adds no device).
    send(&mut dev, "junk-1", 0, 20.0).await;
    send(&mut other, "junk-2", 0, 20.0).await;
    assert_eq!(
        other.publish_all("junk-2", junk(2), QoS::AtLeastOnce).await,
        2
    );
    assert_eq!(
        dev.publish_all("junk-1", junk(2), QoS::AtLeastOnce).await,
        2
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver.delivered().is_empty(),
        "2 of each: under the count"
    );
    let started = Instant::now();
    assert_eq!(
        dev.publish_all("junk-1", junk(3), QoS::AtLeastOnce).await,
        3
    );
    assert!(delivered(&receiver, 1, Duration::from_secs(10)).await);
    let fired = &receiver.delivered()[0];
    assert_eq!(
        (&fired.body["event"], &fired.body["device_id"]),
        (&Value::from("fired"), &Value::from("junk-1")),
        "{:?}",
        fired.body
    );
    assert_eq!(raised(http_of(&eliot), "?rule=bad_data").await.len(), 1);

    // No more rejections: resolved once the window passed, not before.
    assert!(delivered(&receiver, 2, Duration::from_secs(10)).await);
    assert!(
        started.elapsed() >= Duration::from_millis(1_900),
        "not before the window passed"
    );
    assert_eq!(kinds(&receiver), ["fired", "resolved"]);
    assert!(raised(http_of(&eliot), "?rule=bad_data").await.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.delivered().len(), 2, "nothing more");
    eliot.terminate();
}

fn http_of(eliot: &EliotProcess) -> SocketAddr {
    eliot.http
}

/// An `eliot` rule on a store that is full (`store.max_size`, a real SQLITE_FULL): fired
/// once, with no device, while Eliot stays up and stops acking. Killed with -9 and
/// started with room, it finds the condition cleared: resolved, notified once.
async fn eliot_itself() {
    let receiver = Receiver::start(Vec::new());
    let data = tempfile::tempdir().unwrap();
    let rule = r#"
[[alerts.rules]]
name = "store_full"
severity = "critical"
kind = "eliot"
condition = "disk_full"
"#;
    let with_room = |max_size: u64| {
        format!(
            "{}\n[store]\nmax_size = {max_size}\n",
            config(&receiver.url(), rule)
        )
    };
    let eliot = start(data.path(), &with_room(256 * 1024));
    let dev = Device::connect(eliot.addr, "big-1");
    let big = |n: u64| {
        let ts = time::OffsetDateTime::from_unix_timestamp(READING_EPOCH + n as i64).unwrap();
        let ts = ts
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        format!(
            r#"{{"device_id":"big-1","timestamp":"{ts}","sensor_type":"blob","data":{{"text":"{}"}}}}"#,
            "x".repeat(1_000)
        )
    };
    let mut n = 0;
    let filled = Instant::now();
    while receiver.delivered().is_empty() && filled.elapsed() < Duration::from_secs(60) {
        // Fire and forget: once the store is full, acks stop coming.
        let _ = dev
            .client
            .publish("devices/big-1/telemetry", QoS::AtLeastOnce, false, big(n))
            .await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        delivered(&receiver, 1, Duration::from_secs(10)).await,
        "fired"
    );
    let fired = &receiver.delivered()[0];
    assert_eq!(fired.body["rule"], "store_full", "{:?}", fired.body);
    assert_eq!(fired.body["event"], "fired");
    assert_eq!(fired.body["severity"], "critical");
    assert!(fired.body["device_id"].is_null());
    assert!(
        fired.body["summary"].as_str().unwrap().contains("full"),
        "{:?}",
        fired.body
    );
    assert!(fired.signed_with(SECRET));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(kinds(&receiver), ["fired"], "once, while it stays full");
    drop(dev);

    let eliot = eliot.kill9().config(&with_room(0)).start();
    assert!(
        delivered(&receiver, 2, Duration::from_secs(10)).await,
        "resolved"
    );
    assert_eq!(receiver.delivered()[1].body["rule"], "store_full");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(kinds(&receiver), ["fired", "resolved"]);
    eliot.terminate();
}
