//! The dead letters, read side:
//!
//! - `GET /api/v1/dead-letters`: a page of them by id, newest first unless `order=asc`,
//!   filtered by device, reason text and receipt time, with a cursor to the next page.
//!   Each page examines at most 10,000 dead letters (`DEAD_LETTER_SCAN_ROWS`): with a
//!   filter that matches little, a page may hold fewer than `limit` (even none) and still
//!   have a `next_cursor`; a listing ends when `next_cursor` is `null`. Lists carry the
//!   payload's size, not the payload.
//! - `GET /api/v1/dead-letters/{id}`: one whole, its payload as text when it is UTF-8,
//!   else as base64, flagged by `payload_encoding`.

use actix_web::{web, HttpResponse};
use base64::Engine;
use eliot_actors::{format_micros, DeadLetterQuery, DeadLetterSummary, StoredDeadLetter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::params::{self, Order};
use super::{ok_json, V1State};

/// The most dead letters one page carries.
pub const MAX_LIMIT: usize = 1_000;
const DEFAULT_LIMIT: usize = 100;
/// Longest `reason` filter, in characters.
const MAX_REASON_FILTER: usize = 256;
const LISTING: &str = "dead_letters";

/// A dead letter as listed (without its payload).
#[derive(Serialize, ToSchema)]
pub struct DeadLetterItem {
    #[schema(example = 42)]
    pub id: i64,
    pub received_at: String,
    /// The MQTT client id it came from (the device id when it authenticated).
    pub client_id: String,
    pub topic: String,
    /// Why it was rejected.
    #[schema(example = "payload is not valid JSON: expected value at line 1 column 1")]
    pub reason: String,
    /// The payload's size in bytes.
    pub payload_bytes: u64,
}

/// A page of dead letters.
#[derive(Serialize, ToSchema)]
pub struct DeadLettersPage {
    pub dead_letters: Vec<DeadLetterItem>,
    /// Pass it as `cursor` (with the same filters) for the next page; `null` at the end.
    pub next_cursor: Option<String>,
}

/// How a dead letter's payload is written in `payload`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PayloadEncoding {
    /// The payload was UTF-8 text: `payload` is that text.
    Utf8,
    /// It was not: `payload` is standard base64 of its bytes.
    Base64,
}

