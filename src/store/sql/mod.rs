//! SQL stores (sqlx): the row they share, its conversions, and embedded migrations.
//!
//! Both dialects keep one table, `keygate_keys`, keyed by the key id, with indexes on the
//! owner and the space. Times are microseconds since the Unix epoch (`BIGINT`), scopes a
//! space-separated string (scope tokens hold no spaces), so both dialects store the same
//! values and no date-time feature of sqlx is needed. Every query is parameterized.
//!
//! Migrations are versioned in a table of their own, `keygate_migrations`, rather than
//! sqlx's `_sqlx_migrations`, so they never collide with the migrations of the
//! application that shares the database.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::hash::KeyHash;
use crate::identity::{Identity, Scopes};
use crate::key::KeyId;
use crate::record::KeyRecord;
use crate::store::{Page, PreviousSecret, StoreError, StoredKey};

#[cfg(feature = "postgres")]
pub(crate) mod listen;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// The statements both dialects share (both accept `$n` placeholders).
pub(crate) mod statements {
    /// `SELECT` of every column of `keygate_keys`, then the rest of the statement.
    macro_rules! select_keys {
        ($($rest:expr),*) => {
            concat!(
                "SELECT id, hash, user_id, space_id, name, scopes, preview, created_at, \
                 expires_at, revoked_at, previous_hash, previous_valid_until, last_used_at, \
                 use_count FROM keygate_keys ",
                $($rest),*
            )
        };
    }

    /// The page of a listing: after the cursor `($2, $3)`, at most `$4` rows, in listing
    /// order. `$id` is how the dialect compares ids byte by byte.
    macro_rules! page {
        ($id:literal) => {
            concat!(
                " AND (created_at > $2 OR (created_at = $2 AND ",
                $id,
                " > $3)) ",
                "ORDER BY created_at, ",
                $id,
                " LIMIT $4"
            )
        };
    }

    /// One key by id.
    pub(crate) const FIND: &str = select_keys!("WHERE id = $1");
    /// A page of a user's keys (SQLite compares text byte by byte already).
    #[cfg(feature = "sqlite")]
    pub(crate) const SQLITE_BY_USER: &str = select_keys!("WHERE user_id = $1", page!("id"));
    /// A page of a space's keys.
    #[cfg(feature = "sqlite")]
    pub(crate) const SQLITE_BY_SPACE: &str = select_keys!("WHERE space_id = $1", page!("id"));
    /// A page of a user's keys (PostgreSQL would otherwise order ids by the database's
    /// collation, not byte by byte).
    #[cfg(feature = "postgres")]
    pub(crate) const PG_BY_USER: &str =
        select_keys!("WHERE user_id = $1", page!("id COLLATE \"C\""));
    /// A page of a space's keys.
    #[cfg(feature = "postgres")]
    pub(crate) const PG_BY_SPACE: &str =
        select_keys!("WHERE space_id = $1", page!("id COLLATE \"C\""));
    /// A new key.
    pub(crate) const INSERT: &str = "INSERT INTO keygate_keys (id, hash, user_id, space_id, name, \
         scopes, preview, created_at, expires_at, revoked_at, last_used_at, use_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    /// A new secret; the replaced hash moves to `previous_hash` when a deadline is given: `SET` reads
    /// the row as it was, so the write itself picks the secret it replaces.
    pub(crate) const REPLACE_SECRET: &str = "UPDATE keygate_keys SET hash = $2, preview = $3, \
         previous_hash = CASE WHEN $4 IS NULL THEN NULL ELSE hash END, \
         previous_valid_until = $4 WHERE id = $1";
    /// Removal of a key.
    pub(crate) const DELETE: &str = "DELETE FROM keygate_keys WHERE id = $1";
    /// Revocation: the first time is kept, the grace secret dropped.
    pub(crate) const REVOKE: &str = "UPDATE keygate_keys SET revoked_at = COALESCE(revoked_at, $2), \
         previous_hash = NULL, previous_valid_until = NULL WHERE id = $1";
    /// One key's usage (PostgreSQL writes a whole batch in one statement instead).
    #[cfg(feature = "sqlite")]
    pub(crate) const RECORD_USAGE: &str = "UPDATE keygate_keys SET use_count = use_count + $3, \
         last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $2 THEN $2 \
         ELSE last_used_at END WHERE id = $1";
    /// The migrations table.
    pub(crate) const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS keygate_migrations \
         (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";
    /// Whether a migration was applied.
    pub(crate) const MIGRATION_APPLIED: &str =
        "SELECT version FROM keygate_migrations WHERE version = $1";
    /// Records an applied migration.
    pub(crate) const MIGRATION_DONE: &str =
        "INSERT INTO keygate_migrations (version, applied_at) VALUES ($1, $2)";
}

/// The queries both dialects run the same way, over a pool of either.
pub(crate) struct Queries<'p, DB: sqlx::Database>(pub(crate) &'p sqlx::Pool<DB>);

