//! The dashboard, against the `eliot` binary: in a real browser (headless Chromium through
//! chromedriver, `dashboard/browser.rs`), and over plain HTTP for what a browser would
//! never send (a forged form, a missing session).
//!
//! - log in with a read token; a device that publishes its first reading appears on the
//!   fleet page within 2 s, without a reload (Server-Sent Events); no console errors;
//!   log out; a screenshot of each page under `target/dashboard-screenshots/`;
//! - the session cookie is `HttpOnly` and `SameSite=Strict`; a bad token is refused (and
//!   counted against the address like the API's); a login or logout posted without this
//!   origin, or a logout without the session's CSRF token, is refused; the live feed and
//!   the pages need a session;
//! - an alert that fires shows on the alerts page within 2 s; an admin acknowledges it,
//!   silences it and ends the silence there (the API then says so each time), the
//!   history lists the events; a read token sees no button, and its forged forms are
//!   refused;
//! - a dead letter refused under one configuration is listed, viewed (its payload as
//!   escaped text; a binary one as hex) and, after a restart with a looser one, replayed
//!   from its page: accepted, stored, gone from the dead letters;
//! - the device list finds by id prefix and status, and its pages cover every device
//!   once; a bad status or page is a 400;
//! - a device's page (reached from the fleet page's link) charts each numeric field of
//!   each sensor type and gains points live as the device publishes; it shows the
//!   device's facts, last readings (markup in them as text), alerts and dead letters; a
//!   device's fields and sensor types are charted up to a bound; a bad id is a 400, an
//!   unknown one a 404;
//! - live feeds hold at most half the HTTP server's connections: past that, 503, while
//!   the API and `/health` still answer; a closed page's place is taken again.

#[path = "dashboard/browser.rs"]
mod browser;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libtest_mimic::Trial;
use rumqttc::QoS;

use crate::common::process::{own_loopback_addr, EliotProcess, Launch};
use crate::common::{reading, Device};
use crate::support::{api_get, api_tokens, trial, ADMIN_TOKEN, READ_TOKEN};
use browser::{screenshots, Browser};

pub fn tests() -> Vec<Trial> {
    vec![
        trial(
            "dashboard::log_in_see_a_new_device_appear_live_and_log_out_in_a_real_browser",
            in_a_browser,
        ),
        trial(
            "dashboard::sessions_are_strict_cookies_and_forged_or_anonymous_requests_are_refused",
            refusals,
        ),
        trial(
            "dashboard::live_feeds_take_half_the_http_connections_at_most_and_free_them",
            feeds_bounded,
        ),
        trial(
            "dashboard::an_alert_fires_on_the_alerts_page_and_an_admin_acknowledges_it",
            alert_acknowledged,
        ),
        trial(
            "dashboard::a_dead_letter_is_viewed_safely_and_replayed_after_a_configuration_change",
            dead_letter_replayed,
        ),
        trial(
            "dashboard::the_device_list_searches_by_prefix_and_status_and_pages_without_gap_or_repeat",
            device_list,
        ),
        trial(
            "dashboard::a_device_page_charts_each_numeric_field_live_and_shows_its_alerts_and_dead_letters",
            device_page,
        ),
    ]
}

fn start(dir: &std::path::Path) -> EliotProcess {
    Launch::new(dir, own_loopback_addr())
        .env("ELIOT_API_TOKENS", &api_tokens())
        .start()
}

