//! [`Rejection`]: why the layer refused a request, with [`InvalidKey`] and
//! [`Insufficient`].

use std::fmt;

use http::StatusCode;

use crate::audit::event::Reason;
use crate::key::format::MalformedKey;
use crate::policy::limit::{LimitError, LimitKind, LimitRefusal};
use crate::store::error::StoreError;

/// Why the layer refused a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejection {
    /// No credential in any configured source: 401 with a bare challenge.
    Missing,
    /// A credential that does not authenticate: 401 `invalid_token`.
    Invalid(InvalidKey),
    /// More than one credential (a repeated header, or two sources): 400 `invalid_request`.
    Ambiguous,
    /// A valid key that does not grant this request: 403 `insufficient_scope`.
    Forbidden(Insufficient),
    /// The store failed or timed out: 503 with `Retry-After`.
    Unavailable(StoreError),
    /// A verified key over a rate limit or out of quota: 429 with `Retry-After` and the
    /// `RateLimit` fields.
    Limited(LimitRefusal),
    /// The limiter could not decide (its server is unreachable): 503 with `Retry-After`.
    LimiterUnavailable(LimitError),
}

/// What a valid key lacks for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Insufficient {
    /// The key is bound to another space than the one the request targets.
    Space,
    /// The key lacks this scope.
    Scope(String),
}

impl Rejection {
    /// The HTTP status this rejection is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::Invalid(_) => StatusCode::UNAUTHORIZED,
            Self::Ambiguous => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) | Self::LimiterUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The audit reason: as precise as the layer knows it.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Missing => Reason::Missing,
            Self::Ambiguous => Reason::Ambiguous,
            Self::Invalid(InvalidKey::Malformed(malformed)) => Reason::Malformed(*malformed),
            Self::Invalid(InvalidKey::Unknown) => Reason::Unknown,
            Self::Invalid(InvalidKey::WrongSecret) => Reason::WrongSecret,
            Self::Invalid(InvalidKey::Revoked) => Reason::Revoked,
            Self::Invalid(InvalidKey::Expired) => Reason::Expired,
            Self::Invalid(InvalidKey::Disabled) => Reason::Disabled,
            Self::Forbidden(Insufficient::Space) => Reason::WrongSpace,
            Self::Forbidden(Insufficient::Scope(scope)) => Reason::MissingScope(scope.clone()),
            Self::Unavailable(StoreError::Timeout(_)) => Reason::StoreTimeout,
            Self::Unavailable(_) => Reason::StoreError,
            Self::Limited(refusal) => match refusal.kind {
                LimitKind::RateLimited => Reason::RateLimited,
                LimitKind::QuotaExhausted => Reason::QuotaExhausted,
            },
            Self::LimiterUnavailable(_) => Reason::LimiterError,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no API key was presented"),
            Self::Invalid(reason) => write!(f, "invalid API key: {reason}"),
            Self::Ambiguous => f.write_str("more than one API key was presented"),
            Self::Forbidden(Insufficient::Space) => {
                f.write_str("the API key is bound to another space")
            }
            Self::Forbidden(Insufficient::Scope(scope)) => {
                write!(f, "the API key lacks scope {scope}")
            }
            Self::Unavailable(_) => f.write_str("the key store is unavailable"),
            Self::Limited(refusal) => match refusal.kind {
                LimitKind::RateLimited => f.write_str("the API key is over its rate limit"),
                LimitKind::QuotaExhausted => f.write_str("the API key's quota is used up"),
            },
            Self::LimiterUnavailable(_) => f.write_str("the rate limiter is unavailable"),
        }
    }
}

impl std::error::Error for Rejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(reason) => Some(reason),
            Self::Unavailable(error) => Some(error),
            Self::LimiterUnavailable(error) => Some(error),
            _ => None,
        }
    }
}

/// The precise reason a presented key is invalid. Never sent to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidKey {
    /// The key failed the format check; the store was not consulted.
    #[error("malformed: {0}")]
    Malformed(MalformedKey),
    /// No key with this id exists.
    #[error("unknown key id")]
    Unknown,
    /// A key with this id exists, but the secret does not match.
    #[error("wrong secret")]
    WrongSecret,
    /// The key was revoked.
    #[error("revoked")]
    Revoked,
    /// The key has expired.
    #[error("expired")]
    Expired,
    /// The key is paused ([`KeyEdit::disable`](crate::KeyEdit::disable)).
    #[error("disabled")]
    Disabled,
}
