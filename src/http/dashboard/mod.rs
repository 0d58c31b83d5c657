//! The dashboard, served by Eliot at `/` on the HTTP server: server-rendered pages, a
//! little JavaScript of its own (no build step, embedded in the binary), live updates
//! over Server-Sent Events.
//!
//! - Behind the API's tokens: `/login` takes a token (`read` or `admin`) and sets an
//!   `HttpOnly`, `SameSite=Strict` session cookie (`sessions`: in memory, bounded, 12 h).
//!   A bad token counts against the address's allowance as on the API (429 past it).
//!   Without tokens (the API then serves a loopback address only) no login is asked.
//! - Every form that changes something is checked twice: it must come from this origin
//!   (`Origin`, else `Referer`, naming this host), and carry the session's CSRF token.
//! - Pages (`pages`): the device list (an id prefix, a status, a page at a time), the
//!   fleet at a glance, and the alerts raised now (an admin
//!   acknowledges them there), both kept live by `/live` (`live`); the dead letters, one
//!   whole with its payload shown safely, and their replay (an admin's).
//! - Every page is sent with a Content-Security-Policy that allows only this origin's
//!   scripts and styles (none inline), no framing, and no caching.

mod alerts;
mod device;
mod live;
mod pages;
mod sessions;

use std::net::IpAddr;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use eliot_actors::{
    AlertsHandle, DeadLetterQuery, DeviceCursor, DeviceQuery, DeviceSort, DeviceStatus,
    FleetHandle, HealthProbe, Metrics, Reader, ReplayOutcome, Replayer,
};
use futures_util::stream;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::v1::tokens::Role;
use super::v1::{Gate, V1State};
pub use live::Feed;
use sessions::{Session, Sessions, COOKIE, LIFETIME};

/// Every asset, embedded: its path under `/assets/`, its type, its text. The vendored
/// ones (`assets/vendor/README.md` says from where) come with their licence.
const ASSETS: [(&str, &str, &str); 7] = [
    ("dashboard.js", JS, include_str!("assets/dashboard.js")),
    ("device.js", JS, include_str!("assets/device.js")),
    ("dashboard.css", CSS, include_str!("assets/dashboard.css")),
    ("icon.svg", "image/svg+xml", include_str!("assets/icon.svg")),
    (
        "vendor/uPlot.iife.min.js",
        JS,
        include_str!("assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "vendor/uPlot.min.css",
        CSS,
        include_str!("assets/vendor/uPlot.min.css"),
    ),
    (
        "vendor/uPlot.LICENSE",
        "text/plain; charset=utf-8",
        include_str!("assets/vendor/uPlot.LICENSE"),
    ),
];
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; \
     base-uri 'none'";

/// What the dashboard's handlers share.
#[derive(Clone)]
pub struct Dashboard {
    gate: Gate,
    sessions: Sessions,
    feed: Feed,
    fleet: Option<FleetHandle>,
    alerts: Option<AlertsHandle>,
    reader: Reader,
    replayer: Replayer,
    /// Turns of the device pages' feeds at the store (`device::READS_AT_ONCE`).
    device_reads: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Dashboard {
    /// What it shows comes from the API's own handles (`v1`), and who may see it from
    /// the API's `gate`.
    pub fn new(
        gate: Gate,
        v1: &V1State,
        metrics: std::sync::Arc<Metrics>,
        probe: HealthProbe,
        http: &crate::http::HttpSettings,
    ) -> Dashboard {
        // Half the server's connections at most hold a live feed: the rest answer the API.
        let max_feeds = (http.workers * http.max_connections / 2).max(1);
        let (fleet, alerts) = (v1.fleet.clone(), v1.alerts.clone());
        Dashboard {
            gate,
            sessions: Sessions::default(),
            feed: Feed::new(fleet.clone(), alerts.clone(), metrics, probe, max_feeds),
            fleet,
            alerts,
            reader: v1.reader.clone(),
            replayer: v1.replayer.clone(),
            device_reads: std::sync::Arc::new(tokio::sync::Semaphore::new(device::READS_AT_ONCE)),
        }
    }

    /// The CSRF token of the viewer, if logged in; and whether it may act (an admin, or
    /// anyone without login), with the token its forms carry ("" without login).
    fn acts(viewer: &Option<(String, Session)>) -> (Option<&str>, Option<&str>) {
        let csrf = viewer.as_ref().map(|(_, s)| s.csrf.as_str());
        let may = match viewer {
            None => Some(""),
            Some((_, s)) if s.role == Role::Admin => Some(s.csrf.as_str()),
            Some(_) => None,
        };
        (csrf, may)
    }

    /// Who is looking: `Some(None)` without tokens (no login), `Some(Some(..))` a live
    /// session, `None` nobody logged in.
    fn viewer(&self, request: &HttpRequest) -> Option<Option<(String, Session)>> {
        if self.gate.open() {
            return Some(None);
        }
        let id = session_cookie(request)?;
        let session = self.sessions.get(&id)?;
        Some(Some((id, session)))
    }
}

pub fn configure(cfg: &mut web::ServiceConfig, dashboard: Dashboard) {
    let only = |allow: &'static str| {
        web::to(move || async move {
            HttpResponse::MethodNotAllowed()
                .insert_header((header::ALLOW, allow))
                .finish()
        })
    };
    cfg.app_data(web::Data::new(dashboard))
        .service(
            web::resource("/")
                .route(web::get().to(fleet_page))
                .default_service(only("GET")),
        )
        .service(
            web::resource("/login")
                .route(web::get().to(login_page))
                .route(web::post().to(login))
                .default_service(only("GET, POST")),
        )
        .service(
            web::resource("/alerts")
                .route(web::get().to(alerts::page))
                .default_service(only("GET")),
        )
        .service(
            web::resource("/alerts/ack")
                .route(web::post().to(alerts::acknowledge))
                .default_service(only("POST")),
        )
        .service(
            web::resource("/alerts/silence")
                .route(web::post().to(alerts::silence))
                .default_service(only("POST")),
        )
        .service(
            web::resource("/alerts/unsilence")
                .route(web::post().to(alerts::unsilence))
                .default_service(only("POST")),
        )
        .service(
            web::resource("/fleet/devices")
                .route(web::get().to(devices_page))
                .default_service(only("GET")),
        )
        .service(
            web::resource("/dead-letters")
                .route(web::get().to(dead_letters_page))
                .default_service(only("GET")),
        )
        .service(
            web::resource("/dead-letters/replay")
                .route(web::post().to(replay))
                .default_service(only("POST")),
        )
        .service(
            web::resource("/dead-letters/{id}")
                .route(web::get().to(dead_letter_page))
                .default_service(only("GET")),
        )
        .service(
            web::resource("/logout")
                .route(web::post().to(logout))
                .default_service(only("POST")),
        )
        .service(
            web::resource("/live")
                .route(web::get().to(live_feed))
                .default_service(only("GET")),
        )
        .service(
            web::resource("/fleet/devices/{id}")
                .route(web::get().to(device::page))
                .default_service(only("GET")),
        )
        .service(
            web::resource("/live/devices/{id}")
                .route(web::get().to(device::feed))
                .default_service(only("GET")),
        );
    for (path, content_type, body) in ASSETS {
        cfg.service(
            web::resource(format!("/assets/{path}"))
                .route(web::get().to(move || async move { asset(content_type, body) })),
        );
    }
}

/// The session cookie's value, from the `Cookie` header.
fn session_cookie(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.to_owned())
        })
}

