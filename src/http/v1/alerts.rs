//! The alerts (503 `alerts_disabled` with `fleet.enabled` or `alerts.enabled` false):
//!
//! - `GET /api/v1/alerts`: the alerts raised now (pending or firing), as committed, by
//!   (device, rule), with a signed cursor; filters `state`, `rule`, `device_id`.
//! - `GET /api/v1/alerts/events`: the history (fired, resolved, acknowledged), by id
//!   (`after`), with what became of each notification; filters `rule`, `device_id`, `kind`.
//! - `POST /api/v1/alerts/events/{id}/retry`: a failed notification is tried again.
//! - `POST /api/v1/devices/{id}/alerts/{rule}/ack`: acknowledges a firing alert.
//! - `GET /api/v1/alerts/rules`, `PUT`, `DELETE /api/v1/alerts/rules/{name}`: the rules
//!   (`alert_rules.rs`).
//! - `GET`, `POST /api/v1/alerts/silences`, `DELETE /api/v1/alerts/silences/{id}`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use eliot_actors::{
    format_micros, Acked, AlertEventQuery, AlertEventView, AlertQuery, AlertStateRow, AlertsHandle,
    Retried, SilenceRow,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::{ok_json, params, V1State};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

impl V1State {
    pub(super) fn alerts(&self) -> Result<&AlertsHandle, ApiError> {
        self.alerts.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "alerts_disabled",
                "alerting is off here (fleet.enabled or alerts.enabled is false)",
            )
        })
    }
}

impl From<eliot_actors::AlertsError> for ApiError {
    fn from(e: eliot_actors::AlertsError) -> ApiError {
        ApiError::store_unavailable(e)
    }
}

/// A rule name in a path or query: `[a-z0-9_-]{1,64}`.
pub(super) fn rule_name(name: &str) -> Result<&str, ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    ok.then_some(name)
        .ok_or_else(|| ApiError::invalid_query("rule: 1 to 64 of a-z 0-9 _ -"))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// `pending` or `firing`; both by default.
    #[param(pattern = "^(pending|firing)$")]
    state: Option<String>,
    /// Only this rule's alerts.
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    rule: Option<String>,
    /// Only this device's alerts.
    #[param(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    device_id: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 1,000, 100 by default.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// An alert raised now.
#[derive(Serialize, ToSchema)]
pub struct AlertView {
    #[schema(example = "too_hot")]
    pub rule: String,
    #[schema(example = "greenhouse-7")]
    pub device_id: String,
    /// `pending` (the condition holds, not yet for the rule's `for`) or `firing`.
    #[schema(example = "firing")]
    pub state: String,
    /// `info`, `warning` or `critical` (the rule's; `null` if it is no longer configured).
    pub severity: Option<String>,
    /// When it became pending, or fired.
    pub since: String,
    /// The value that holds it (a threshold's field, a count of dead letters, a score).
    pub value: Option<f64>,
    /// When its firing was acknowledged.
    pub acknowledged_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AlertsPage {
    pub alerts: Vec<AlertView>,
    /// Pass it as `cursor` (with the same filters) for the next page; `null` at the end.
    pub next_cursor: Option<String>,
}

/// The alerts raised now.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "alerts",
    params(AlertsQuery),
    responses(
        (status = 200, description = "A page of alerts", body = AlertsPage),
        (status = 400, description = "A bad query or cursor", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`alerts_disabled`, or the store cannot be read", body = ErrorBody),
    )
)]
pub async fn list(
    state: web::Data<V1State>,
    query: web::Query<AlertsQuery>,
) -> Result<HttpResponse, ApiError> {
    let alerts = state.alerts()?;
    let q = query.into_inner();
    let phase = match q.state.as_deref() {
        None => None,
        Some("pending") => Some("pending"),
        Some("firing") => Some("firing"),
        Some(_) => return Err(ApiError::invalid_query("state: pending or firing")),
    };
    let rule = q
        .rule
        .as_deref()
        .map(rule_name)
        .transpose()?
        .map(str::to_owned);
    let device_id = q.device_id.as_deref().map(params::device_id).transpose()?;
    let limit = params::limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = match &q.cursor {
        Some(c) => Some(state.cursors.open::<(String, String)>("alerts", c)?),
        None => None,
    };
    let mut rows = alerts
        .states(AlertQuery {
            phase,
            rule,
            device_id: device_id.map(str::to_owned),
            after,
            limit: limit + 1,
        })
        .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = more
        .then(|| rows.last())
        .flatten()
        .map(|r| state.cursors.seal("alerts", (&r.device_id, &r.rule)));
    ok_json(&AlertsPage {
        alerts: rows.into_iter().map(|r| view_of(alerts, r)).collect(),
        next_cursor,
    })
}

