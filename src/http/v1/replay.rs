//! Replaying dead letters (admin tokens only): each goes through today's processors and
//! rules again, and leaves the dead letters only if now accepted, in the same transaction
//! as its readings come in; one refused again stays, answered with today's reason.
//!
//! - `POST /api/v1/dead-letters/{id}/replay`: one;
//! - `POST /api/v1/dead-letters/replay`: those matching a filter, at most `limit` (and
//!   `replay.max_rows`) per call, in id order, with `next_after` to go on from.

use actix_web::{web, HttpResponse};
use eliot_actors::{DeadLetterFilter, ReplayError, ReplayOutcome, Replayed};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::dead_letters::DeadLetterPath;
use super::error::{ApiError, ErrorBody};
use super::{integers, ok_json, params, V1State};

/// Longest `reason_prefix`, in characters.
const MAX_REASON_PREFIX: usize = 256;
/// The largest `limit` asked (`replay.max_rows` may be up to this).
const MAX_LIMIT: u32 = 100_000;

/// What became of a dead letter.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Accepted now: its readings are stored and it left the dead letters.
    Accepted,
    /// Refused again (today's reason in `reason`): it stays.
    Rejected,
    /// Gone meanwhile (replayed, or shed) before its turn.
    Gone,
}

/// One dead letter's replay.
#[derive(Serialize, ToSchema)]
pub struct ReplayResult {
    #[schema(example = 42)]
    pub id: i64,
    pub outcome: Outcome,
    /// Readings stored (when accepted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readings: Option<usize>,
    /// Why it was refused again (when rejected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<Replayed> for ReplayResult {
    fn from(r: Replayed) -> ReplayResult {
        let (outcome, readings, reason) = match r.outcome {
            ReplayOutcome::Accepted { readings } => (Outcome::Accepted, Some(readings), None),
            ReplayOutcome::Rejected { reason } => (Outcome::Rejected, None, Some(reason)),
            ReplayOutcome::Gone => (Outcome::Gone, None, None),
        };
        ReplayResult {
            id: r.id,
            outcome,
            readings,
            reason,
        }
    }
}

/// Which dead letters to replay; every field optional.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayFilter {
    /// Only those of this device (the device id they were stored with).
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,64}$", example = "robot_001")]
    device: Option<String>,
    /// Only those whose reason starts with this text.
    #[schema(min_length = 1, max_length = 256)]
    reason_prefix: Option<String>,
    /// Only those received at or after this time (RFC 3339).
    #[schema(format = DateTime)]
    from: Option<String>,
    /// Only those received before this time (RFC 3339).
    #[schema(format = DateTime)]
    to: Option<String>,
    /// Only those with an id above this: the `next_after` of the previous call.
    #[schema(minimum = 0, maximum = 9007199254740991_i64)]
    #[serde(default, deserialize_with = "integers::optional")]
    after: Option<i64>,
    /// Dead letters this call takes up at most: `replay.max_rows` by default, and at
    /// most (a larger limit is taken as `replay.max_rows`).
    #[schema(minimum = 1, maximum = 100000)]
    #[serde(default, deserialize_with = "integers::optional")]
    limit: Option<u32>,
}

/// What a replay by filter did.
#[derive(Serialize, ToSchema)]
pub struct ReplayBatch {
    /// In id order.
    pub replayed: Vec<ReplayResult>,
    pub accepted: usize,
    pub rejected: usize,
    pub gone: usize,
    /// More may match past this id: pass it as `after` (with the same filter) to go on;
    /// `null`: none left.
    pub next_after: Option<i64>,
}

fn replay_error(e: ReplayError) -> ApiError {
    match e {
        ReplayError::TooManyIds { .. } => ApiError::invalid_body(e.to_string()),
        ReplayError::NotStored(why) => ApiError::store_unavailable(why),
    }
}

