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
    /// Wraps a backend's error, keeping it as the source.
    pub fn backend(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Backend(error.into())
    }
}