/// `Set-Cookie` for the session `id` (`None`: its removal). Not `Secure`: Eliot serves
/// plain HTTP (put a TLS proxy in front to serve it off the machine).
fn set_cookie(id: Option<&str>) -> (header::HeaderName, String) {
    let (value, age) = match id {
        Some(id) => (id, LIFETIME.as_secs()),
        None => ("", 0),
    };
    (
        header::SET_COOKIE,
        format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}"),
    )
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// A form posted from a page of this origin: its `Origin` (or, without one, its
/// `Referer`) names the host the request was sent to. A browser always sends one of them
/// with a form's POST; a page of another site cannot make it name this host.
fn same_origin(request: &HttpRequest) -> bool {
    let Some(host) = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let from = |name: header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let names_host = |url: &str| {
        ["http://", "https://"].iter().any(|scheme| {
            url.strip_prefix(scheme)
                .and_then(|rest| rest.strip_prefix(host))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    };
    match (from(header::ORIGIN), from(header::REFERER)) {
        (Some(origin), _) => names_host(&origin),
        (None, Some(referer)) => names_host(&referer),
        (None, None) => false,
    }
}

async fn fleet_page(request: HttpRequest, dashboard: web::Data<Dashboard>) -> HttpResponse {
    let Some(viewer) = dashboard.viewer(&request) else {
        return see_other("/login");
    };
    let snapshot = dashboard.feed.snapshot().await;
    let csrf = viewer.as_ref().map(|(_, s)| s.csrf.as_str());
    let body = pages::fleet(&snapshot, csrf);
    html(StatusCode::OK, body)
}

/// Devices a page of the list shows.
const DEVICES_SHOWN: usize = 50;

#[derive(Deserialize)]
struct DeviceListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    after: Option<String>,
}

/// The device list: by id, filtered by an id prefix and a status, a page at a time.
async fn devices_page(
    request: HttpRequest,
    dashboard: web::Data<Dashboard>,
    query: web::Query<DeviceListQuery>,
) -> HttpResponse {
    let Some(viewer) = dashboard.viewer(&request) else {
        return see_other("/login");
    };
    let Some(fleet) = &dashboard.fleet else {
        return unavailable("the fleet is off: no devices to list");
    };
    let bad = |why: &str| html(StatusCode::BAD_REQUEST, pages::login(Some(why)));
    let prefix = query.q.trim();
    if prefix.len() > 64 {
        return bad("an id prefix has 64 bytes at most");
    }
    let status = match query.status.as_str() {
        "" => None,
        text => match DeviceStatus::parse(text) {
            Some(status) => Some(status),
            None => return bad("status: online, late, offline or quarantined"),
        },
    };
    let after = match query.after.as_deref().map(DeviceCursor::decode).transpose() {
        Ok(after) => after,
        Err(_) => return bad("not a page of this list"),
    };
    let asked = DeviceQuery {
        status,
        id_prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
        sort: DeviceSort::Id,
        after,
        limit: DEVICES_SHOWN,
        ..DeviceQuery::default()
    };
    let page = match fleet.list(asked).await {
        Ok(page) => page,
        Err(e) => return unavailable(&e.to_string()),
    };
    // The next page's query string: the same search, after this page's last device.
    let next = page.next.as_ref().map(|cursor| {
        format!(
            "q={}&status={}&after={}",
            percent_encoded(prefix),
            status.map_or("", |s| s.name()),
            cursor.encode()
        )
    });
    let search = pages::DeviceSearch {
        prefix,
        status: status.map(|s| s.name()),
    };
    let (csrf, _) = Dashboard::acts(&viewer);
    let found: Vec<live::DeviceLine> = page.devices.into_iter().map(Into::into).collect();
    html(
        StatusCode::OK,
        pages::devices(&found, &search, next.as_deref(), csrf),
    )
}

/// `text` for a query string: every byte but the unreserved ones as `%XX`.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Dead letters the list shows, newest first.
const DEAD_LETTERS_SHOWN: usize = 50;

async fn dead_letters_page(request: HttpRequest, dashboard: web::Data<Dashboard>) -> HttpResponse {
    let Some(viewer) = dashboard.viewer(&request) else {
        return see_other("/login");
    };
    let reader = dashboard.reader.clone();
    let query = DeadLetterQuery {
        device: None,
        reason: None,
        from: None,
        to: None,
        descending: true,
        after: None,
        limit: DEAD_LETTERS_SHOWN,
    };
    let page = match web::block(move || reader.dead_letters(&query)).await {
        Ok(Ok(page)) => page,
        Ok(Err(e)) => return unavailable(&e.to_string()),
        Err(e) => return unavailable(&e.to_string()),
    };
    let (csrf, replay) = Dashboard::acts(&viewer);
    html(
        StatusCode::OK,
        pages::dead_letters(&page.dead_letters, csrf, replay),
    )
}

async fn dead_letter_page(
    request: HttpRequest,
    dashboard: web::Data<Dashboard>,
    id: web::Path<i64>,
) -> HttpResponse {
    let Some(viewer) = dashboard.viewer(&request) else {
        return see_other("/login");
    };
    let (reader, id) = (dashboard.reader.clone(), id.into_inner());
    let letter = match web::block(move || reader.dead_letter(id)).await {
        Ok(Ok(Some(letter))) => letter,
        Ok(Ok(None)) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::login(Some("no such dead letter (replayed already, or shed)")),
            )
        }
        Ok(Err(e)) => return unavailable(&e.to_string()),
        Err(e) => return unavailable(&e.to_string()),
    };
    let (csrf, replay) = Dashboard::acts(&viewer);
    html(StatusCode::OK, pages::dead_letter(&letter, csrf, replay))
}

