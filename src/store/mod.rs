//! The [`KeyStore`] trait, the [`StoredKey`] it returns, and [`StoreError`].
//!
//! Implement [`KeyStore`] for your own database, or use [`MemoryStore`].

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::hash::KeyHash;
use crate::identity::Identity;
use crate::key::KeyId;

mod memory;

pub use memory::MemoryStore;

/// Where keys are looked up: one method, by the key's non-secret id.
///
/// The layer calls [`KeyStore::find`] once per request that carries a well-formed key, so
/// it is on the hot path: keep it to one indexed read. Malformed keys never reach it.
///
/// The trait uses `async_trait` so that `Arc<dyn KeyStore>` works.
///
/// # Implementing it
///
/// ```
/// use keygate::{Identity, KeyHash, KeyId, KeyStore, StoreError, StoredKey};
///
/// /// A store over your own database; a `Vec` stands in for it here.
/// struct MyStore {
///     rows: Vec<(String, [u8; 32], String)>, // (key id, hash, user)
/// }
///
/// #[async_trait::async_trait]
/// impl KeyStore for MyStore {
///     async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
///         // A real store runs `SELECT hash, user_id, ... FROM api_keys WHERE id = $1`,
///         // mapping its driver's error with `StoreError::backend`.
///         let row = self.rows.iter().find(|row| row.0 == id.as_str());
///         Ok(row.map(|(_, hash, user)| {
///             StoredKey::new(KeyHash::from_bytes(*hash), Identity::new(*id, user.as_str()))
///         }))
///     }
/// }
/// ```
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Looks up the key with id `id`.
    ///
    /// Returns `Ok(None)` when no such key exists. Revoked and expired keys should still
    /// be returned, with their state set: the layer rejects them, and the audit trail can
    /// then name the precise reason.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the backend cannot answer. The layer then answers 503 and
    /// does not call the inner service.
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError>;
}

#[async_trait]
impl<S: KeyStore + ?Sized> KeyStore for Arc<S> {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        (**self).find(id).await
    }
}

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
}

impl StoredKey {
    /// A live key with no expiry.
    pub fn new(hash: KeyHash, identity: Identity) -> Self {
        Self {
            hash,
            identity,
            revoked: false,
            expires_at: None,
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

    /// The key's id (from its identity).
    pub fn id(&self) -> KeyId {
        self.identity.key_id()
    }
}

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
