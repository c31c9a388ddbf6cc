//! [`KeyEdit`]: a change to what a key is, short of its secret.

use std::time::SystemTime;

use crate::limit::{Quota, RateLimit};
use crate::scopes::Scopes;
use crate::store::stored::StoredKey;

/// A change to a key: each field set is changed, the rest kept. Built with its methods:
///
/// ```
/// use keygate::{KeyEdit, RateLimit};
///
/// let edit = KeyEdit::new()
///     .rename("ci deploy (old)")
///     .disable()
///     .rate_limit(Some(RateLimit::per_minute(60)?));
/// assert_eq!(edit.disabled, Some(true));
/// # Ok::<(), keygate::ConfigError>(())
/// ```
///
/// A store applies it in one write ([`KeyStoreWrite::edit`](crate::KeyStoreWrite::edit)),
/// visible to the next lookup like a revocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyEdit {
    /// A new display name.
    pub name: Option<String>,
    /// A new expiry; `Some(None)` takes the expiry away.
    pub expires_at: Option<Option<SystemTime>>,
    /// New scopes.
    pub scopes: Option<Scopes>,
    /// Paused (`true`) or working again (`false`).
    pub disabled: Option<bool>,
    /// A new rate limit of the key's own; `Some(None)` leaves it to the layer's default.
    pub rate_limit: Option<Option<RateLimit>>,
    /// A new quota; `Some(None)` takes the quota away. Uses already counted in the current
    /// period stay counted.
    pub quota: Option<Option<Quota>>,
}

impl KeyEdit {
    /// An edit that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Renames the key.
    pub fn rename(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets (or, with `None`, takes away) the key's expiry.
    pub fn expires_at(mut self, at: Option<SystemTime>) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the key's scopes.
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// Pauses the key: it is refused (401, audited as `disabled`) until enabled.
    pub fn disable(mut self) -> Self {
        self.disabled = Some(true);
        self
    }

    /// Lets a paused key work again.
    pub fn enable(mut self) -> Self {
        self.disabled = Some(false);
        self
    }

    /// Sets (or, with `None`, takes away) the key's own rate limit.
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Sets (or, with `None`, takes away) the key's quota.
    pub fn quota(mut self, quota: Option<Quota>) -> Self {
        self.quota = Some(quota);
        self
    }

    /// Whether the edit changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Applies the edit to what a store holds for a key: the way a store that keeps
    /// [`StoredKey`]s whole implements [`KeyStoreWrite::edit`](crate::KeyStoreWrite::edit).
    pub fn apply(&self, key: &mut StoredKey) {
        if let Some(name) = &self.name {
            key.identity = key.identity.clone().with_name(name.as_str());
        }
        if let Some(expires_at) = self.expires_at {
            key.expires_at = expires_at;
        }
        if let Some(scopes) = &self.scopes {
            key.identity = key.identity.clone().with_scopes(scopes.clone());
        }
        if let Some(disabled) = self.disabled {
            key.disabled = disabled;
        }
        if let Some(rate_limit) = self.rate_limit {
            key.rate_limit = rate_limit;
        }
        if let Some(quota) = self.quota {
            key.quota = quota;
        }
    }
}
