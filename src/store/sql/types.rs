//! sqlx `Type`, `Encode` and `Decode` for keygate's values, so that a store binds and reads
//! them as they are: [`KeyId`] as text, [`KeyHash`] as 32 bytes, [`Scopes`] as
//! space-separated text, and [`Timestamp`] as the database's time (`TIMESTAMPTZ` in
//! PostgreSQL; integer microseconds since the Unix epoch in SQLite, which has no time type).
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # async fn demo(pool: keygate::sqlx::SqlitePool) -> Result<(), keygate::sqlx::Error> {
//! use keygate::KeyId;
//!
//! let id = KeyId::parse("AbCdEfGh12345678").unwrap();
//! let user: Option<String> = keygate::sqlx::query_scalar("SELECT user_id FROM api_keys WHERE id = $1")
//!     .bind(id) // no `.as_str()`, no conversion code
//!     .fetch_optional(&pool)
//!     .await?;
//! # let _ = user;
//! # Ok(())
//! # }
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::scopes::Scopes;

/// A point in time as a SQL store keeps it: `TIMESTAMPTZ` in PostgreSQL (microsecond
/// precision), integer microseconds since the Unix epoch in SQLite. Times before the epoch
/// are stored as the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub SystemTime);

impl From<SystemTime> for Timestamp {
    fn from(at: SystemTime) -> Self {
        Self(at)
    }
}

impl From<Timestamp> for SystemTime {
    fn from(at: Timestamp) -> Self {
        at.0
    }
}

impl Timestamp {
    /// Microseconds since the Unix epoch; 0 before it, `i64::MAX` past year 294,247.
    pub(crate) fn micros(self) -> i64 {
        self.0
            .duration_since(UNIX_EPOCH)
            .map(|since| i64::try_from(since.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    #[cfg(any(feature = "sqlite", test))]
    pub(crate) fn from_micros(micros: i64) -> Self {
        let since = std::time::Duration::from_micros(u64::try_from(micros).unwrap_or(0));
        Self(UNIX_EPOCH + since)
    }
}

// ---- KeyId: text ---------------------------------------------------------------------

impl<DB: Database> Type<DB> for KeyId
where
    str: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: Database> Encode<'q, DB> for KeyId
where
    String: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        self.as_str().to_owned().encode(buf)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for KeyId
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<DB>>::decode(value)?;
        Ok(KeyId::parse(text)?)
    }
}

// ---- KeyHash: 32 bytes ---------------------------------------------------------------

impl<DB: Database> Type<DB> for KeyHash
where
    [u8]: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <[u8] as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <[u8] as Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: Database> Encode<'q, DB> for KeyHash
where
    Vec<u8>: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        self.as_bytes().to_vec().encode(buf)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for KeyHash
where
    &'r [u8]: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let bytes = <&[u8] as Decode<DB>>::decode(value)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("a key hash is 32 bytes, not {}", bytes.len()))?;
        Ok(KeyHash::from_bytes(bytes))
    }
}

// ---- Scopes: space-separated text ------------------------------------------------------

impl<DB: Database> Type<DB> for Scopes
where
    str: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as Type<DB>>::compatible(ty)
    }
}

impl<'q, DB: Database> Encode<'q, DB> for Scopes
where
    String: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut DB::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        // Scope tokens hold no spaces, so one space separates them unambiguously.
        self.iter().collect::<Vec<_>>().join(" ").encode(buf)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for Scopes
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<DB>>::decode(value)?;
        Ok(Scopes::new(text.split_whitespace())?)
    }
}

// ---- UserId: an owner read from text or integer ids -----------------------------------

/// A user id as a row holds it: text, or an integer id of the application's own `users`
/// table, read as its decimal text. What [`KeyRow`](crate::KeyRow) reads `user_id` through.
pub(crate) struct UserId(String);

impl From<UserId> for String {
    fn from(user: UserId) -> Self {
        user.0
    }
}

