//! [`KeyRow`]: one key as a SQL query returns it, and what it becomes for the layer and
//! for listings.

use std::time::SystemTime;

use crate::identity::Identity;
use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::limit::{Quota, RateLimit};
use crate::record::KeyRecord;
use crate::scopes::Scopes;
use crate::store::sql::types::{Timestamp, UserId};
use crate::store::stored::{PreviousSecret, StoredKey};

/// One key as a SQL query returns it: read any row with these columns (by name; others
/// are ignored, so `SELECT *` of a table of your own will do) with
/// `sqlx::query_as::<_, KeyRow>`, then hand it out with [`KeyRow::into_stored`] or
/// [`KeyRow::into_record`].
///
/// | column | type | holds |
/// |---|---|---|
/// | `id` | text | the [`KeyId`], 16 alphanumerics; the primary key |
/// | `hash` | bytes (`BYTEA`, `BLOB`) | the 32-byte [`KeyHash`] |
/// | `user_id` | text or integer | the owner; an integer id reads as its decimal text |
/// | `space_id` | text, nullable | the one space the key is bound to |
/// | `name` | text | the display name |
/// | `scopes` | text | [`Scopes`], space-separated |
/// | `preview` | text | what listings show of the key |
/// | `created_at` | [`Timestamp`] | creation |
/// | `expires_at` | [`Timestamp`], nullable | expiry |
/// | `revoked_at` | [`Timestamp`], nullable | revocation |
/// | `previous_hash` | bytes, nullable | the replaced secret's hash, during a grace period |
/// | `previous_valid_until` | [`Timestamp`], nullable | the end of that grace period |
/// | `last_used_at` | [`Timestamp`], nullable; may be absent | latest flushed use |
/// | `use_count` | 64-bit integer; may be absent | flushed uses |
///
/// A [`Timestamp`] is `TIMESTAMPTZ` in PostgreSQL and integer microseconds since the Unix
/// epoch in SQLite. Values that do not decode (a hash of another length, an invalid id or
/// scope) fail the query with sqlx's decode error, which a store maps to
/// [`StoreError::Backend`](crate::StoreError::Backend) (503): a corrupt row never
/// authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRow {
    /// The key's id.
    pub id: KeyId,
    /// The hash of its current secret.
    pub hash: KeyHash,
    /// The owner: a text column, or an integer id (`INTEGER`, `INT4`, `INT8`) read as its
    /// decimal text.
    pub user_id: String,
    /// The one space it is bound to.
    pub space_id: Option<String>,
    /// Its display name.
    pub name: String,
    /// Its scopes.
    pub scopes: Scopes,
    /// What listings show of it.
    pub preview: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it expires.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// The replaced secret's hash, while its grace period lasts.
    pub previous_hash: Option<KeyHash>,
    /// When that grace period ends.
    pub previous_valid_until: Option<Timestamp>,
    /// The latest use written back to the store.
    pub last_used_at: Option<Timestamp>,
    /// Uses written back to the store.
    pub use_count: i64,
    /// Paused; `false` when the column is absent.
    pub disabled: bool,
    /// The key's rate limit: requests per period, when set.
    pub rate_count: Option<i64>,
    /// The rate limit's period, in milliseconds.
    pub rate_period_ms: Option<i64>,
    /// The rate limit's burst.
    pub rate_burst: Option<i64>,
    /// The key's quota: uses per refill period, when set.
    pub quota_limit: Option<i64>,
    /// When the quota refills: `never`, `day` or `month`.
    pub quota_refill: Option<String>,
}

impl<'r, R> sqlx::FromRow<'r, R> for KeyRow
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    KeyId: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    KeyHash: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Scopes: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    UserId: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Timestamp: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        // The usage columns may be absent: a store that tracks no usage needs none.
        fn absent_is_none<'r, R, T>(
            row: &'r R,
            column: &'static str,
        ) -> Result<Option<T>, sqlx::Error>
        where
            R: sqlx::Row,
            &'static str: sqlx::ColumnIndex<R>,
            Option<T>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        {
            match row.try_get(column) {
                Err(sqlx::Error::ColumnNotFound(_)) => Ok(None),
                found => found,
            }
        }
        Ok(Self {
            id: row.try_get("id")?,
            hash: row.try_get("hash")?,
            user_id: row.try_get::<UserId, _>("user_id")?.into(),
            space_id: row.try_get("space_id")?,
            name: row.try_get("name")?,
            scopes: row.try_get("scopes")?,
            preview: row.try_get("preview")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
            previous_hash: row.try_get("previous_hash")?,
            previous_valid_until: row.try_get("previous_valid_until")?,
            last_used_at: absent_is_none(row, "last_used_at")?,
            use_count: match row.try_get("use_count") {
                Err(sqlx::Error::ColumnNotFound(_)) => 0,
                found => found?,
            },
            // So may the columns of edits and limits, for a store that offers none.
            disabled: absent_is_none(row, "disabled")?.unwrap_or(false),
            rate_count: absent_is_none(row, "rate_count")?,
            rate_period_ms: absent_is_none(row, "rate_period_ms")?,
            rate_burst: absent_is_none(row, "rate_burst")?,
            quota_limit: absent_is_none(row, "quota_limit")?,
            quota_refill: absent_is_none(row, "quota_refill")?,
        })
    }
}

impl KeyRow {
    /// Who the key speaks for.
    pub fn identity(&self) -> Identity {
        let mut identity = Identity::new(self.id, self.user_id.as_str())
            .with_name(self.name.as_str())
            .with_scopes(self.scopes.clone());
        if let Some(space) = &self.space_id {
            identity = identity.with_space(space.as_str());
        }
        identity
    }

    /// The key's rate limit, from its three columns.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        match (self.rate_count, self.rate_period_ms, self.rate_burst) {
            (Some(count), Some(period), Some(burst)) => RateLimit::from_parts(count, period, burst),
            _ => None,
        }
    }

    /// The key's quota, from its two columns.
    pub fn quota(&self) -> Option<Quota> {
        let limit = self.quota_limit?;
        Quota::from_parts(limit, self.quota_refill.as_deref()?)
    }

    /// What the layer needs to verify the key.
    pub fn into_stored(self) -> StoredKey {
        let mut stored = StoredKey::new(self.hash, self.identity())
            .with_revoked(self.revoked_at.is_some())
            .with_disabled(self.disabled)
            .with_rate_limit(self.rate_limit())
            .with_quota(self.quota());
        stored.expires_at = self.expires_at.map(SystemTime::from);
        if let (Some(hash), Some(until)) = (self.previous_hash, self.previous_valid_until) {
            stored = stored.with_previous(PreviousSecret {
                hash,
                valid_until: until.0,
            });
        }
        stored
    }

    /// What a listing shows.
    pub fn into_record(self) -> KeyRecord {
        // A negative count cannot come from keygate's writes; read it as none.
        let use_count = u64::try_from(self.use_count).unwrap_or(0);
        let (rate_limit, quota) = (self.rate_limit(), self.quota());
        KeyRecord::new(self.identity(), self.preview, self.created_at.0)
            .with_disabled(self.disabled)
            .with_limits(rate_limit, quota)
            .with_expires_at(self.expires_at.map(SystemTime::from))
            .with_revoked_at(self.revoked_at.map(SystemTime::from))
            .with_usage(self.last_used_at.map(SystemTime::from), use_count)
    }
}

/// A use count as stored (saturating, as counts are).
pub(crate) fn count(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
