//! [`StoreError`]: what a store says when it cannot do what was asked.

use std::error::Error as StdError;
use std::time::Duration;

/// A key store could not do what was asked.
///
/// Backend errors keep their source, so logs show the driver's own message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed: connection lost, query error, pool exhausted.
    #[error("the key store failed")]
    Backend(#[source] Box<dyn StdError + Send + Sync>),
    /// The backend did not answer in time.
    #[error("the key store did not answer within {0:?}")]
    Timeout(Duration),
    /// A key with this id already exists.
    #[error("a key with this id already exists")]
    Conflict,
    /// No key with this id exists.
    #[error("no key with this id exists")]
    NotFound,
}

impl StoreError {
    /// The outcome of a write of one key by its id: `Ok` when it touched a row,
    /// [`StoreError::NotFound`] when it touched none (no such key).
    ///
    /// ```
    /// use keygate::StoreError;
    ///
    /// assert!(StoreError::one_row(1).is_ok());
    /// assert!(matches!(StoreError::one_row(0), Err(StoreError::NotFound)));
    /// ```
    pub fn one_row(rows_affected: u64) -> Result<(), StoreError> {
        if rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Wraps a backend's error, keeping it as the source.
    pub fn backend(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Backend(error.into())
    }
}

/// A sqlx error as a store's: a unique violation is [`StoreError::Conflict`] (a taken key
/// id), anything else [`StoreError::Backend`], with the driver's error as its source. So a
/// store over sqlx can use `?` on its queries.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(database) if database.is_unique_violation() => Self::Conflict,
            _ => Self::backend(error),
        }
    }
}
