//! The alert rules through the API:
//!
//! - `GET /api/v1/alerts/rules`: every rule in force, with where it comes from
//!   (`configuration`: `[[alerts.rules]]`, changed only there; `api`: made here).
//! - `PUT /api/v1/alerts/rules/{name}` (admin): creates or replaces the API's rule of that
//!   name, checked beside every other rule, written, then in force in every shard; its
//!   alerts (same name) carry on under the new rule.
//! - `DELETE /api/v1/alerts/rules/{name}` (admin): its alerts are over (firing ones
//!   resolved, and notified).
//!
//! The body is one of five shapes, by `kind`: the keys each kind takes and no other, with
//! every bound the schema can state stated, so that what the schema allows is what Eliot
//! takes (docs/alerting.md has what each key means).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use eliot_actors::{is_device_id, AlertRule, AlertSeverity, RuleChange, RuleSource};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::alerts::rule_name;
use super::error::{ApiError, ErrorBody};
use super::{integers, ok_json, V1State};

/// A rule's body at most: room for a `devices` list at its longest (10,000 ids of 64
/// bytes, quoted), which the API's other bodies (64 KiB) have not.
pub const MAX_BODY: usize = 1024 * 1024;

/// A device id in a rule's `devices`, as the schema states it.
#[derive(Deserialize, ToSchema)]
#[serde(try_from = "String")]
#[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
pub struct ListedDevice(String);

impl TryFrom<String> for ListedDevice {
    type Error = String;

    fn try_from(id: String) -> Result<Self, String> {
        match is_device_id(&id) {
            true => Ok(ListedDevice(id)),
            false => Err(format!(
                "devices: {id:?} is no device id (1 to 64 of A-Z a-z 0-9 _ . : -)"
            )),
        }
    }
}

/// A rule as the API takes it: its name is the path's.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleBody {
    /// A numeric field of a sensor type's readings past `value`.
    Threshold {
        #[serde(default)]
        severity: SeverityBody,
        #[schema(min_length = 1, max_length = 64)]
        device_prefix: Option<String>,
        #[schema(max_items = 10000)]
        devices: Option<Vec<ListedDevice>>,
        #[schema(pattern = "^[a-z0-9_]{1,32}$")]
        sensor_type: String,
        /// A path into `data`, dots between nested keys.
        #[schema(pattern = "^[^.]+([.][^.]+){0,3}$", max_length = 64)]
        field: String,
        op: OpBody,
        value: f64,
        /// Held until the value is back past this (default `value`).
        clear: Option<f64>,
        /// How long the condition holds before the alert fires: `30s`, `5m`.
        #[serde(rename = "for")]
        #[schema(pattern = "^[0-9]{1,6}(ms|s|m|h|d)$")]
        hold: Option<String>,
    },
    /// The device late or offline by its own rhythm.
    Absence {
        #[serde(default)]
        severity: SeverityBody,
        #[schema(min_length = 1, max_length = 64)]
        device_prefix: Option<String>,
        #[schema(max_items = 10000)]
        devices: Option<Vec<ListedDevice>>,
        status: Option<AbsenceBody>,
        #[serde(rename = "for")]
        #[schema(pattern = "^[0-9]{1,6}(ms|s|m|h|d)$")]
        hold: Option<String>,
    },
    /// `count` dead letters of the device within `window`.
    DeadLetters {
        #[serde(default)]
        severity: SeverityBody,
        #[schema(min_length = 1, max_length = 64)]
        device_prefix: Option<String>,
        #[schema(max_items = 10000)]
        devices: Option<Vec<ListedDevice>>,
        #[schema(minimum = 1, maximum = 10000)]
        #[serde(deserialize_with = "integers::required")]
        count: u32,
        #[schema(pattern = "^[1-9][0-9]{0,5}(ms|s|m|h|d)$")]
        window: String,
    },
    /// An anomaly score at or above `value`.
    Anomaly {
        #[serde(default)]
        severity: SeverityBody,
        #[schema(min_length = 1, max_length = 64)]
        device_prefix: Option<String>,
        #[schema(max_items = 10000)]
        devices: Option<Vec<ListedDevice>>,
        #[schema(pattern = "^[a-z0-9_]{1,32}$")]
        sensor_type: Option<String>,
        #[schema(pattern = "^[^.]+([.][^.]+){0,3}$", max_length = 64)]
        field: Option<String>,
        #[schema(minimum = 0.0, maximum = 1.0)]
        value: f64,
        #[schema(minimum = 0.0, maximum = 1.0)]
        clear: Option<f64>,
    },
    /// Eliot itself in trouble: no device, no scope.
    Eliot {
        #[serde(default)]
        severity: SeverityBody,
        condition: ConditionBody,
        #[serde(rename = "for")]
        #[schema(pattern = "^[0-9]{1,6}(ms|s|m|h|d)$")]
        hold: Option<String>,
    },
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum ConditionBody {
    BreakerOpen,
    StoreFailing,
    DiskFull,
}

