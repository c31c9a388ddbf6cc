//! [`KeyRow`]: one row of `keygate_keys`, and the conversions between what SQL stores and
//! what keygate hands out.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::identity::Identity;
use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::record::KeyRecord;
use crate::scopes::Scopes;
use crate::store::error::StoreError;
use crate::store::stored::{PreviousSecret, StoredKey};

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
