//! Who may call `/api/v1`: checked before routing, for every path under it, so that no
//! handler added later can forget it.
//!
//! - Tokens configured: `Authorization: Bearer <token>` is required; none, or one not
//!   kept: 401 with `WWW-Authenticate: Bearer`. `GET` (and `HEAD`) need the `read` or
//!   `admin` role, every other method `admin`: a read token on a mutation is 403.
//! - No token configured: the API is served only because `http.listen` is a loopback
//!   address (configuration refuses any other without tokens), and every caller may do
//!   everything, as anyone on this machine could read the database.
//!
//! Bad tokens are rate-limited per client address (`api.bad_tokens_per_minute`, after a
//! burst of `api.bad_token_burst`): past it, 429 until the address's allowance refills, so guessing is slow even
//! before the 256 bits of a token make it hopeless.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, ResponseError};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;
use super::tokens::{Role, Tokens};

/// Addresses the rate limit tracks before it forgets those whose allowance is full again.
const TRACKED_ADDRESSES: usize = 10_000;

/// The check every `/api/v1` request passes first.
#[derive(Clone)]
pub struct Gate {
    tokens: Tokens,
    bad_tokens: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// The allowance, for the 429's message.
    bad_tokens_per_minute: NonZeroU32,
}

impl Gate {
    /// `bad_tokens`: how many bad tokens an address may present per minute, and in a burst.
    pub fn new(tokens: Tokens, (per_minute, burst): (NonZeroU32, NonZeroU32)) -> Gate {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Gate {
            tokens,
            bad_tokens: Arc::new(RateLimiter::keyed(quota)),
            bad_tokens_per_minute: per_minute,
        }
    }

    /// Whether a request with this method and `Authorization` header, from `peer`, may
    /// go on to its handler.
    pub fn admit(
        &self,
        method: &Method,
        authorization: Option<&header::HeaderValue>,
        peer: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        if self.tokens.is_empty() {
            return Ok(());
        }
        let needed = match *method == Method::GET || *method == Method::HEAD {
            true => Role::Read,
            false => Role::Admin,
        };
        let Some(authorization) = authorization else {
            return Err(ApiError::unauthorized(
                "this API needs a token: Authorization: Bearer <token>",
            ));
        };
        let presented = authorization
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        let role = presented.and_then(|token| self.tokens.role_of(token));
        let Some(role) = role else {
            self.count_bad_token(peer)?;
            return Err(ApiError::unauthorized(
                "the token is not one this Eliot knows (expected Authorization: Bearer <token>)",
            ));
        };
        if role < needed {
            return Err(ApiError::forbidden(format!(
                "a {} token may not do this: {method} needs an {} token",
                role.name(),
                needed.name()
            )));
        }
        Ok(())
    }

    /// The dashboard's login: the role of `token`, or why not (a bad token counts against
    /// `peer`'s allowance as on the API). `None` when no token is configured: anyone on
    /// the loopback address the API is served on may do everything.
    pub fn login(&self, token: &str, peer: Option<IpAddr>) -> Result<Option<Role>, ApiError> {
        if self.tokens.is_empty() {
            return Ok(None);
        }
        match self.tokens.role_of(token.trim()) {
            Some(role) => Ok(Some(role)),
            None => {
                self.count_bad_token(peer)?;
                Err(ApiError::unauthorized(
                    "the token is not one this Eliot knows",
                ))
            }
        }
    }

    /// Whether tokens are configured (else the API and dashboard serve loopback only).
    pub fn open(&self) -> bool {
        self.tokens.is_empty()
    }

    fn count_bad_token(&self, peer: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(peer) = peer else { return Ok(()) };
        if self.bad_tokens.len() > TRACKED_ADDRESSES {
            self.bad_tokens.retain_recent();
        }
        self.bad_tokens.check_key(&peer).map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!(
                    "too many bad tokens from this address: at most {} a minute",
                    self.bad_tokens_per_minute
                ),
            )
        })
    }
}

/// The middleware around `/api/v1`.
pub async fn authenticate(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let gate = request.app_data::<web::Data<Gate>>().cloned();
    let verdict = match &gate {
        Some(gate) => gate.admit(
            request.method(),
            request.headers().get(header::AUTHORIZATION),
            request.peer_addr().map(|a| a.ip()),
        ),
        None => Err(ApiError::unauthorized("no authentication is configured")),
    };
    match verdict {
        Ok(()) => Ok(next.call(request).await?.map_into_boxed_body()),
        Err(error) => {
            let response = error.error_response();
            Ok(request.into_response(response))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tokens::HashedToken;
    use super::*;

    fn bearer(token: &str) -> header::HeaderValue {
        header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap()
    }

    /// 30 a minute after a burst of 10 (the defaults).
    const LIMIT: (NonZeroU32, NonZeroU32) =
        (NonZeroU32::new(30).unwrap(), NonZeroU32::new(10).unwrap());

    #[test]
    fn roles_decide_by_method_and_bad_tokens_are_rate_limited_per_address() {
        let gate = Gate::new(
            Tokens::new(vec![
                HashedToken::of(Role::Read, "reader-token-0123456789"),
                HashedToken::of(Role::Admin, "admin-token-0123456789"),
            ]),
            LIMIT,
        );
        let here = Some(IpAddr::from([127, 0, 0, 1]));
        let code = |method: Method, auth: Option<header::HeaderValue>| {
            gate.admit(&method, auth.as_ref(), here)
                .err()
                .map(|e| e.status.as_u16())
        };
        assert_eq!(code(Method::GET, None), Some(401));
        assert_eq!(
            code(Method::GET, Some(bearer("reader-token-0123456789"))),
            None
        );
        assert_eq!(
            code(Method::POST, Some(bearer("reader-token-0123456789"))),
            Some(403)
        );
        assert_eq!(
            code(Method::DELETE, Some(bearer("admin-token-0123456789"))),
            None
        );
        let basic = header::HeaderValue::from_static("Basic cmVhZGVyOng=");
        assert_eq!(code(Method::GET, Some(basic)), Some(401));
        let mut statuses = Vec::new();
        for _ in 0..LIMIT.1.get() + 5 {
            statuses.push(code(Method::GET, Some(bearer("guess-0123456789"))).unwrap());
        }
        assert!(statuses.contains(&429), "{statuses:?}");
        // Another address is not slowed by this one's guesses, and good tokens still pass.
        let elsewhere = Some(IpAddr::from([127, 0, 0, 2]));
        let other = gate.admit(&Method::GET, Some(&bearer("guess-0123456789")), elsewhere);
        assert_eq!(other.unwrap_err().status.as_u16(), 401);
        assert_eq!(
            code(Method::GET, Some(bearer("admin-token-0123456789"))),
            None
        );
        assert!(Gate::new(Tokens::default(), LIMIT)
            .admit(&Method::POST, None, here)
            .is_ok());
    }
}
