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
//! - an alert that fires shows on the alerts page within 2 s; an admin acknowledges it
//!   there (the API then says so); a read token sees no button, and its forged form is
//!   refused;
//! - a dead letter refused under one configuration is listed, viewed (its payload as
//!   escaped text; a binary one as hex) and, after a restart with a looser one, replayed
//!   from its page: accepted, stored, gone from the dead letters;
//! - the device list finds by id prefix and status, and its pages cover every device
//!   once; a bad status or page is a 400;
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
        browser.screenshot(&shots.join("fleet.png"));
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
    let eliot = Launch::new(data.path(), own_loopback_addr())
        .config(TOO_HOT)
        .env("ELIOT_API_TOKENS", &api_tokens())
        .start();
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

        browser.click(&format!("{row} button"));
        assert!(browser
            .wait_for_url("/alerts", Duration::from_secs(5))
            .is_ok());
        let acked = browser.wait_for(
            &format!("{row} td:nth-child(6)"),
            Duration::from_secs(5),
            |s| s == "acknowledged",
        );
        assert!(acked.is_some(), "acknowledged on the page");
        browser.screenshot(&shots.join("alerts-acknowledged.png"));
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