/// One dead letter, whole.
#[derive(Serialize, ToSchema)]
pub struct DeadLetterDetail {
    #[serde(flatten)]
    pub summary: DeadLetterItem,
    /// The message as received, written as `payload_encoding` says.
    pub payload: String,
    pub payload_encoding: PayloadEncoding,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLettersQuery {
    /// Only those of this device: the device each was attributed to when refused (its
    /// sender's identity, else its topic's device id).
    #[param(pattern = "^[A-Za-z0-9_.:-]{1,64}$")]
    device: Option<String>,
    /// Only those whose reason contains this text.
    #[param(min_length = 1, max_length = 256)]
    reason: Option<String>,
    /// Only those received at or after this time (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Only those received before this time (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
    /// `desc` (newest first, the default) or `asc`.
    #[param(inline)]
    order: Option<Order>,
    /// Dead letters in the page: 1 to 1,000, 100 by default.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page, with the same filters.
    #[param(max_length = 2048)]
    cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeadLetterPath {
    /// The dead letter's id (ids stay below 2^53, where JSON numbers are exact).
    #[param(minimum = 1, maximum = 9007199254740991_i64)]
    pub(super) id: i64,
}

/// What a dead letters cursor holds: the position, and the filters it goes with.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
struct At {
    device: Option<String>,
    reason: Option<String>,
    within: (i64, i64),
    descending: bool,
    after: i64,
}

/// A page of dead letters.
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters",
    tag = "dead letters",
    params(DeadLettersQuery),
    responses(
        (status = 200, description = "A page of dead letters", body = DeadLettersPage),
        (status = 400, description = "A bad query or cursor", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "The store cannot be read", body = ErrorBody),
    )
)]
pub async fn list(
    state: web::Data<V1State>,
    query: web::Query<DeadLettersQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let device = query
        .device
        .map(|d| params::device_id(&d).map(|_| d.clone()))
        .transpose()
        .map_err(|_| {
            ApiError::invalid_query("device: 1 to 64 letters, digits, `_`, `.`, `:` or `-`")
        })?;
    if query
        .reason
        .as_ref()
        .is_some_and(|r| r.is_empty() || r.chars().count() > MAX_REASON_FILTER)
    {
        return Err(ApiError::invalid_query(format!(
            "reason: 1 to {MAX_REASON_FILTER} characters of text the reason contains"
        )));
    }
    let within = params::window(query.from.as_deref(), query.to.as_deref())?;
    let limit = params::limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let filters = At {
        device,
        reason: query.reason,
        within,
        descending: query.order.unwrap_or_default().descending(),
        after: 0,
    };
    let after = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let at: At = state.cursors.open(LISTING, cursor)?;
            if at.after == 0
                || (At {
                    after: at.after,
                    ..filters.clone()
                }) != at
            {
                return Err(ApiError::invalid_cursor(
                    "this cursor belongs to a listing with other filters: ask again with the \
                     same device, reason, from, to and order, or without a cursor",
                ));
            }
            Some(at.after)
        }
    };
    let store_query = DeadLetterQuery {
        device: filters.device.clone(),
        reason: filters.reason.clone(),
        from: Some(format_micros(within.0)),
        to: (within.1 < END_OF_TIME).then(|| format_micros(within.1)),
        descending: filters.descending,
        after,
        limit,
    };
    let reader = state.reader.clone();
    let page = web::block(move || reader.dead_letters(&store_query))
        .await
        .map_err(ApiError::store_unavailable)?
        .map_err(ApiError::store_unavailable)?;
    let next_cursor = page
        .next
        .map(|after| state.cursors.seal(LISTING, At { after, ..filters }));
    ok_json(&DeadLettersPage {
        dead_letters: page.dead_letters.into_iter().map(item).collect(),
        next_cursor,
    })
}

/// 10000-01-01T00:00:00Z: a window ending there has no upper bound.
const END_OF_TIME: i64 = 253_402_300_800_000_000;

/// One dead letter, payload included.
#[utoipa::path(
    get,
    path = "/api/v1/dead-letters/{id}",
    tag = "dead letters",
    params(DeadLetterPath),
    responses(
        (status = 200, description = "The dead letter", body = DeadLetterDetail),
        (status = 400, description = "A bad id", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 404, description = "No such dead letter (never, or shed since)", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "The store cannot be read", body = ErrorBody),
    )
)]
pub async fn one(
    state: web::Data<V1State>,
    path: web::Path<DeadLetterPath>,
) -> Result<HttpResponse, ApiError> {
    let id = path.id;
    if id < 1 {
        return Err(ApiError::invalid_path(
            "a dead letter's id is a positive integer",
        ));
    }
    let reader = state.reader.clone();
    let found = web::block(move || reader.dead_letter(id))
        .await
        .map_err(ApiError::store_unavailable)?
        .map_err(ApiError::store_unavailable)?;
    let Some(StoredDeadLetter { summary, payload }) = found else {
        return Err(ApiError::not_found(format!(
            "no dead letter {id} (never, or shed since to keep within store.dead_letter_quota)"
        )));
    };
    let (payload, payload_encoding) = match String::from_utf8(payload) {
        Ok(text) => (text, PayloadEncoding::Utf8),
        Err(e) => (
            base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
            PayloadEncoding::Base64,
        ),
    };
    ok_json(&DeadLetterDetail {
        summary: item(summary),
        payload,
        payload_encoding,
    })
}

fn item(d: DeadLetterSummary) -> DeadLetterItem {
    DeadLetterItem {
        id: d.id,
        received_at: d.received_at,
        client_id: d.client_id,
        topic: d.topic,
        reason: d.reason,
        payload_bytes: d.payload_bytes,
    }
}