/// Replays one dead letter.
#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/{id}/replay",
    tag = "dead letters",
    params(DeadLetterPath),
    responses(
        (status = 200, description = "Accepted now, or refused again", body = ReplayResult),
        (status = 400, description = "A bad id", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such dead letter (never, replayed, or shed)", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "The store cannot be read or written", body = ErrorBody),
    )
)]
pub async fn one(
    state: web::Data<V1State>,
    path: web::Path<DeadLetterPath>,
) -> Result<HttpResponse, ApiError> {
    let id = path.id;
    if !(1..=params::MAX_ID).contains(&id) {
        return Err(ApiError::invalid_path(
            "a dead letter's id is a positive integer",
        ));
    }
    let replayed = state.replayer.replay(&[id]).await.map_err(replay_error)?;
    match replayed.into_iter().next() {
        Some(r) if r.outcome != ReplayOutcome::Gone => ok_json(&ReplayResult::from(r)),
        _ => Err(ApiError::not_found(format!(
            "no dead letter {id} (never, replayed already, or shed)"
        ))),
    }
}

/// Replays the dead letters matching a filter, a bounded page per call.
#[utoipa::path(
    post,
    path = "/api/v1/dead-letters/replay",
    tag = "dead letters",
    request_body = ReplayFilter,
    responses(
        (status = 200, description = "What became of each, and where to go on", body = ReplayBatch),
        (status = 400, description = "A bad body", body = ErrorBody),
        (status = 401, description = "No token, or not one Eliot keeps", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 413, description = "A body over 64 KiB", body = ErrorBody),
        (status = 415, description = "A body that is not JSON", body = ErrorBody),
        (status = 429, description = "Too many bad tokens from this address", body = ErrorBody),
        (status = 503, description = "The store cannot be read or written", body = ErrorBody),
    )
)]
pub async fn matching(
    state: web::Data<V1State>,
    body: web::Json<ReplayFilter>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body
        .device
        .as_deref()
        .is_some_and(|d| params::device_id(d).is_err())
    {
        return Err(ApiError::invalid_body(
            "device: 1 to 64 letters, digits, `_`, `.`, `:` or `-`",
        ));
    }
    if body
        .reason_prefix
        .as_ref()
        .is_some_and(|r| r.is_empty() || r.chars().count() > MAX_REASON_PREFIX)
    {
        return Err(ApiError::invalid_body(format!(
            "reason_prefix: 1 to {MAX_REASON_PREFIX} characters"
        )));
    }
    let (from, to) = params::window(body.from.as_deref(), body.to.as_deref())
        .map_err(|e| ApiError::invalid_body(e.message))?;
    let after = body.after.unwrap_or(0);
    if !(0..=params::MAX_ID).contains(&after) {
        return Err(ApiError::invalid_body("after: a dead letter id, 0 or more"));
    }
    let max = state.replayer.settings().max_rows;
    let limit = match body.limit {
        None => max,
        Some(n @ 1..=MAX_LIMIT) => (n as usize).min(max),
        Some(_) => {
            return Err(ApiError::invalid_body(format!(
                "limit: 1 to {MAX_LIMIT} (and at most replay.max_rows, {max}, are taken)"
            )))
        }
    };
    let filter = DeadLetterFilter {
        device: body.device,
        reason_prefix: body.reason_prefix,
        from: Some(from),
        to: (to < params::END_MICROS).then_some(to),
    };
    let page = state
        .replayer
        .replay_matching(&filter, after, limit)
        .await
        .map_err(replay_error)?;
    let replayed: Vec<ReplayResult> = page.replayed.into_iter().map(Into::into).collect();
    let count = |o: fn(&Outcome) -> bool| replayed.iter().filter(|r| o(&r.outcome)).count();
    ok_json(&ReplayBatch {
        accepted: count(|o| matches!(o, Outcome::Accepted)),
        rejected: count(|o| matches!(o, Outcome::Rejected)),
        gone: count(|o| matches!(o, Outcome::Gone)),
        next_after: page.next_after,
        replayed,
    })
}
