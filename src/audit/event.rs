//! [`AuditEvent`]: one authentication decision, with its [`Outcome`] and [`Reason`].

use std::fmt;
use std::time::SystemTime;

use http::{Method, Uri};

use crate::identity::Identity;
use crate::key::format::MalformedKey;
use crate::key::id::KeyId;

/// One authentication decision.
///
/// Events never hold a secret: only the non-secret key id, the identity it belongs to,
/// and the request's method and path (without its query string, which may carry
/// credentials of other kinds).
#[derive(Clone)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When the decision was made, by the layer's clock.
    pub at: SystemTime,
    /// What was decided, with the precise reason for a denial.
    pub outcome: Outcome,
    /// The presented key's id, once the key was well-formed.
    pub key_id: Option<KeyId>,
    /// The identity the key id belongs to, when the store knew it. For a denial this names
    /// the key's owner, not a caller who proved to be them.
    pub identity: Option<Identity>,
    /// The space the request targeted, when a space resolver named one; at most 512
    /// bytes of it.
    pub target_space: Option<String>,
    /// The request method.
    pub method: Method,
    /// A copy of the path. Not the `Uri` itself: hyper's `Uri` can be a slice of the
    /// whole request head, credential lines included, and a queued event must not keep
    /// that buffer alive.
    path: Box<str>,
}

/// Longest path kept in an event, in bytes; longer paths are cut at a char boundary.
pub(crate) const MAX_PATH_LEN: usize = 512;

/// Longest target space kept in an event, in bytes. A resolver may read the space from a
/// header or a path segment of any length, and up to a queue's worth of events wait in
/// memory, so each must stay small.
const MAX_SPACE_LEN: usize = 512;

impl AuditEvent {
    pub(crate) fn new(at: SystemTime, outcome: Outcome, method: &Method, uri: &Uri) -> Self {
        Self {
            at,
            outcome,
            key_id: None,
            identity: None,
            target_space: None,
            method: method.clone(),
            path: truncate(uri.path(), MAX_PATH_LEN).into(),
        }
    }

    /// Records the space the request targeted, cut to 512 bytes.
    pub(crate) fn set_target_space(&mut self, space: Option<String>) {
        self.target_space = space.map(|mut space| {
            space.truncate(truncate(&space, MAX_SPACE_LEN).len());
            space
        });
    }

    /// The request path, without the query string.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The user the key belongs to, when known.
    pub fn user(&self) -> Option<&str> {
        self.identity.as_ref().map(Identity::user)
    }

    /// The space the key is bound to, when known and bound.
    pub fn space(&self) -> Option<&str> {
        self.identity.as_ref().and_then(Identity::space)
    }
}

impl fmt::Debug for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditEvent")
            .field("at", &self.at)
            .field("outcome", &self.outcome)
            .field("key_id", &self.key_id)
            .field("user", &self.user())
            .field("space", &self.space())
            .field("target_space", &self.target_space)
            .field("method", &self.method)
            .field("path", &self.path())
            .finish()
    }
}

/// `text` cut to at most `max` bytes, at a char boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What the layer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A valid key; the request went on.
    Allowed,
    /// The replaced secret of a regenerated key, inside its grace period; the request
    /// went on. Watch these to see who still has to roll over.
    AllowedByPreviousSecret,
    /// No credential, and the layer admits anonymous callers; the request went on.
    Anonymous,
    /// A CORS preflight let through without a key.
    Preflight,
    /// The request was refused.
    Denied(Reason),
}

impl Outcome {
    /// Whether the request went on to the inner service.
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Self::Denied(_))
    }
}

/// Why a request was refused: the precise reason the client is never told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// No credential.
    Missing,
    /// More than one credential.
    Ambiguous,
    /// The key failed the format check.
    Malformed(MalformedKey),
    /// No key has this id.
    Unknown,
    /// The id exists; the secret does not match.
    WrongSecret,
    /// The key is revoked.
    Revoked,
    /// The key has expired.
    Expired,
    /// The key is paused.
    Disabled,
    /// The key is bound to another space than the request targets.
    WrongSpace,
    /// The key lacks the scope the route requires.
    MissingScope(String),
    /// The store failed.
    StoreError,
    /// The store did not answer in time.
    StoreTimeout,
    /// The key is over a rate limit.
    RateLimited,
    /// The key's quota is used up.
    QuotaExhausted,
    /// The limiter could not decide.
    LimiterError,
}

impl Reason {
    /// A short, stable name for logs and metrics: `missing`, `wrong_secret`, …
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Ambiguous => "ambiguous",
            Self::Malformed(_) => "malformed",
            Self::Unknown => "unknown",
            Self::WrongSecret => "wrong_secret",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Disabled => "disabled",
            Self::WrongSpace => "wrong_space",
            Self::MissingScope(_) => "missing_scope",
            Self::StoreError => "store_error",
            Self::StoreTimeout => "store_timeout",
            Self::RateLimited => "rate_limited",
            Self::QuotaExhausted => "quota_exhausted",
            Self::LimiterError => "limiter_error",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(outcome: Outcome) -> AuditEvent {
        AuditEvent::new(
            SystemTime::UNIX_EPOCH,
            outcome,
            &Method::GET,
            &Uri::from_static("/x?k=v"),
        )
    }

    #[test]
    fn long_paths_are_cut_to_the_bound() {
        let long = format!("/{}", "é".repeat(600));
        let uri: Uri = long.parse().unwrap();
        let event = AuditEvent::new(SystemTime::UNIX_EPOCH, Outcome::Allowed, &Method::GET, &uri);
        // "/" then two-byte chars: byte 512 falls inside one, so the cut lands at 511.
        assert_eq!(event.path().len(), MAX_PATH_LEN - 1);
    }

    #[test]
    fn debug_shows_the_path_but_not_the_query() {
        let debug = format!("{:?}", event(Outcome::Allowed));
        assert!(debug.contains("\"/x\""));
        assert!(!debug.contains("k=v"));
    }
}