#[derive(Deserialize)]
struct ReplayForm {
    id: i64,
    csrf: String,
}

/// Replays one dead letter, as `POST /api/v1/dead-letters/{id}/replay` does.
async fn replay(
    request: HttpRequest,
    dashboard: web::Data<Dashboard>,
    form: web::Form<ReplayForm>,
) -> HttpResponse {
    if let Some(refused) = refusal(&request, &dashboard, &form.csrf) {
        return refused;
    }
    let viewer = dashboard.viewer(&request).flatten();
    let csrf = viewer.as_ref().map(|(_, s)| s.csrf.as_str());
    match dashboard.replayer.replay(&[form.id]).await {
        Ok(done) => {
            let outcome = done
                .into_iter()
                .next()
                .map_or(ReplayOutcome::Gone, |r| r.outcome);
            html(StatusCode::OK, pages::replayed(form.id, &outcome, csrf))
        }
        Err(e) => unavailable(&e.to_string()),
    }
}

fn unavailable(why: &str) -> HttpResponse {
    html(StatusCode::SERVICE_UNAVAILABLE, pages::login(Some(why)))
}

/// A form that changes something must come from this origin, with the session's CSRF
/// token, from an admin (anyone, without login): the refusal's page if it does not.
fn refusal(request: &HttpRequest, dashboard: &Dashboard, csrf: &str) -> Option<HttpResponse> {
    let refused = |why: &str| Some(html(StatusCode::FORBIDDEN, pages::login(Some(why))));
    if !same_origin(request) {
        return refused("refused: not sent from Eliot's own page");
    }
    match dashboard.viewer(request) {
        None => Some(see_other("/login")),
        Some(None) => None,
        Some(Some((_, session))) => {
            let matches: bool = session.csrf.as_bytes().ct_eq(csrf.as_bytes()).into();
            if !matches {
                return refused("refused: not sent from Eliot's own page");
            }
            if session.role != Role::Admin {
                return refused("refused: this needs an admin token");
            }
            None
        }
    }
}