impl ConditionBody {
    fn text(self) -> &'static str {
        match self {
            ConditionBody::BreakerOpen => "breaker_open",
            ConditionBody::StoreFailing => "store_failing",
            ConditionBody::DiskFull => "disk_full",
        }
    }
}

#[derive(Deserialize, Serialize, ToSchema, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum SeverityBody {
    Info,
    #[default]
    Warning,
    Critical,
}

impl From<SeverityBody> for AlertSeverity {
    fn from(severity: SeverityBody) -> AlertSeverity {
        match severity {
            SeverityBody::Info => AlertSeverity::Info,
            SeverityBody::Warning => AlertSeverity::Warning,
            SeverityBody::Critical => AlertSeverity::Critical,
        }
    }
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
pub enum OpBody {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
}

impl OpBody {
    fn text(self) -> &'static str {
        match self {
            OpBody::Above => ">",
            OpBody::AtLeast => ">=",
            OpBody::Below => "<",
            OpBody::AtMost => "<=",
        }
    }
}

#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum AbsenceBody {
    Late,
    Offline,
}

impl AbsenceBody {
    fn text(self) -> &'static str {
        match self {
            AbsenceBody::Late => "late",
            AbsenceBody::Offline => "offline",
        }
    }
}

/// `30s`, `5m`, as the schema's pattern allows.
fn duration(key: &str, text: &str) -> Result<Duration, ApiError> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits
        .parse()
        .map_err(|_| ApiError::invalid_body(format!("{key}: e.g. 30s, 5m")))?;
    let unit = &text[digits.len()..];
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(ApiError::invalid_body(format!("{key}: e.g. 30s, 5m"))),
    };
    Ok(Duration::from_secs(n * seconds))
}

impl RuleBody {
    /// As the engine takes it (the shape of `[[alerts.rules]]`); the engine checks the
    /// rest beside the other rules.
    fn into_rule(self, name: &str) -> Result<AlertRule, ApiError> {
        let hold = |h: Option<String>| h.map(|h| duration("for", &h)).transpose();
        let listed =
            |d: Option<Vec<ListedDevice>>| d.unwrap_or_default().into_iter().map(|d| d.0).collect();
        let rule = AlertRule {
            name: name.to_owned(),
            ..AlertRule::default()
        };
        Ok(match self {
            RuleBody::Threshold {
                severity,
                device_prefix,
                devices,
                sensor_type,
                field,
                op,
                value,
                clear,
                hold: h,
            } => AlertRule {
                kind: "threshold".into(),
                severity: severity.into(),
                device_prefix,
                devices: listed(devices),
                sensor_type: Some(sensor_type),
                field: Some(field),
                op: Some(op.text().into()),
                value: Some(value),
                clear,
                r#for: hold(h)?,
                ..rule
            },
            RuleBody::Absence {
                severity,
                device_prefix,
                devices,
                status,
                hold: h,
            } => AlertRule {
                kind: "absence".into(),
                severity: severity.into(),
                device_prefix,
                devices: listed(devices),
                status: status.map(|s| s.text().into()),
                r#for: hold(h)?,
                ..rule
            },
            RuleBody::DeadLetters {
                severity,
                device_prefix,
                devices,
                count,
                window,
            } => AlertRule {
                kind: "dead_letters".into(),
                severity: severity.into(),
                device_prefix,
                devices: listed(devices),
                count: Some(count),
                window: Some(duration("window", &window)?),
                ..rule
            },
            RuleBody::Anomaly {
                severity,
                device_prefix,
                devices,
                sensor_type,
                field,
                value,
                clear,
            } => AlertRule {
                kind: "anomaly".into(),
                severity: severity.into(),
                device_prefix,
                devices: listed(devices),
                sensor_type,
                field,
                value: Some(value),
                clear,
                ..rule
            },
            RuleBody::Eliot {
                severity,
                condition,
                hold: h,
            } => AlertRule {
                kind: "eliot".into(),
                severity: severity.into(),
                condition: Some(condition.text().into()),
                r#for: hold(h)?,
                ..rule
            },
        })
    }
}

/// A rule in force.
#[derive(Serialize, ToSchema)]
pub struct RuleEntry {
    /// `configuration` (`[[alerts.rules]]`: changed only there) or `api`.
    #[schema(example = "api")]
    pub source: String,
    /// The rule, keyed as `[[alerts.rules]]` is (docs/alerting.md).
    #[schema(value_type = Object)]
    pub rule: AlertRule,
}

