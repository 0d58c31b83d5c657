//! The one error body of `/api/v1`: `{"error": {"code": "<snake_case>", "message":
//! "<sentence>"}}`, with the status that goes with the code. Handlers return `ApiError`;
//! actix-web's own extractor errors (a bad query string, path or JSON body) are turned
//! into one by the handlers `extractor_configs` installs, so no answer under `/api/v1`
//! has another shape.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `invalid_query`, `invalid_path`, `invalid_body`,
    /// `invalid_cursor`, `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`,
    /// `device_exists`, `certificate_only`, `not_quarantined`, `payload_too_large`,
    /// `unsupported_media_type`, `too_many_requests`, `store_unavailable`,
    /// `fleet_disabled`, `fleet_unavailable`.
    #[schema(example = "invalid_query")]
    pub code: String,
    /// For people: what was wrong, in a sentence.
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn invalid_query(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message)
    }

    pub fn invalid_path(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", message)
    }

    pub fn invalid_cursor(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn invalid_body(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", message)
    }

    /// 409: the request is fine, the resource's state refuses it (`code` says how).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// A fleet route with `fleet.enabled = false`.
    pub fn fleet_disabled() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "fleet_disabled",
            "the fleet is off here (fleet.enabled = false): Eliot keeps no device state",
        )
    }

    /// The fleet's actors did not answer (restarting, or stopping).
    pub fn fleet_unavailable(why: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "fleet_unavailable",
            format!("the fleet cannot answer now: {why}"),
        )
    }

    /// The store could not be read (or the read was cancelled).
    pub fn store_unavailable(why: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("the store cannot be read now: {why}"),
        )
    }

    fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
            },
        }
    }
}

impl From<eliot_actors::FleetError> for ApiError {
    fn from(e: eliot_actors::FleetError) -> ApiError {
        match e {
            eliot_actors::FleetError::Unavailable(why) => ApiError::fleet_unavailable(why),
            eliot_actors::FleetError::Store(why) => ApiError::store_unavailable(why),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"eliot\""));
        }
        response.json(self.body())
    }
}

/// The answer to a method a path does not take: 405, with `Allow`.
pub fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let error = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("this path answers {allow} only"),
    );
    let mut response = error.error_response();
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

/// A path under `/api/v1` that names nothing.
pub async fn no_such_path(request: HttpRequest) -> HttpResponse {
    ApiError::not_found(format!(
        "no such path: {} (see /api/v1/openapi.json)",
        request.path().escape_debug()
    ))
    .error_response()
}

/// actix-web's extractor errors, answered with the error body.
pub fn extractor_configs(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| ApiError::invalid_query(format!("bad query string: {e}")).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::invalid_path(format!("bad path: {e}")).into()),
    )
    .app_data(json_config(64 * 1024));
}

/// JSON bodies up to `limit` bytes, every failure in the error body: 413 past the limit,
/// 415 for another content type, 400 otherwise.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|e, _| {
            let status = match &e {
                actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
                | actix_web::error::JsonPayloadError::Overflow { .. } => {
                    StatusCode::PAYLOAD_TOO_LARGE
                }
                actix_web::error::JsonPayloadError::ContentType => {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                }
                _ => StatusCode::BAD_REQUEST,
            };
            let code = match status {
                StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                _ => "invalid_body",
            };
            ApiError::new(status, code, format!("bad JSON body: {e}")).into()
        })
}