async fn in_a_browser() {
    let data = tempfile::tempdir().unwrap();
    let eliot = start(data.path());
    let base = format!("http://{}", eliot.http);
    let addr = eliot.addr;
    // WebDriver calls block: the browser is driven on a thread of its own.
    let (base, shots) = (base.clone(), screenshots());
    let driven = tokio::task::spawn_blocking(move || {
        let Some(browser) = Browser::start("dashboard", (412, 915)) else {
            return;
        };
        browser.goto(&format!("{base}/"));
        assert!(
            browser.url().ends_with("/login"),
            "sent to log in: {}",
            browser.url()
        );
        browser.screenshot(&shots.join("login.png"));
        browser.type_into("#token", READ_TOKEN);
        browser.click("button[type=submit]");
        assert!(
            browser
                .wait_for("#live", Duration::from_secs(5), |t| t == "live")
                .is_some(),
            "the live feed is followed"
        );
        assert_eq!(browser.url(), format!("{base}/"));

        // A device appears within 2 s of its first reading, with no reload.
        let published = Instant::now();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _device = runtime.block_on(async {
            let mut device = Device::connect(addr, "greenhouse-7");
            let stored = device
                .publish_all(
                    "greenhouse-7",
                    vec![reading("greenhouse-7", 1)],
                    QoS::AtLeastOnce,
                )
                .await;
            assert_eq!(stored, 1);
            device
        });
        let row = browser.wait_for(
            "tr[data-device='greenhouse-7'] td:nth-child(2)",
            Duration::from_secs(2),
            |status| status == "online",
        );
        let took = published.elapsed();
        assert!(row.is_some(), "the new device shown within 2 s ({took:?})");
        println!("dashboard: a new device shown {took:?} after its reading was sent");
        assert_eq!(browser.text("#total").as_deref(), Some("1"));
        assert_eq!(browser.text("[data-status='online']").as_deref(), Some("1"));
        assert_eq!(browser.text("#store").as_deref(), Some("committing"));
        let noisy = browser.wait_for(
            "tr[data-noisy='greenhouse-7'] td:nth-child(2)",
            Duration::from_secs(2),
            |messages| messages == "1",
        );
        assert!(
            noisy.is_some(),
            "listed among the noisiest, with its message"
        );
        browser.screenshot(&shots.join("fleet.png"));
        browser.goto(&format!("{base}/fleet/devices"));
        assert!(browser.text("tr[data-device='greenhouse-7']").is_some());
        browser.screenshot(&shots.join("devices.png"));
        let errors = browser.console_errors();
        assert!(errors.is_empty(), "console errors: {errors:?}");

        browser.click("form[action='/logout'] button");
        let out = browser.wait_for_url("/login", Duration::from_secs(5));
        assert!(out.is_ok(), "logged out: {out:?}");
        browser.goto(&format!("{base}/"));
        let over = browser.wait_for_url("/login", Duration::from_secs(5));
        assert!(over.is_ok(), "the session is over: {over:?}");
    });
    driven.await.expect("the browser's checks pass");
    eliot.terminate();
}

/// A plain HTTP answer: status, headers that matter here, body.
struct Answer {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    body: String,
}

