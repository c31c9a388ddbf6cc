//! [`StoredKey`] and [`PreviousSecret`]: what a store holds for one key.

use std::time::SystemTime;

use crate::identity::Identity;
use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::limit::{Quota, RateLimit};

/// What a store holds for one key: its hash, who it speaks for, and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredKey {
    /// The hash of the whole key, from [`KeyHasher`](crate::KeyHasher).
    pub hash: KeyHash,
    /// The identity handed to handlers when the key is valid.
    pub identity: Identity,
    /// Whether the key has been revoked. Revocation is permanent.
    pub revoked: bool,
    /// When the key stops working, if ever.
    pub expires_at: Option<SystemTime>,
    /// The secret replaced by the last regeneration, while its grace period lasts.
    pub previous: Option<PreviousSecret>,
    /// Whether the key is paused: refused like a revoked key, until it is enabled again.
    pub disabled: bool,
    /// The key's own rate limit, in place of the layer's default.
    pub rate_limit: Option<RateLimit>,
    /// The key's quota of uses.
    pub quota: Option<Quota>,
}

/// A replaced secret that stays valid until a deadline, so clients can roll over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousSecret {
    /// The hash of the replaced key.
    pub hash: KeyHash,
    /// The first instant at which the replaced key no longer works.
    pub valid_until: SystemTime,
}

impl StoredKey {
    /// A live key with no expiry.
    pub fn new(hash: KeyHash, identity: Identity) -> Self {
        Self {
            hash,
            identity,
            revoked: false,
            expires_at: None,
            previous: None,
            disabled: false,
            rate_limit: None,
            quota: None,
        }
    }

    /// Sets when the key expires.
    pub fn with_expires_at(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Marks the key revoked.
    pub fn with_revoked(mut self, revoked: bool) -> Self {
        self.revoked = revoked;
        self
    }

    /// Pauses the key.
    pub fn with_disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Gives the key a rate limit of its own.
    pub fn with_rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// Gives the key a quota of uses.
    pub fn with_quota(mut self, quota: Option<Quota>) -> Self {
        self.quota = quota;
        self
    }

    /// Keeps a replaced secret valid until its deadline.
    pub fn with_previous(mut self, previous: PreviousSecret) -> Self {
        self.previous = Some(previous);
        self
    }

    /// The key's id (from its identity).
    pub fn id(&self) -> KeyId {
        self.identity.key_id()
    }
}
