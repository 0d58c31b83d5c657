//! `GET /api/v1/openapi.json`: the OpenAPI 3 document of the API v1, generated from the
//! handlers' own types and annotations (utoipa), so that it cannot drift from what is
//! served. Open to all, like any API's published reference: it describes, it holds no
//! device data.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::schema::{AdditionalProperties, Schema};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

use super::{
    alert_rules, alerts, anomalies, dead_letters, devices, error, provisioning, readings, replay,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Eliot API",
        description = "Eliot's fleet API v1: devices (live state, events, anomaly scores, provisioning), \
            stored readings and dead letters (and their replay), alerts (raised now, history, \
            acknowledgements, silences, notifications). Every path \
            needs `Authorization: Bearer <token>` when tokens are configured (a read token \
            for GET, an admin token for anything else); without tokens Eliot serves it on \
            a loopback address only. Errors answer {\"error\": {\"code\", \"message\"}}.",
    ),
    paths(
        devices::list,
        provisioning::add,
        devices::one,
        provisioning::remove,
        devices::events,
        anomalies::anomalies,
        devices::release,
        provisioning::rotate,
        readings::readings,
        readings::latest,
        dead_letters::list,
        dead_letters::one,
        replay::one,
        replay::matching,
        alerts::list,
        alerts::events,
        alerts::retry,
        alerts::acknowledge,
        alert_rules::list,
        alert_rules::put,
        alert_rules::delete,
        alerts::silences,
        alerts::silence,
        alerts::unsilence,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerTokens, &ClosedRuleBodies),
    security(("bearer" = [])),
    tags(
        (name = "devices", description = "The fleet: live device state, status events and anomaly scores; provisioning"),
        (name = "readings", description = "A device's stored readings"),
        (name = "dead letters", description = "Messages Eliot rejected, kept whole with their reason"),
        (name = "alerts", description = "Alerts raised by the rules, their history and notifications, silences"),
    )
)]
pub struct ApiDoc;

struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// A rule's body takes its kind's keys and no other (a misspelt `clear` would otherwise
/// be dropped unseen): serde's `deny_unknown_fields` says so on the enum, but utoipa does
/// not carry it to a tagged enum's variants, so each variant is closed here.
struct ClosedRuleBodies;

impl Modify for ClosedRuleBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let schemas = openapi.components.as_mut().map(|c| &mut c.schemas);
        let Some(RefOr::T(Schema::OneOf(kinds))) = schemas.and_then(|s| s.get_mut("RuleBody"))
        else {
            panic!("RuleBody is a oneOf of its kinds");
        };
        for kind in &mut kinds.items {
            if let RefOr::T(Schema::Object(object)) = kind {
                object.additional_properties =
                    Some(Box::new(AdditionalProperties::FreeForm(false)));
            }
        }
    }
}

/// The document as JSON, built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the document serialises")
    })
}

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