async fn login_page(request: HttpRequest, dashboard: web::Data<Dashboard>) -> HttpResponse {
    if dashboard.viewer(&request).is_some() {
        return see_other("/");
    }
    html(StatusCode::OK, pages::login(None))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    request: HttpRequest,
    dashboard: web::Data<Dashboard>,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    if !same_origin(&request) {
        return html(
            StatusCode::FORBIDDEN,
            pages::login(Some("this form must be sent from Eliot's own page")),
        );
    }
    let peer: Option<IpAddr> = request.peer_addr().map(|a| a.ip());
    match dashboard.gate.login(&form.token, peer) {
        Ok(None) => see_other("/"),
        Ok(Some(role)) => {
            let id = dashboard.sessions.open(role, form.token.trim());
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/"))
                .insert_header(set_cookie(Some(&id)))
                .finish()
        }
        Err(refused) => html(refused.status, pages::login(Some(&refused.message))),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    request: HttpRequest,
    dashboard: web::Data<Dashboard>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let Some(Some((id, session))) = dashboard.viewer(&request) else {
        return see_other("/login");
    };
    let token_matches: bool = session.csrf.as_bytes().ct_eq(form.csrf.as_bytes()).into();
    if !same_origin(&request) || !token_matches {
        return html(
            StatusCode::FORBIDDEN,
            pages::login(Some("refused: not sent from Eliot's own page")),
        );
    }
    dashboard.sessions.close(&id);
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .insert_header(set_cookie(None))
        .finish()
}

/// `GET /live`: a `fleet` event now and each second after, while the session lasts.
async fn live_feed(request: HttpRequest, dashboard: web::Data<Dashboard>) -> HttpResponse {
    live_stream(&request, dashboard, (), |dashboard, ()| async move {
        Some((live::event(&*dashboard.feed.snapshot().await), ()))
    })
}

/// A live feed for whoever sent `request`: the event `next` makes from the state the
/// previous one left (`start` for the first), now and each second after, while the
/// session lasts; 401 without one, 503 past the feeds' bound (`live`).
fn live_stream<S, F, Next>(
    request: &HttpRequest,
    dashboard: web::Data<Dashboard>,
    start: S,
    next: F,
) -> HttpResponse
where
    S: 'static,
    F: Fn(std::sync::Arc<Dashboard>, S) -> Next + 'static,
    Next: std::future::Future<Output = Option<(web::Bytes, S)>> + 'static,
{
    let Some(viewer) = dashboard.viewer(request) else {
        return HttpResponse::Unauthorized().finish();
    };
    let Some(place) = dashboard.feed.open() else {
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "10"))
            .finish();
    };
    let session_id = viewer.map(|(id, _)| id);
    let dashboard = dashboard.into_inner();
    let next = std::rc::Rc::new(next);
    let ticks = tokio::time::interval(live::EVERY);
    let events = stream::unfold((ticks, place, start), move |(mut ticks, place, state)| {
        let (dashboard, session_id, next) = (dashboard.clone(), session_id.clone(), next.clone());
        async move {
            ticks.tick().await;
            // Logged out, or past its lifetime: the feed ends (the page's next try is a 401).
            if let Some(id) = &session_id {
                dashboard.sessions.get(id)?;
            }
            let (event, state) = next(dashboard, state).await?;
            Some((Ok::<_, actix_web::Error>(event), (ticks, place, state)))
        }
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(events)
}