fn send(
    http: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    form: Option<&str>,
) -> Answer {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut request = agent.request(method, &format!("http://{http}{path}"));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let answer = match form {
        Some(form) => request
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(form),
        None => request.call(),
    };
    let answer = match answer {
        Ok(a) | Err(ureq::Error::Status(_, a)) => a,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    Answer {
        status: answer.status(),
        location: answer.header("Location").map(str::to_owned),
        set_cookie: answer.header("Set-Cookie").map(str::to_owned),
        body: answer.into_string().unwrap_or_default(),
    }
}

async fn refusals() {
    let data = tempfile::tempdir().unwrap();
    let eliot = start(data.path());
    let http = eliot.http;
    tokio::task::spawn_blocking(move || {
        let origin = format!("http://{http}");
        let same = [("Origin", origin.as_str())];

        // Nobody logged in: the pages send to the login, the feed is a 401.
        let page = send(http, "GET", "/", &[], None);
        assert_eq!(
            (page.status, page.location.as_deref()),
            (303, Some("/login"))
        );
        assert_eq!(send(http, "GET", "/live", &[], None).status, 401);
        let login = send(http, "GET", "/login", &[], None);
        assert_eq!(login.status, 200);
        assert!(login.body.contains(r#"name="token""#));

        // A bad token: refused, the page saying why; a login from another origin, or with
        // neither Origin nor Referer, is refused before the token is looked at.
        let bad = send(http, "POST", "/login", &same, Some("token=not-a-token"));
        assert_eq!(bad.status, 401);
        assert!(
            bad.body.contains("not one this Eliot knows"),
            "{}",
            bad.body
        );
        let token = format!("token={READ_TOKEN}");
        let elsewhere = [("Origin", "http://evil.example")];
        assert_eq!(
            send(http, "POST", "/login", &elsewhere, Some(&token)).status,
            403
        );
        assert_eq!(send(http, "POST", "/login", &[], Some(&token)).status, 403);
        let referer = format!("http://{http}/login");
        let by_referer = send(
            http,
            "POST",
            "/login",
            &[("Referer", &referer)],
            Some(&token),
        );
        assert_eq!(by_referer.status, 303, "a Referer of this origin will do");

        // A good one: a strict, HttpOnly cookie.
        let good = send(http, "POST", "/login", &same, Some(&token));
        assert_eq!((good.status, good.location.as_deref()), (303, Some("/")));
        let cookie = good.set_cookie.expect("a session cookie");
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(flag), "{cookie}");
        }
        let session = cookie.split(';').next().unwrap().to_owned();
        let with = [("Cookie", session.as_str())];
        let page = send(http, "GET", "/", &with, None);
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Devices, last heard first"));
        let csrf = page
            .body
            .split(r#"name="csrf" value=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the logout form carries the CSRF token")
            .to_owned();

        // Logout: without the CSRF token, or from elsewhere, refused; with both, done.
        let with_origin = [("Cookie", session.as_str()), ("Origin", origin.as_str())];
        let forged = send(http, "POST", "/logout", &with_origin, Some("csrf=guess"));
        assert_eq!(forged.status, 403);
        let real = format!("csrf={csrf}");
        let cross = [
            ("Cookie", session.as_str()),
            ("Origin", "http://evil.example"),
        ];
        assert_eq!(
            send(http, "POST", "/logout", &cross, Some(&real)).status,
            403
        );
        assert_eq!(
            send(http, "GET", "/", &with, None).status,
            200,
            "still logged in"
        );
        let out = send(http, "POST", "/logout", &with_origin, Some(&real));
        assert_eq!((out.status, out.location.as_deref()), (303, Some("/login")));
        assert!(out.set_cookie.unwrap_or_default().contains("Max-Age=0"));
        assert_eq!(
            send(http, "GET", "/", &with, None).status,
            303,
            "the session is over"
        );
        assert_eq!(send(http, "GET", "/live", &with, None).status, 401);
    })
    .await
    .expect("the checks pass");
    eliot.terminate();
}

/// `GET /live` on a connection of its own: the status line, and the connection, still
/// open, once its first event came (or at once if refused).
fn open_feed(http: SocketAddr) -> (String, std::net::TcpStream) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(http).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET /live HTTP/1.1\r\nHost: {http}\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap_or(0);
        seen.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&seen);
        let status = text.lines().next().unwrap_or_default().to_owned();
        if n == 0
            || text.contains("event: fleet")
            || (text.contains("\r\n\r\n") && !status.contains(" 200 "))
        {
            return (status, stream);
        }
    }
}