fn view_of(alerts: &AlertsHandle, r: AlertStateRow) -> AlertView {
    AlertView {
        severity: alerts.severity(&r.rule).map(str::to_owned),
        state: r.phase.unwrap_or("pending").to_owned(),
        since: format_micros(r.since),
        value: r.value,
        acknowledged_at: r.acked_at.map(format_micros),
        rule: r.rule,
        device_id: r.device_id,
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only this rule's events.
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    rule: Option<String>,
    /// Only this device's events.
    #[param(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    device_id: Option<String>,
    /// `fired`, `resolved` or `acknowledged`.
    #[param(pattern = "^(fired|resolved|acknowledged)$")]
    kind: Option<String>,
    /// Only events with an id above this: the `next_cursor` of the previous page.
    #[param(minimum = 0, maximum = 9007199254740991_i64)]
    after: Option<i64>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// What became of an event's notification.
#[derive(Serialize, ToSchema)]
pub struct DeliveryState {
    /// `waiting`, `delivered` or `failed` (kept; `POST .../retry` tries it again).
    #[schema(example = "delivered")]
    pub state: String,
    pub attempts: i64,
    pub last_attempt: Option<String>,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
}

/// One event of an alert's history.
#[derive(Serialize, ToSchema)]
pub struct AlertEventBody {
    pub id: i64,
    pub rule: String,
    pub device_id: String,
    /// `fired`, `resolved` or `acknowledged`.
    pub kind: String,
    pub severity: String,
    pub at: String,
    pub value: Option<f64>,
    pub summary: String,
    /// A silence covered it: recorded, not notified.
    pub silenced: bool,
    /// `null`: no notification was due (no webhook, silenced, or an acknowledgement).
    pub delivery: Option<DeliveryState>,
}

impl From<AlertEventView> for AlertEventBody {
    fn from(v: AlertEventView) -> AlertEventBody {
        let e = v.event;
        AlertEventBody {
            id: e.id,
            rule: e.rule,
            device_id: e.device_id,
            kind: e.kind.to_owned(),
            severity: e.severity.to_owned(),
            at: format_micros(e.at),
            value: e.value,
            summary: e.summary,
            silenced: e.silenced,
            delivery: v.delivery.map(|d| DeliveryState {
                state: match (d.delivered_at, d.failed_at) {
                    (Some(_), _) => "delivered",
                    (None, Some(_)) => "failed",
                    (None, None) => "waiting",
                }
                .to_owned(),
                attempts: d.attempts,
                last_attempt: d.last_attempt.map(format_micros),
                last_error: d.last_error,
                delivered_at: d.delivered_at.map(format_micros),
            }),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AlertEventsPage {
    pub events: Vec<AlertEventBody>,
    /// Pass it as `after` for the next page; `null` at the end.
    pub next_cursor: Option<i64>,
}

/// The alerts' history, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/alerts/events",
    tag = "alerts",
    params(EventsQuery),
    responses(
        (status = 200, description = "A page of events", body = AlertEventsPage),
        (status = 400, description = "A bad query", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`alerts_disabled`, or the store cannot be read", body = ErrorBody),
    )
)]
pub async fn events(
    state: web::Data<V1State>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let alerts = state.alerts()?;
    let q = query.into_inner();
    let kind = match q.kind.as_deref() {
        None => None,
        Some(k @ ("fired" | "resolved" | "acknowledged")) => Some(
            ["fired", "resolved", "acknowledged"]
                .into_iter()
                .find(|x| *x == k)
                .unwrap_or("fired"),
        ),
        Some(_) => {
            return Err(ApiError::invalid_query(
                "kind: fired, resolved or acknowledged",
            ))
        }
    };
    let rule = q
        .rule
        .as_deref()
        .map(rule_name)
        .transpose()?
        .map(str::to_owned);
    let device_id = q.device_id.as_deref().map(params::device_id).transpose()?;
    let limit = params::limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = params::after(q.after, "an event's")?;
    let mut rows = alerts
        .events(AlertEventQuery {
            rule,
            device_id: device_id.map(str::to_owned),
            kind,
            after,
            newest_first: false,
            limit: limit + 1,
        })
        .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = more.then(|| rows.last().map(|r| r.event.id)).flatten();
    ok_json(&AlertEventsPage {
        events: rows.into_iter().map(Into::into).collect(),
        next_cursor,
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EventPath {
    /// The event's id.
    #[param(minimum = 1, maximum = 9007199254740991_i64)]
    id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RetryAnswer {
    pub id: i64,
    pub retrying: bool,
}

/// Tries a failed notification again.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/events/{id}/retry",
    tag = "alerts",
    params(EventPath),
    responses(
        (status = 200, description = "Queued again", body = RetryAnswer),
        (status = 400, description = "A bad id", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 409, description = "`not_failed`: its notification is not a failed one", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`alerts_disabled`, or the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn retry(
    state: web::Data<V1State>,
    path: web::Path<EventPath>,
) -> Result<HttpResponse, ApiError> {
    let alerts = state.alerts()?;
    let id = params::after(Some(path.id), "an event's")?.unwrap_or(0);
    match alerts.retry(id).await? {
        Retried::Again => ok_json(&RetryAnswer { id, retrying: true }),
        Retried::NotFailed => Err(ApiError::conflict(
            "not_failed",
            format!("event {id}'s notification is not a failed one"),
        )),
        Retried::Unknown => Err(ApiError::not_found(format!("no alert event {id}"))),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AlertPath {
    /// The device's id.
    #[param(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    id: String,
    /// The rule's name.
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    rule: String,
}

#[derive(Serialize, ToSchema)]
pub struct AckAnswer {
    pub rule: String,
    pub device_id: String,
    pub acknowledged: bool,
}

/// Acknowledges a firing alert (until it resolves).
#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/alerts/{rule}/ack",
    tag = "alerts",
    params(AlertPath),
    responses(
        (status = 200, description = "Acknowledged", body = AckAnswer),
        (status = 400, description = "A bad device id or rule", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 409, description = "`not_firing`: that alert is not firing, or was acknowledged", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`alerts_disabled`, or the fleet cannot answer", body = ErrorBody),
    )
)]
pub async fn acknowledge(
    state: web::Data<V1State>,
    path: web::Path<AlertPath>,
) -> Result<HttpResponse, ApiError> {
    state.alerts()?;
    let fleet = state.fleet()?;
    let id = params::device_id(&path.id)?;
    let rule = rule_name(&path.rule)
        .map_err(|_| ApiError::invalid_path("rule: 1 to 64 of a-z 0-9 _ -"))?;
    match fleet.acknowledge(rule, id, "api").await? {
        Acked::Acknowledged => ok_json(&AckAnswer {
            rule: rule.to_owned(),
            device_id: id.to_owned(),
            acknowledged: true,
        }),
        Acked::NotFiring => Err(ApiError::conflict(
            "not_firing",
            format!("no firing, unacknowledged alert of {rule} on {id}"),
        )),
        Acked::UnknownRule => Err(ApiError::not_found(format!("no rule {rule}"))),
    }
}

/// A silence: the events of a rule, a device, or a rule on one device, recorded but not
/// notified until `until`.
#[derive(Serialize, ToSchema)]
pub struct SilenceView {
    pub id: i64,
    pub rule: Option<String>,
    pub device_id: Option<String>,
    pub until: String,
    pub created_at: String,
    pub comment: String,
}

impl From<SilenceRow> for SilenceView {
    fn from(s: SilenceRow) -> SilenceView {
        SilenceView {
            id: s.id,
            rule: s.rule,
            device_id: s.device_id,
            until: format_micros(s.until),
            created_at: format_micros(s.created_at),
            comment: s.comment,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SilencesPage {
    pub silences: Vec<SilenceView>,
}

/// The silences in force.
#[utoipa::path(
    get,
    path = "/api/v1/alerts/silences",
    tag = "alerts",
    responses(
        (status = 200, description = "Every silence in force", body = SilencesPage),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`alerts_disabled`", body = ErrorBody),
    )
)]
pub async fn silences(state: web::Data<V1State>) -> Result<HttpResponse, ApiError> {
    let silences = state.alerts()?.silences();
    ok_json(&SilencesPage {
        silences: silences.into_iter().map(Into::into).collect(),
    })
}

/// A new silence: a rule, a device, both, or (neither given) every alert, until a time.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    rule: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    device_id: Option<String>,
    /// RFC 3339. A time already past makes a silence that holds nothing.
    #[schema(format = DateTime, example = "2026-12-31T00:00:00Z")]
    until: String,
    /// Up to 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    comment: String,
}

/// Silences a rule, a device, or a rule on a device.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/silences",
    tag = "alerts",
    request_body = NewSilence,
    responses(
        (status = 201, description = "Silenced", body = SilenceView),
        (status = 400, description = "A bad body", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 413, description = "A body over 64 KiB", body = ErrorBody),
        (status = 415, description = "A body that is not JSON", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`alerts_disabled`, or the store cannot be written", body = ErrorBody),
    )
)]
pub async fn silence(
    state: web::Data<V1State>,
    body: web::Json<NewSilence>,
) -> Result<HttpResponse, ApiError> {
    let alerts = state.alerts()?;
    let NewSilence {
        rule,
        device_id,
        until,
        comment,
    } = body.into_inner();
    let until =
        params::time_micros(&until).map_err(|e| ApiError::invalid_body(format!("until: {e}")))?;
    let row = silence_row(rule, device_id, until, comment).map_err(ApiError::invalid_body)?;
    let row = alerts.silence(row).await?;
    let body = serde_json::to_vec(&SilenceView::from(row)).map_err(ApiError::store_unavailable)?;
    Ok(HttpResponse::Created()
        .content_type("application/json")
        .body(body))
}

/// A silence of `rule`, `device_id`, both or (neither) every alert, made now and
/// holding until `until` (microseconds); or why it cannot be. The API's and the
/// dashboard's forms are checked alike here.
pub fn silence_row(
    rule: Option<String>,
    device_id: Option<String>,
    until: i64,
    comment: String,
) -> Result<SilenceRow, String> {
    if rule.as_deref().is_some_and(|r| rule_name(r).is_err()) {
        return Err("rule: 1 to 64 of a-z 0-9 _ -".into());
    }
    if device_id
        .as_deref()
        .is_some_and(|d| params::device_id(d).is_err())
    {
        return Err("device_id: 1 to 64 letters, digits, `_`, `.`, `:` or `-`".into());
    }
    if comment.chars().count() > 500 {
        return Err("comment: 500 characters at most".into());
    }
    Ok(SilenceRow {
        id: 0,
        rule,
        device_id,
        until,
        created_at: eliot_actors::now_micros(),
        comment,
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SilencePath {
    #[param(minimum = 1, maximum = 9007199254740991_i64)]
    id: i64,
}

/// Ends a silence.
#[utoipa::path(
    delete,
    path = "/api/v1/alerts/silences/{id}",
    tag = "alerts",
    params(SilencePath),
    responses(
        (status = 204, description = "Ended"),
        (status = 400, description = "A bad id", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such silence", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`alerts_disabled`, or the store cannot be written", body = ErrorBody),
    )
)]
pub async fn unsilence(
    state: web::Data<V1State>,
    path: web::Path<SilencePath>,
) -> Result<HttpResponse, ApiError> {
    let alerts = state.alerts()?;
    let id = params::after(Some(path.id), "a silence's")?.unwrap_or(0);
    match alerts.unsilence(id).await? {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(ApiError::not_found(format!("no silence {id}"))),
    }
}
