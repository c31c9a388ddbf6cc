//! [`KeyRecord`]: what a listing shows of a key. Never the secret, never the hash.

use std::time::SystemTime;

use crate::identity::Identity;
use crate::key::id::KeyId;
use crate::limit::{Quota, RateLimit};

/// A key as listed on an account page: name, id, preview and dates.
///
/// A record holds no secret and no hash, so it is safe to serialize to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRecord {
    /// Id, owner, space, scopes and name.
    pub identity: Identity,
    /// The prefix and the last four characters, e.g. `kg_live_...0bl1`.
    pub preview: String,
    /// When the key was created.
    pub created_at: SystemTime,
    /// When the key stops working, if ever.
    pub expires_at: Option<SystemTime>,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<SystemTime>,
    /// The latest successful use that has been flushed to the store.
    pub last_used_at: Option<SystemTime>,
    /// Successful uses flushed to the store.
    pub use_count: u64,
    /// Whether the key is paused.
    pub disabled: bool,
    /// The key's own rate limit.
    pub rate_limit: Option<RateLimit>,
    /// The key's quota of uses.
    pub quota: Option<Quota>,
}

impl KeyRecord {
    /// A fresh record: never used, not revoked.
    pub fn new(identity: Identity, preview: impl Into<String>, created_at: SystemTime) -> Self {
        Self {
            identity,
            preview: preview.into(),
            created_at,
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            use_count: 0,
            disabled: false,
            rate_limit: None,
            quota: None,
        }
    }

    /// Sets the expiry.
    pub fn with_expires_at(mut self, expires_at: Option<SystemTime>) -> Self {
        self.expires_at = expires_at;
        self
    }

    /// Sets the revocation time.
    pub fn with_revoked_at(mut self, revoked_at: Option<SystemTime>) -> Self {
        self.revoked_at = revoked_at;
        self
    }

    /// Sets the flushed usage.
    pub fn with_usage(mut self, last_used_at: Option<SystemTime>, use_count: u64) -> Self {
        self.last_used_at = last_used_at;
        self.use_count = use_count;
        self
    }

    /// Sets whether the key is paused.
    pub fn with_disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Sets the key's rate limit and quota.
    pub fn with_limits(mut self, rate_limit: Option<RateLimit>, quota: Option<Quota>) -> Self {
        self.rate_limit = rate_limit;
        self.quota = quota;
        self
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.identity.key_id()
    }

    /// Whether the key works at `now`: not revoked, not paused and not expired.
    pub fn is_active(&self, now: SystemTime) -> bool {
        self.revoked_at.is_none() && !self.disabled && self.expires_at.is_none_or(|at| now < at)
    }

    /// Whether the key can never authenticate again as it stands: revoked, or expired at
    /// `now`. Such a key is what the cap on keys per owner may reclaim.
    pub fn is_dead(&self, now: SystemTime) -> bool {
        self.revoked_at.is_some() || self.expires_at.is_some_and(|at| at <= now)
    }
}