#[derive(Serialize, ToSchema)]
pub struct RulesPage {
    pub rules: Vec<RuleEntry>,
}

/// The alert rules in force.
#[utoipa::path(
    get,
    path = "/api/v1/alerts/rules",
    tag = "alerts",
    responses(
        (status = 200, description = "Every rule", body = RulesPage),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`alerts_disabled`", body = ErrorBody),
    )
)]
pub async fn list(state: web::Data<V1State>) -> Result<HttpResponse, ApiError> {
    let rules = state.alerts()?.rules();
    ok_json(&RulesPage {
        rules: rules.into_iter().map(entry).collect(),
    })
}

fn entry((rule, source): (AlertRule, RuleSource)) -> RuleEntry {
    RuleEntry {
        source: match source {
            RuleSource::Configuration => "configuration",
            RuleSource::Api => "api",
        }
        .to_owned(),
        rule,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RulePath {
    /// The rule's name.
    #[param(pattern = "^[a-z0-9_-]{1,64}$")]
    name: String,
}

fn configured(name: &str) -> ApiError {
    ApiError::conflict(
        "rule_in_configuration",
        format!("rule {name} comes from the configuration ([[alerts.rules]]): change it there"),
    )
}

/// Creates or replaces a rule made through the API.
#[utoipa::path(
    put,
    path = "/api/v1/alerts/rules/{name}",
    tag = "alerts",
    params(RulePath),
    request_body = RuleBody,
    responses(
        (status = 200, description = "Replaced", body = RuleEntry),
        (status = 201, description = "Created", body = RuleEntry),
        (status = 400, description = "A bad name or body", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 409, description = "`rule_in_configuration`: the configuration has a rule of that name", body = ErrorBody),
        (status = 413, description = "A body over 1 MiB", body = ErrorBody),
        (status = 415, description = "A body that is not JSON", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`alerts_disabled`, or the store cannot be written", body = ErrorBody),
    )
)]
pub async fn put(
    state: web::Data<V1State>,
    path: web::Path<RulePath>,
    body: web::Json<RuleBody>,
) -> Result<HttpResponse, ApiError> {
    let alerts = state.alerts()?;
    let name = rule_name(&path.name)
        .map_err(|_| ApiError::invalid_path("name: 1 to 64 of a-z 0-9 _ -"))?;
    let rule = body.into_inner().into_rule(name)?;
    let answer = |created: bool| -> Result<HttpResponse, ApiError> {
        let body = serde_json::to_vec(&entry((rule.clone(), RuleSource::Api)))
            .map_err(ApiError::store_unavailable)?;
        let mut response = match created {
            true => HttpResponse::Created(),
            false => HttpResponse::Ok(),
        };
        Ok(response.content_type("application/json").body(body))
    };
    match alerts.put_rule(rule.clone()).await? {
        RuleChange::Created => answer(true),
        RuleChange::Replaced => answer(false),
        RuleChange::Configured => Err(configured(name)),
        RuleChange::Refused(problems) => Err(ApiError::invalid_body(problems.join("; "))),
        RuleChange::Deleted | RuleChange::Unknown => Err(ApiError::store_unavailable(
            "a put neither created nor replaced the rule",
        )),
    }
}

/// Deletes a rule made through the API; its alerts are over.
#[utoipa::path(
    delete,
    path = "/api/v1/alerts/rules/{name}",
    tag = "alerts",
    params(RulePath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "A bad name", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No rule of that name made through the API", body = ErrorBody),
        (status = 409, description = "`rule_in_configuration`", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "`alerts_disabled`, or the store cannot be written", body = ErrorBody),
    )
)]
pub async fn delete(
    state: web::Data<V1State>,
    path: web::Path<RulePath>,
) -> Result<HttpResponse, ApiError> {
    let alerts = state.alerts()?;
    let name = rule_name(&path.name)
        .map_err(|_| ApiError::invalid_path("name: 1 to 64 of a-z 0-9 _ -"))?;
    match alerts.delete_rule(name).await? {
        RuleChange::Deleted => Ok(HttpResponse::NoContent().finish()),
        RuleChange::Unknown => Err(ApiError::not_found(format!(
            "no rule {name} made through the API"
        ))),
        RuleChange::Configured => Err(configured(name)),
        RuleChange::Created | RuleChange::Replaced | RuleChange::Refused(_) => Err(
            ApiError::store_unavailable("a delete neither deleted nor found the rule"),
        ),
    }
}
