//! The statements both dialects share (both accept `$n` placeholders).

/// `SELECT` of every column of `keygate_keys`, then the rest of the statement.
macro_rules! select_keys {
    ($($rest:expr),*) => {
        concat!(
            "SELECT id, hash, user_id, space_id, name, scopes, preview, created_at, \
             expires_at, revoked_at, previous_hash, previous_valid_until, last_used_at, \
             use_count, disabled, rate_count, rate_period_ms, rate_burst, quota_limit, \
             quota_refill FROM keygate_keys ",
            $($rest),*
        )
    };
}

/// The page of a listing: after the cursor `($2, $3)`, at most `$4` rows, in listing
/// order. `$id` is how the dialect compares ids byte by byte.
/// The `SET` clause of an edit (`KEY_EDIT_SET`, public in `sql/edit.rs`).
macro_rules! key_edit_set {
    () => {
        "name = COALESCE($2, name), \
         expires_at = CASE WHEN $3 THEN $4 ELSE expires_at END, \
         scopes = COALESCE($5, scopes), \
         disabled = COALESCE($6, disabled), \
         rate_count = CASE WHEN $7 THEN $8 ELSE rate_count END, \
         rate_period_ms = CASE WHEN $7 THEN $9 ELSE rate_period_ms END, \
         rate_burst = CASE WHEN $7 THEN $10 ELSE rate_burst END, \
         quota_limit = CASE WHEN $11 THEN $12 ELSE quota_limit END, \
         quota_refill = CASE WHEN $11 THEN $13 ELSE quota_refill END"
    };
}
pub(crate) use key_edit_set;

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
pub(crate) const PG_BY_USER: &str = select_keys!("WHERE user_id = $1", page!("id COLLATE \"C\""));
/// A page of a space's keys.
#[cfg(feature = "postgres")]
pub(crate) const PG_BY_SPACE: &str = select_keys!("WHERE space_id = $1", page!("id COLLATE \"C\""));
/// A new key.
pub(crate) const INSERT: &str = "INSERT INTO keygate_keys (id, hash, user_id, space_id, name, \
     scopes, preview, created_at, expires_at, revoked_at, last_used_at, use_count, disabled, \
     rate_count, rate_period_ms, rate_burst, quota_limit, quota_refill) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";
pub(crate) const EDIT: &str = concat!(
    "UPDATE keygate_keys SET ",
    key_edit_set!(),
    " WHERE id = $1"
);
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
