//! [`Limiter`]: how much a verified key may do, asked by the layer after verification and
//! before the inner service, with the verdict's types.
//!
//! The layer asks only for a key whose secret matched and whose state let it in, so a
//! forged or invalid key never spends anyone's budget. A limiter answers synchronously
//! when it can (the in-process [`LocalLimiter`](crate::LocalLimiter)) and with a future
//! when it must ask a server (the Redis limiter).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use crate::identity::Identity;
use crate::limit::{Quota, RateLimit};

/// The limits a limiter applies besides a key's own: a default rate for keys without one,
/// and rates shared by every key of one user or of one space.
///
/// ```
/// use keygate::{RateLimit, RateLimits};
///
/// let limits = RateLimits::new()
///     .per_key(RateLimit::per_second(10)?)
///     .per_user(RateLimit::per_minute(1_000)?);
/// assert_eq!(limits.key_default(), Some(RateLimit::per_second(10)?));
/// # Ok::<(), keygate::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    per_key: Option<RateLimit>,
    per_user: Option<RateLimit>,
    per_space: Option<RateLimit>,
}

impl RateLimits {
    /// No limits beyond the keys' own.
    pub fn new() -> Self {
        Self::default()
    }

    /// The rate of every key that has none of its own ([`KeyEdit::rate_limit`]).
    ///
    /// [`KeyEdit::rate_limit`]: crate::KeyEdit::rate_limit
    pub fn per_key(mut self, limit: RateLimit) -> Self {
        self.per_key = Some(limit);
        self
    }

    /// A rate shared by all keys of one user.
    pub fn per_user(mut self, limit: RateLimit) -> Self {
        self.per_user = Some(limit);
        self
    }

    /// A rate shared by all keys bound to one space.
    pub fn per_space(mut self, limit: RateLimit) -> Self {
        self.per_space = Some(limit);
        self
    }

    /// The default rate per key.
    pub fn key_default(&self) -> Option<RateLimit> {
        self.per_key
    }

    /// The rate per user.
    pub fn user(&self) -> Option<RateLimit> {
        self.per_user
    }

    /// The rate per space.
    pub fn space(&self) -> Option<RateLimit> {
        self.per_space
    }

    /// The buckets one request draws from: its key's (own limit, else the default), its
    /// user's and its space's, each with the limit that applies.
    pub(crate) fn buckets<'a>(
        &self,
        identity: &'a Identity,
        own: Option<RateLimit>,
    ) -> impl Iterator<Item = (Bucket<'a>, RateLimit)> + use<'a> {
        let key = own
            .or(self.per_key)
            .map(|limit| (Bucket::Key(identity), limit));
        let user = self
            .per_user
            .map(|limit| (Bucket::User(identity.user()), limit));
        let space = identity
            .space()
            .zip(self.per_space)
            .map(|(space, limit)| (Bucket::Space(space), limit));
        key.into_iter().chain(user).chain(space)
    }
}

/// Whose budget a request draws from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bucket<'a> {
    Key(&'a Identity),
    User(&'a str),
    Space(&'a str),
}

impl Bucket<'_> {
    /// The policy's name in the `RateLimit` fields.
    pub(crate) fn policy(&self) -> Policy {
        match self {
            Self::Key(_) => Policy::Key,
            Self::User(_) => Policy::User,
            Self::Space(_) => Policy::Space,
        }
    }
}

/// What one request asks a limiter.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct LimitRequest<'a> {
    /// The verified key.
    pub identity: &'a Identity,
    /// The key's own rate limit, in place of the default.
    pub rate_limit: Option<RateLimit>,
    /// The key's quota.
    pub quota: Option<Quota>,
    /// The time of the decision.
    pub now: SystemTime,
}

/// Which policy a [`LimitStatus`] is about: its name in the `RateLimit` and
/// `RateLimit-Policy` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// The key's own rate (or the default per key).
    Key,
    /// The rate shared by the user's keys.
    User,
    /// The rate shared by the space's keys.
    Space,
    /// The key's quota.
    Quota,
}