impl<DB> Queries<'_, DB>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'r> KeyRow: sqlx::FromRow<'r, DB::Row>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    /// The row of key `id`.
    pub(crate) async fn find(&self, id: &KeyId) -> Result<Option<KeyRow>, StoreError> {
        sqlx::query_as(statements::FIND)
            .bind(id.as_str())
            .fetch_optional(self.0)
            .await
            .map_err(store_error)
    }

    /// Inserts a new key.
    pub(crate) async fn insert(&self, record: &KeyRecord, hash: KeyHash) -> Result<(), StoreError> {
        let identity = &record.identity;
        sqlx::query(statements::INSERT)
            .bind(identity.key_id().as_str())
            .bind(hash.as_bytes().as_slice())
            .bind(identity.user())
            .bind(identity.space())
            .bind(identity.name())
            .bind(scopes_text(identity.scopes()))
            .bind(record.preview.as_str())
            .bind(micros(record.created_at))
            .bind(record.expires_at.map(micros))
            .bind(record.revoked_at.map(micros))
            .bind(record.last_used_at.map(micros))
            .bind(count(record.use_count))
            .execute(self.0)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// The page of records a listing query returns for `value`.
    pub(crate) async fn list(
        &self,
        query: &'static str,
        value: &str,
        page: Page,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let (after_time, after_id) = match &page.after {
            Some(cursor) => (micros(cursor.created_at), cursor.id.as_str()),
            None => (i64::MIN, ""),
        };
        let rows: Vec<KeyRow> = sqlx::query_as(query)
            .bind(value)
            .bind(after_time)
            .bind(after_id)
            .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
            .fetch_all(self.0)
            .await
            .map_err(store_error)?;
        rows.into_iter().map(KeyRow::into_record).collect()
    }
}

/// One row of `keygate_keys`, as both dialects return it.
#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    id: String,
    hash: Vec<u8>,
    user_id: String,
    space_id: Option<String>,
    name: String,
    scopes: String,
    preview: String,
    created_at: i64,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    previous_hash: Option<Vec<u8>>,
    previous_valid_until: Option<i64>,
    last_used_at: Option<i64>,
    use_count: i64,
}

/// A row that cannot be read back: the database holds something keygate never wrote.
#[derive(Debug)]
struct CorruptRow(&'static str);

impl fmt::Display for CorruptRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt keygate_keys row: {}", self.0)
    }
}

impl std::error::Error for CorruptRow {}

fn corrupt(what: &'static str) -> StoreError {
    StoreError::backend(CorruptRow(what))
}

fn hash(bytes: &[u8]) -> Result<KeyHash, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| corrupt("hash is not 32 bytes"))?;
    Ok(KeyHash::from_bytes(bytes))
}

impl KeyRow {
    fn identity(&self) -> Result<Identity, StoreError> {
        let id = KeyId::parse(&self.id).map_err(|_| corrupt("invalid key id"))?;
        let scopes =
            Scopes::new(self.scopes.split_whitespace()).map_err(|_| corrupt("invalid scope"))?;
        let mut identity = Identity::new(id, self.user_id.as_str())
            .with_name(self.name.as_str())
            .with_scopes(scopes);
        if let Some(space) = &self.space_id {
            identity = identity.with_space(space.as_str());
        }
        Ok(identity)
    }

    /// What the layer needs to verify the key.
    pub(crate) fn into_stored(self) -> Result<StoredKey, StoreError> {
        let mut stored = StoredKey::new(hash(&self.hash)?, self.identity()?)
            .with_revoked(self.revoked_at.is_some());
        stored.expires_at = self.expires_at.map(from_micros);
        if let (Some(previous), Some(until)) = (&self.previous_hash, self.previous_valid_until) {
            stored = stored.with_previous(PreviousSecret {
                hash: hash(previous)?,
                valid_until: from_micros(until),
            });
        }
        Ok(stored)
    }

    /// What a listing shows.
    pub(crate) fn into_record(self) -> Result<KeyRecord, StoreError> {
        let use_count = u64::try_from(self.use_count).map_err(|_| corrupt("negative use count"))?;
        Ok(
            KeyRecord::new(self.identity()?, self.preview, from_micros(self.created_at))
                .with_expires_at(self.expires_at.map(from_micros))
                .with_revoked_at(self.revoked_at.map(from_micros))
                .with_usage(self.last_used_at.map(from_micros), use_count),
        )
    }
}

/// Microseconds since the Unix epoch; times before it are stored as 0, times past year
/// 294,247 as `i64::MAX`.
pub(crate) fn micros(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn from_micros(micros: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// Scopes as stored: space-separated.
pub(crate) fn scopes_text(scopes: &Scopes) -> String {
    scopes.iter().collect::<Vec<_>>().join(" ")
}

/// Maps a sqlx error: a unique violation is a conflict, anything else a backend failure.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(database) if database.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::backend(error),
    }
}

/// The outcome of an `UPDATE` of one key by its id: no row touched means no such key.
pub(crate) fn updated_one(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// A use count as stored (saturating, as counts are).
pub(crate) fn count(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_whole_microseconds() {
        let at = UNIX_EPOCH + Duration::from_micros(1_800_000_000_123_456);
        assert_eq!(from_micros(micros(at)), at);
    }

    #[test]
    fn times_before_the_epoch_are_clamped() {
        assert_eq!(micros(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(from_micros(-5), UNIX_EPOCH);
    }
}
