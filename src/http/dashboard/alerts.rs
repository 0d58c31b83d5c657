//! The alerts page, `/alerts`: the alerts raised now (live), the silences in force, the
//! last events; an admin (anyone, without login) acknowledges a firing alert, makes a
//! silence and ends one there, as the API does.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use eliot_actors::{now_micros, AlertEventQuery};
use serde::Deserialize;

use super::{html, pages, refusal, see_other, unavailable, Dashboard};
use crate::http::v1::silence_row;

/// Events the page lists, newest first.
const HISTORY: usize = 50;

fn alerts_off() -> HttpResponse {
    unavailable("alerting is off here (fleet.enabled or alerts.enabled is false)")
}

pub async fn page(request: HttpRequest, dashboard: web::Data<Dashboard>) -> HttpResponse {
    let Some(viewer) = dashboard.viewer(&request) else {
        return see_other("/login");
    };
    let snapshot = dashboard.feed.snapshot().await;
    let (history, silences) = match &dashboard.alerts {
        Some(alerts) => {
            let history = alerts
                .events(AlertEventQuery {
                    newest_first: true,
                    limit: HISTORY,
                    ..AlertEventQuery::default()
                })
                .await;
            match history {
                Ok(history) => (history, alerts.silences()),
                Err(e) => return unavailable(&e.to_string()),
            }
        }
        None => (Vec::new(), Vec::new()),
    };
    let (csrf, act) = Dashboard::acts(&viewer);
    html(
        StatusCode::OK,
        pages::alerts(&snapshot, &history, &silences, csrf, act),
    )
}

#[derive(Deserialize)]
pub struct AckForm {
    rule: String,
    device_id: String,
    csrf: String,
}

/// Acknowledges a firing alert, as `POST /api/v1/devices/{id}/alerts/{rule}/ack` does.
pub async fn acknowledge(
    request: HttpRequest,
    dashboard: web::Data<Dashboard>,
    form: web::Form<AckForm>,
) -> HttpResponse {
    if let Some(refused) = refusal(&request, &dashboard, &form.csrf) {
        return refused;
    }
    let Some(fleet) = &dashboard.fleet else {
        return unavailable("the fleet is off: no alerts");
    };
    match fleet
        .acknowledge(&form.rule, &form.device_id, "dashboard")
        .await
    {
        Ok(_) => see_other("/alerts"),
        Err(e) => unavailable(&e.to_string()),
    }
}

#[derive(Deserialize)]
pub struct SilenceForm {
    #[serde(default)]
    rule: String,
    #[serde(default)]
    device_id: String,
    hours: u32,
    #[serde(default)]
    comment: String,
    csrf: String,
}

/// Silences a rule, a device, both, or every alert, for one of the form's durations, as
/// `POST /api/v1/alerts/silences` does.
pub async fn silence(
    request: HttpRequest,
    dashboard: web::Data<Dashboard>,
    form: web::Form<SilenceForm>,
) -> HttpResponse {
    if let Some(refused) = refusal(&request, &dashboard, &form.csrf) {
        return refused;
    }
    let Some(alerts) = &dashboard.alerts else {
        return alerts_off();
    };
    let form = form.into_inner();
    if !pages::SILENCE_HOURS.iter().any(|(h, _)| *h == form.hours) {
        return bad("a silence holds for one of the durations the form offers");
    }
    let held = Duration::from_secs(u64::from(form.hours) * 3_600);
    let until = now_micros().saturating_add(held.as_micros() as i64);
    let given = |text: String| (!text.trim().is_empty()).then(|| text.trim().to_owned());
    let row = match silence_row(given(form.rule), given(form.device_id), until, form.comment) {
        Ok(row) => row,
        Err(why) => return bad(&why),
    };
    match alerts.silence(row).await {
        Ok(_) => see_other("/alerts"),
        Err(e) => unavailable(&e.to_string()),
    }
}

#[derive(Deserialize)]
pub struct UnsilenceForm {
    id: i64,
    csrf: String,
}

/// Ends a silence, as `DELETE /api/v1/alerts/silences/{id}` does.
pub async fn unsilence(
    request: HttpRequest,
    dashboard: web::Data<Dashboard>,
    form: web::Form<UnsilenceForm>,
) -> HttpResponse {
    if let Some(refused) = refusal(&request, &dashboard, &form.csrf) {
        return refused;
    }
    let Some(alerts) = &dashboard.alerts else {
        return alerts_off();
    };
    match alerts.unsilence(form.id).await {
        // Ended already (by another page, or its time came): the page shows what holds.
        Ok(_) => see_other("/alerts"),
        Err(e) => unavailable(&e.to_string()),
    }
}

fn bad(why: &str) -> HttpResponse {
    html(StatusCode::BAD_REQUEST, pages::login(Some(why)))
}