async fn feeds_bounded() {
    let data = tempfile::tempdir().unwrap();
    // No tokens: on loopback, the dashboard asks no login. 8 connections: 4 feeds at most.
    let eliot = Launch::new(data.path(), own_loopback_addr())
        .config("[http]\nworkers = 1\nmax_connections = 8\n")
        .start();
    let http = eliot.http;
    tokio::task::spawn_blocking(move || {
        let mut open: Vec<_> = (0..4).map(|_| open_feed(http)).collect();
        for (status, _) in &open {
            assert!(status.contains(" 200 "), "{status}");
        }
        let (refused, _) = open_feed(http);
        assert!(refused.contains(" 503 "), "the fifth feed: {refused}");
        assert_eq!(send(http, "GET", "/health", &[], None).status, 200);
        assert_eq!(send(http, "GET", "/api/v1/devices", &[], None).status, 200);

        // A page closed: the server sees it at the feed's next event, and its place is free.
        drop(open.pop());
        let started = Instant::now();
        let again = loop {
            let (status, stream) = open_feed(http);
            if status.contains(" 200 ") || started.elapsed() > Duration::from_secs(5) {
                break (status, stream);
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(again.0.contains(" 200 "), "the freed place: {}", again.0);
    })
    .await
    .expect("the checks pass");
    eliot.terminate();
}

const TOO_HOT: &str = r#"
[[alerts.rules]]
name = "too_hot"
severity = "critical"
kind = "threshold"
sensor_type = "temperature"
field = "celsius"
op = ">"
value = 30.0
"#;

/// Eliot with API tokens and the rule `too_hot`.
fn start_too_hot(dir: &std::path::Path) -> EliotProcess {
    Launch::new(dir, own_loopback_addr())
        .config(TOO_HOT)
        .env("ELIOT_API_TOKENS", &api_tokens())
        .start()
}

/// A session of `token`'s role, over plain HTTP: its cookie and its CSRF token (read from
/// the alerts page's logout form).
fn session_of(http: SocketAddr, token: &str) -> (String, String) {
    let origin = format!("http://{http}");
    let login = send(
        http,
        "POST",
        "/login",
        &[("Origin", &origin)],
        Some(&format!("token={token}")),
    );
    let cookie = login.set_cookie.expect("a session");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = send(http, "GET", "/alerts", &[("Cookie", &cookie)], None);
    let csrf = page
        .body
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token")
        .to_owned();
    (cookie, csrf)
}

async fn alert_acknowledged() {
    let data = tempfile::tempdir().unwrap();
    let eliot = start_too_hot(data.path());
    let (http, addr) = (eliot.http, eliot.addr);
    let base = format!("http://{http}");
    let shots = screenshots();
    let row = "tr[data-alert='too_hot/hot-1']";
    let driven = tokio::task::spawn_blocking(move || {
        let Some(browser) = Browser::start("dashboard alerts", (412, 915)) else {
            return;
        };
        browser.log_in(&base, ADMIN_TOKEN);
        browser.goto(&format!("{base}/alerts"));
        assert!(browser
            .wait_for("#live", Duration::from_secs(5), |t| t == "live")
            .is_some());

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sent = Instant::now();
        let _device = runtime.block_on(async {
            let mut device = Device::connect(addr, "hot-1");
            let hot = r#"{"device_id":"hot-1","timestamp":"2025-06-05T14:30:00Z","sensor_type":"temperature","data":{"celsius":35.5}}"#;
            assert_eq!(device.publish_all("hot-1", vec![hot.to_owned()], QoS::AtLeastOnce).await, 1);
            device
        });
        let firing = browser.wait_for(
            &format!("{row} td:nth-child(3)"),
            Duration::from_secs(2),
            |s| s == "firing",
        );
        assert!(
            firing.is_some(),
            "the alert shown firing within 2 s ({:?})",
            sent.elapsed()
        );
        println!(
            "dashboard: an alert shown firing {:?} after its reading was sent",
            sent.elapsed()
        );
        browser.screenshot(&shots.join("alerts-firing.png"));

        // Each form answers with /alerts again, the address it was sent from.
        browser.submit(&format!("{row} button"));
        let acked = browser.wait_for(
            &format!("{row} td:nth-child(6)"),
            Duration::from_secs(5),
            |s| s == "acknowledged",
        );
        assert!(acked.is_some(), "acknowledged on the page");
        browser.screenshot(&shots.join("alerts-acknowledged.png"));

        // Silenced from the page, for the form's first duration (an hour): listed, the
        // API says so; the history holds the events so far, newest first.
        browser.type_into("#silence-rule", "too_hot");
        browser.type_into("#silence-device", "hot-1");
        browser.type_into("#silence-comment", "<b>maintenance</b>");
        browser.submit("#silence button");
        let silence = browser.wait_for("tr[data-silence]", Duration::from_secs(5), |t| {
            t.contains("too_hot") && t.contains("hot-1")
        });
        assert!(
            silence.is_some(),
            "the silence listed: {:?} at {}",
            browser.text("main"),
            browser.url()
        );
        // Its comment (a column a phone-sized page hides) is text, never markup.
        assert_eq!(browser.count("tr[data-silence] b"), 0);
        let silences: serde_json::Value = runtime.block_on(async {
            api_get(http, "/api/v1/alerts/silences", READ_TOKEN)
                .await
                .body
        });
        assert_eq!(
            silences["silences"][0]["comment"], "<b>maintenance</b>",
            "{silences}"
        );
        let until = silences["silences"][0]["until"]
            .as_str()
            .unwrap_or_default();
        let hour = eliot_actors::rfc3339_micros(until).unwrap() - eliot_actors::now_micros();
        assert!(
            (3_500_000_000..=3_600_000_000).contains(&hour),
            "an hour from now: {until}"
        );
        let kinds = browser.text("#alert-events").unwrap_or_default();
        let (acked, fired) = (kinds.find("acknowledged"), kinds.find("fired"));
        assert!(
            acked.is_some() && fired.is_some() && acked < fired,
            "the history, newest first: {kinds}"
        );
        browser.screenshot(&shots.join("alerts-silenced.png"));
        browser.submit("tr[data-silence] button");
        let ended = eventually_blocking(|| browser.count("tr[data-silence]") == 0);
        assert!(ended, "the silence ended");
        let silences: serde_json::Value = runtime.block_on(async {
            api_get(http, "/api/v1/alerts/silences", READ_TOKEN)
                .await
                .body
        });
        assert_eq!(silences["silences"], serde_json::json!([]), "{silences}");
        let errors = browser.console_errors();
        assert!(errors.is_empty(), "console errors: {errors:?}");
    });
    driven.await.expect("the browser's checks pass");
    if Browser::available() {
        let alerts = api_get(http, "/api/v1/alerts?rule=too_hot", READ_TOKEN)
            .await
            .body;
        assert!(
            !alerts["alerts"][0]["acknowledged_at"].is_null(),
            "{alerts}"
        );
    }

    // A read token: no button, and its forged form is refused.
    tokio::task::spawn_blocking(move || {
        let (cookie, csrf) = session_of(http, READ_TOKEN);
        let page = send(http, "GET", "/alerts", &[("Cookie", &cookie)], None);
        assert!(
            !page.body.contains(r#"action="/alerts/ack""#),
            "no button for a read token"
        );
        let origin = format!("http://{http}");
        let form = format!("rule=too_hot&device_id=hot-1&csrf={csrf}");
        let forged = send(
            http,
            "POST",
            "/alerts/ack",
            &[("Cookie", &cookie), ("Origin", &origin)],
            Some(&form),
        );
        assert_eq!(forged.status, 403);
        assert!(forged.body.contains("admin"), "{}", forged.body);
        assert!(!page.body.contains(r#"action="/alerts/silence""#));
        for (path, form) in [
            ("/alerts/silence", format!("hours=1&csrf={csrf}")),
            ("/alerts/unsilence", format!("id=1&csrf={csrf}")),
        ] {
            let forged = send(
                http,
                "POST",
                path,
                &[("Cookie", &cookie), ("Origin", &origin)],
                Some(&form),
            );
            assert_eq!(forged.status, 403, "{path}");
        }
    })
    .await
    .expect("the checks pass");
    eliot.terminate();
}

/// A reading of `device` with a string of `len` bytes in its data (and markup in it, which
/// the page must show as text).
fn long_reading(device: &str, len: usize) -> String {
    reading(device, 1).replace(
        "\"celsius\":",
        &format!("\"note\":\"<b>{}</b>\",\"celsius\":", "x".repeat(len)),
    )
}

async fn dead_letter_replayed() {
    let data = tempfile::tempdir().unwrap();
    let launch = Launch::new(data.path(), own_loopback_addr())
        .config("[ingest]\nmax_string_len = 1024\n")
        .env("ELIOT_API_TOKENS", &api_tokens());
    let eliot = launch.start();
    let mut device = Device::connect(eliot.addr, "rp-1");
    let sent = vec![long_reading("rp-1", 2000)];
    assert_eq!(device.publish_all("rp-1", sent, QoS::AtLeastOnce).await, 1);
    let binary = Device::connect(eliot.addr, "rp-2");
    binary
        .client
        .publish(
            "devices/rp-2/telemetry",
            QoS::AtLeastOnce,
            false,
            vec![0xff, 0x00, 0xfe],
        )
        .await
        .unwrap();
    let http = eliot.http;
    let letters = crate::common::eventually_async(Duration::from_secs(10), || async {
        api_get(http, "/api/v1/dead-letters?order=asc", READ_TOKEN)
            .await
            .body["dead_letters"]
            .as_array()
            .is_some_and(|l| l.len() == 2)
    })
    .await;
    assert!(letters, "two dead letters");
    drop((device, binary));
    let listing = api_get(http, "/api/v1/dead-letters?order=asc", READ_TOKEN)
        .await
        .body;
    let (text_id, binary_id) = (
        listing["dead_letters"][0]["id"].as_i64().unwrap(),
        listing["dead_letters"][1]["id"].as_i64().unwrap(),
    );

    // Restarted with room for the string: the first is valid now.
    eliot.terminate();
    let eliot = launch.config("[ingest]\nmax_string_len = 4096\n").start();
    let http = eliot.http;
    let base = format!("http://{http}");
    let shots = screenshots();
    let driven = tokio::task::spawn_blocking(move || {
        // A binary payload is shown as hex (plain HTTP: the session of an admin).
        let (cookie, _) = session_of(http, ADMIN_TOKEN);
        let page = send(
            http,
            "GET",
            &format!("/dead-letters/{binary_id}"),
            &[("Cookie", &cookie)],
            None,
        );
        assert!(page.body.contains("ff 00 fe"), "{}", page.body);

        let Some(browser) = Browser::start("dashboard dead letters", (412, 915)) else {
            return;
        };
        browser.log_in(&base, ADMIN_TOKEN);
        browser.goto(&format!("{base}/dead-letters"));
        let row = format!("tr[data-dead-letter='{text_id}']");
        assert!(browser.text(&row).is_some(), "listed");
        browser.screenshot(&shots.join("dead-letters.png"));
        browser.click(&format!("{row} a"));
        assert!(browser
            .wait_for_url(&format!("/dead-letters/{text_id}"), Duration::from_secs(5))
            .is_ok());
        let payload = browser.text("#payload").unwrap_or_default();
        assert!(
            payload.contains("<b>xxxx"),
            "the markup shown as text: {payload}"
        );
        assert!(browser.text("#reason").unwrap_or_default().contains("1024"));
        browser.screenshot(&shots.join("dead-letter.png"));
        browser.click("form[action='/dead-letters/replay'] button");
        let outcome = browser.wait_for("#outcome", Duration::from_secs(10), |t| !t.is_empty());
        assert!(
            outcome
                .as_deref()
                .is_some_and(|o| o.starts_with("accepted")),
            "{outcome:?}"
        );
        browser.screenshot(&shots.join("dead-letter-replayed.png"));
        let errors = browser.console_errors();
        assert!(errors.is_empty(), "console errors: {errors:?}");
    });
    driven.await.expect("the browser's checks pass");
    if Browser::available() {
        let gone = api_get(http, &format!("/api/v1/dead-letters/{text_id}"), READ_TOKEN).await;
        assert_eq!(gone.status, 404, "it left the dead letters");
        let stored = api_get(http, "/api/v1/devices/rp-1/readings", READ_TOKEN)
            .await
            .body;
        assert_eq!(
            stored["readings"].as_array().map(Vec::len),
            Some(1),
            "{stored}"
        );
    }
    eliot.terminate();
}

/// The device ids a page of the device list shows, and its next page's link.
fn listed(body: &str) -> (Vec<String>, Option<String>) {
    let ids = body
        .split(r#"<tr data-device=""#)
        .skip(1)
        .filter_map(|row| row.split('"').next())
        .map(str::to_owned)
        .collect();
    let next = body
        .split(r#"<a id="next" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&"));
    (ids, next)
}

async fn device_list() {
    let data = tempfile::tempdir().unwrap();
    let eliot = start(data.path());
    let mut devices = Vec::new();
    for i in 0..60 {
        let id = format!("gh-{i:03}");
        let mut device = Device::connect(eliot.addr, &id);
        assert_eq!(
            device
                .publish_all(&id, vec![reading(&id, 1)], QoS::AtLeastOnce)
                .await,
            1
        );
        devices.push(device);
    }
    let mut other = Device::connect(eliot.addr, "zz-1");
    assert_eq!(
        other
            .publish_all("zz-1", vec![reading("zz-1", 1)], QoS::AtLeastOnce)
            .await,
        1
    );
    other.disconnect().await;
    let http = eliot.http;
    tokio::task::spawn_blocking(move || {
        let (cookie, _) = session_of(http, READ_TOKEN);
        let with = [("Cookie", cookie.as_str())];
        // Every gh- device once, over pages of 50, in id order.
        let (mut seen, mut path) = (Vec::new(), "/fleet/devices?q=gh-".to_owned());
        loop {
            let page = send(http, "GET", &path, &with, None);
            assert_eq!(page.status, 200, "{}", page.body);
            let (ids, next) = listed(&page.body);
            seen.extend(ids);
            match next {
                Some(next) => path = next,
                None => break,
            }
        }
        let wanted: Vec<String> = (0..60).map(|i| format!("gh-{i:03}")).collect();
        assert_eq!(seen, wanted, "every device once, in order");
        // zz-1 disconnected: offline, the only one.
        let offline = eventually_blocking(|| {
            let page = send(http, "GET", "/fleet/devices?status=offline", &with, None);
            listed(&page.body).0 == ["zz-1"]
        });
        assert!(offline, "the offline one found by status");
        for bad in [
            "/fleet/devices?status=asleep",
            "/fleet/devices?after=nonsense",
        ] {
            assert_eq!(send(http, "GET", bad, &with, None).status, 400, "{bad}");
        }
        assert_eq!(
            send(http, "GET", "/fleet/devices", &[], None).status,
            303,
            "needs a session"
        );
    })
    .await
    .expect("the checks pass");
    drop(devices);
    eliot.terminate();
}

fn eventually_blocking(ok: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A reading of `device` at second `n` after the epoch, of `sensor_type`, with `data`.
fn reading_of(device: &str, n: i64, sensor_type: &str, data: &str) -> String {
    let ts = eliot_actors::format_micros((crate::common::READING_EPOCH + n) * 1_000_000);
    format!(
        r#"{{"device_id":"{device}","timestamp":"{ts}","sensor_type":"{sensor_type}","data":{data}}}"#
    )
}

async fn device_page() {
    let data = tempfile::tempdir().unwrap();
    let eliot = start_too_hot(data.path());
    let (http, addr) = (eliot.http, eliot.addr);
    // Five readings, one hot (the rule fires), nested fields in another sensor type, a
    // string with markup, twelve numeric fields in a third, a large one, and a dead
    // letter.
    let mut device = Device::connect(addr, "chart-1");
    let mut sent: Vec<String> = (1..=4).map(|n| reading("chart-1", n)).collect();
    sent.push(reading("chart-1", 35));
    sent.push(reading_of(
        "chart-1",
        40,
        "air",
        r#"{"rh":41.5,"wind":{"speed":3.5,"dir":"N"},"note":"<img src=x id=injected>"}"#,
    ));
    let wide: Vec<String> = (0..12).map(|i| format!(r#""f{i:02}":{i}"#)).collect();
    sent.push(reading_of(
        "chart-1",
        41,
        "wide",
        &format!("{{{}}}", wide.join(",")),
    ));
    // 20 KB of data: valid, stored, too large for the page to show.
    let big: Vec<String> = (0..20)
        .map(|i| format!(r#""s{i:02}":"{}""#, "x".repeat(1000)))
        .collect();
    sent.push(reading_of(
        "chart-1",
        42,
        "big",
        &format!("{{{}}}", big.join(",")),
    ));
    assert_eq!(
        device.publish_all("chart-1", sent, QoS::AtLeastOnce).await,
        8
    );
    device
        .client
        .publish(
            "devices/chart-1/telemetry",
            QoS::AtLeastOnce,
            false,
            vec![0xff, 0xfe],
        )
        .await
        .unwrap();
    let dead = crate::common::eventually_async(Duration::from_secs(10), || async {
        api_get(http, "/api/v1/devices/chart-1", READ_TOKEN)
            .await
            .body["counts"]["dead_letters"]
            == 1
    })
    .await;
    assert!(dead, "the dead letter counted");

    let base = format!("http://{http}");
    let shots = screenshots();
    let driven = tokio::task::spawn_blocking(move || {
        // What a browser never asks: a bad id, an unknown device, a feed without session.
        let (cookie, _) = session_of(http, READ_TOKEN);
        let with = [("Cookie", cookie.as_str())];
        let bad = send(http, "GET", "/fleet/devices/bad%24id", &with, None);
        assert_eq!(bad.status, 400, "{}", bad.body);
        assert_eq!(
            send(http, "GET", "/fleet/devices/nobody", &with, None).status,
            404
        );
        assert_eq!(
            send(http, "GET", "/live/devices/chart-1", &[], None).status,
            401
        );
        assert_eq!(
            send(http, "GET", "/fleet/devices/chart-1", &[], None).status,
            303
        );

        let browser = Browser::start("dashboard device", (412, 915))?;
        browser.log_in(&base, READ_TOKEN);
        // Reached by the fleet page's link (followed by its address: the live feed may
        // rebuild the table under a click).
        let link = browser.attribute("tr[data-device='chart-1'] a", "href");
        assert_eq!(link.as_deref(), Some("/fleet/devices/chart-1"));
        browser.goto(&format!("{base}/fleet/devices/chart-1"));
        assert!(browser
            .wait_for_url("/fleet/devices/chart-1", Duration::from_secs(5))
            .is_ok());
        let temperature = "figure[data-sensor-type='temperature']";
        let charted =
            browser.wait_for_attribute(temperature, "data-points", Duration::from_secs(5), |n| {
                n == "5"
            });
        assert!(
            charted.is_some(),
            "the five temperatures charted: {charted:?}"
        );
        assert_eq!(browser.count(&format!("{temperature} canvas")), 1, "drawn");
        // Nested numeric fields are lines; a string is not. Twelve fields: eight lines.
        let air = "figure[data-sensor-type='air']";
        assert_eq!(browser.attribute(air, "data-points").as_deref(), Some("1"));
        let legend = browser.text(air).unwrap_or_default();
        assert!(
            legend.contains("rh") && legend.contains("wind.speed"),
            "{legend}"
        );
        assert!(!legend.contains("wind.dir"), "{legend}");
        let lines = browser.count("figure[data-sensor-type='wide'] .u-series");
        assert_eq!(lines, 1 + 8, "the time and eight fields");
        // Markup a device sent is text.
        let listed = browser.text("#readings").unwrap_or_default();
        assert!(listed.contains("<img src=x id=injected>"), "{listed}");
        assert_eq!(browser.count("#injected"), 0, "never markup");
        assert!(
            listed.contains("bytes: too large to show here"),
            "a large reading by its size: {listed}"
        );
        assert!(browser
            .text("#device-alerts")
            .unwrap_or_default()
            .contains("too_hot"));
        assert!(browser
            .text("#device-alert-events")
            .unwrap_or_default()
            .contains("fired"));
        assert_eq!(
            browser.count("#device-dead-letters a"),
            1,
            "its dead letter"
        );
        assert_eq!(
            browser.text("[data-fact='status']").as_deref(),
            Some("online")
        );
        Some(browser)
    })
    .await
    .expect("the browser's checks pass");

    // The chart gains the points the device publishes now (after its newest reading: the
    // feed follows the readings' order), each within 2 s.
    if let Some(browser) = driven {
        let mut slowest = Duration::ZERO;
        for n in 50..=52 {
            let published = Instant::now();
            let one = vec![reading("chart-1", n)];
            assert_eq!(
                device.publish_all("chart-1", one, QoS::AtLeastOnce).await,
                1
            );
            let want = (n - 44).to_string();
            let browser_ref = &browser;
            let shown = tokio::task::block_in_place(|| {
                browser_ref.wait_for_attribute(
                    "figure[data-sensor-type='temperature']",
                    "data-points",
                    Duration::from_secs(2),
                    |points| points == want,
                )
            });
            assert!(shown.is_some(), "point {n} charted within 2 s");
            slowest = slowest.max(published.elapsed());
        }
        println!(
            "dashboard: a device's new reading charted {slowest:?} after it was sent, at most"
        );
        let readings = browser.wait_for("[data-fact='readings']", Duration::from_secs(3), |n| {
            n == "11"
        });
        assert!(readings.is_some(), "its facts live: {readings:?}");
        browser.screenshot(&shots.join("device.png"));
        browser.scroll_to("#readings");
        browser.screenshot(&shots.join("device-readings.png"));
        let errors = browser.console_errors();
        assert!(errors.is_empty(), "console errors: {errors:?}");
    }
    drop(device);
    eliot.terminate();
}