impl Policy {
    /// The policy's name: `key`, `user`, `space` or `quota`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::User => "user",
            Self::Space => "space",
            Self::Quota => "quota",
        }
    }
}

/// Where one policy stands after a request: what the `RateLimit-Policy` and `RateLimit`
/// fields say (draft-ietf-httpapi-ratelimit-headers-10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitStatus {
    /// The policy.
    pub policy: Policy,
    /// Requests the policy allows per window (`q`): a rate's burst, a quota's limit.
    pub quota: u64,
    /// The window (`w`): the time a rate takes to refill its burst, a quota's period;
    /// `None` for a quota that never refills.
    pub window: Option<Duration>,
    /// Requests left now (`r`).
    pub remaining: u64,
    /// Until the policy is whole again (`t`); `None` for a quota that never refills.
    pub reset: Option<Duration>,
}

impl LimitStatus {
    /// A rate's status: the burst is its quota, and it refills in `burst × interval`.
    pub(crate) fn rate(policy: Policy, limit: RateLimit, remaining: u64, reset: Duration) -> Self {
        Self {
            policy,
            quota: u64::from(limit.burst()),
            window: Some(limit.interval().saturating_mul(limit.burst())),
            remaining,
            reset: Some(reset),
        }
    }

    /// A quota's status after `used` uses in the period `now` falls in.
    pub(crate) fn quota(quota: Quota, used: u64, now: SystemTime) -> Self {
        let next = quota.next_refill(now);
        Self {
            policy: Policy::Quota,
            quota: quota.limit(),
            window: next.map(|_| quota.period_length(now)),
            remaining: quota.limit().saturating_sub(used),
            reset: next.map(|at| at.duration_since(now).unwrap_or_default()),
        }
    }
}

/// Why a limiter refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitKind {
    /// A rate was exceeded: retry after `retry_after`.
    RateLimited,
    /// The key's quota is used up until it refills.
    QuotaExhausted,
}

/// A refusal: 429 with `Retry-After` and the refusing policy's `RateLimit` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitRefusal {
    /// Which limit refused.
    pub kind: LimitKind,
    /// When to retry: `None` only for a quota that never refills, where retrying never
    /// helps (the 429 then has no `Retry-After`).
    pub retry_after: Option<Duration>,
    /// The refusing policy.
    pub status: LimitStatus,
}

/// A limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitVerdict {
    /// Let it through; the status of the policy closest to its limit, if any applied.
    Allow(Option<LimitStatus>),
    /// Refuse it with 429.
    Refuse(LimitRefusal),
}

/// A limiter that could not decide (its server is unreachable): the request gets 503.
#[derive(Debug, thiserror::Error)]
#[error("the rate limiter is unavailable")]
pub struct LimitError {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl LimitError {
    /// Wraps the backend's error, kept as the source.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

/// A decision in flight.
pub type LimitFuture = Pin<Box<dyn Future<Output = Result<LimitVerdict, LimitError>> + Send>>;

/// A limiter's answer, now or later.
#[non_exhaustive]
pub enum LimitCheck {
    /// Decided without waiting.
    Ready(Result<LimitVerdict, LimitError>),
    /// To be awaited.
    Pending(LimitFuture),
}

impl fmt::Debug for LimitCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ready(verdict) => f.debug_tuple("Ready").field(verdict).finish(),
            Self::Pending(_) => f.write_str("Pending"),
        }
    }
}

/// Decides whether a verified key may go on: rate limits and quotas.
///
/// Set one with [`Keygate::with_limiter`](crate::Keygate::with_limiter). It is asked once
/// per request that passed verification, space and state checks; a refusal gets 429, an
/// error 503, and neither reaches the inner service.
pub trait Limiter: Send + Sync + fmt::Debug + 'static {
    /// Counts one request of `request.identity` and says whether it may go on.
    fn check(&self, request: LimitRequest<'_>) -> LimitCheck;
}