impl<DB: Database> Type<DB> for UserId
where
    str: Type<DB>,
    i64: Type<DB>,
    i32: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <str as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <str as Type<DB>>::compatible(ty)
            || <i64 as Type<DB>>::compatible(ty)
            || <i32 as Type<DB>>::compatible(ty)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for UserId
where
    str: Type<DB>,
    i64: Type<DB>,
    &'r str: Decode<'r, DB>,
    i64: Decode<'r, DB>,
    i32: Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, BoxDynError> {
        use sqlx::ValueRef as _;
        let ty = value.type_info();
        if <str as Type<DB>>::compatible(&ty) {
            Ok(Self(<&str as Decode<DB>>::decode(value)?.to_owned()))
        } else if <i64 as Type<DB>>::compatible(&ty) {
            Ok(Self(<i64 as Decode<DB>>::decode(value)?.to_string()))
        } else {
            Ok(Self(<i32 as Decode<DB>>::decode(value)?.to_string()))
        }
    }
}

// ---- Timestamp: TIMESTAMPTZ in PostgreSQL ----------------------------------------------

#[cfg(feature = "postgres")]
mod postgres {
    use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef, Postgres};
    use time::OffsetDateTime;

    use super::*;

    impl Type<Postgres> for Timestamp {
        fn type_info() -> PgTypeInfo {
            <OffsetDateTime as Type<Postgres>>::type_info()
        }
    }

    impl PgHasArrayType for Timestamp {
        fn array_type_info() -> PgTypeInfo {
            <OffsetDateTime as PgHasArrayType>::array_type_info()
        }
    }

    impl Encode<'_, Postgres> for Timestamp {
        fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            // Clamped to microseconds from the epoch as in SQLite, and to the last instant
            // of year 9999 (the managers refuse later expiries; this only keeps a store
            // from failing on one written some other way).
            let nanos = i128::from(self.micros()) * 1_000;
            let at = OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .unwrap_or_else(|_| time::PrimitiveDateTime::MAX.assume_utc());
            <OffsetDateTime as Encode<Postgres>>::encode_by_ref(&at, buf)
        }
    }

    impl<'r> Decode<'r, Postgres> for Timestamp {
        fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
            let at = <OffsetDateTime as Decode<Postgres>>::decode(value)?;
            Ok(Timestamp(SystemTime::from(at)))
        }
    }
}

// ---- Timestamp: integer microseconds in SQLite ----------------------------------------

#[cfg(feature = "sqlite")]
mod sqlite {
    use sqlx::sqlite::{Sqlite, SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};

    use super::*;

    impl Type<Sqlite> for Timestamp {
        fn type_info() -> SqliteTypeInfo {
            <i64 as Type<Sqlite>>::type_info()
        }

        fn compatible(ty: &SqliteTypeInfo) -> bool {
            <i64 as Type<Sqlite>>::compatible(ty)
        }
    }

    impl<'q> Encode<'q, Sqlite> for Timestamp {
        fn encode_by_ref(
            &self,
            buf: &mut Vec<SqliteArgumentValue<'q>>,
        ) -> Result<IsNull, BoxDynError> {
            <i64 as Encode<Sqlite>>::encode(self.micros(), buf)
        }
    }

    impl<'r> Decode<'r, Sqlite> for Timestamp {
        fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
            let micros = <i64 as Decode<Sqlite>>::decode(value)?;
            Ok(Timestamp::from_micros(micros))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn micros_round_trip_whole_microseconds() {
        let at = UNIX_EPOCH + Duration::from_micros(1_800_000_000_123_456);
        assert_eq!(Timestamp::from_micros(Timestamp(at).micros()).0, at);
    }

    #[test]
    fn times_before_the_epoch_are_clamped() {
        assert_eq!(Timestamp(UNIX_EPOCH - Duration::from_secs(1)).micros(), 0);
        assert_eq!(Timestamp::from_micros(-5).0, UNIX_EPOCH);
    }
}
