//! The store traits: [`KeyStore`] (the read on the hot path) and [`KeyStoreWrite`] (what
//! [`KeyManager`](crate::KeyManager) needs), with [`StoredKey`] and [`StoreError`].
//!
//! Implement them for your own database, or use [`MemoryStore`].

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::hash::KeyHash;
use crate::identity::Identity;
use crate::key::KeyId;
use crate::record::KeyRecord;

#[cfg(feature = "cache")]
mod cached;
#[cfg(feature = "cache")]
mod invalidations;
mod memory;
mod page;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;

#[cfg(feature = "cache")]
pub use cached::{CacheConfig, CachedStore};
pub use memory::MemoryStore;
pub use page::{Cursor, Page};
#[cfg(feature = "postgres")]
pub use sql::listen::{Heartbeat, InvalidationListener};
#[cfg(feature = "postgres")]
pub use sql::postgres::{DEFAULT_CHANNEL, PgStore};
#[cfg(feature = "sqlite")]
pub use sql::sqlite::SqliteStore;

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

    /// Answers at once, without waiting, when the store can: from memory.
    ///
    /// `Some` must hold exactly what [`KeyStore::find`] would return now; `None` means
    /// "call `find`". The layer tries this first, so a store that keeps keys in memory
    /// saves every request an allocation and a timer. The default, `None`, is always
    /// correct: it only gives up the shortcut.
    fn find_ready(&self, id: &KeyId) -> Option<Result<Option<StoredKey>, StoreError>> {
        let _ = id;
        None
    }
}

#[async_trait]
impl<S: KeyStore + ?Sized> KeyStore for Arc<S> {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        (**self).find(id).await
    }

    fn find_ready(&self, id: &KeyId) -> Option<Result<Option<StoredKey>, StoreError>> {
        (**self).find_ready(id)
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
    /// The secret replaced by the last regeneration, while its grace period lasts.
    pub previous: Option<PreviousSecret>,
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

/// The writes behind the key lifecycle: create, list, regenerate, revoke, and usage.
///
/// [`KeyManager`](crate::KeyManager) drives these; the layer only ever calls
/// [`KeyStore::find`]. There are no default methods: each write decides what a key can do,
/// so each store must implement it deliberately.
///
/// Every write that changes what a key can do (`replace_secret`, `revoke`, `delete`) must be visible
/// to the next [`KeyStore::find`] on this store once it returns, so that a regenerated or
/// revoked key fails on the next request.
#[async_trait]
pub trait KeyStoreWrite: KeyStore {
    /// Adds a new key with its hash.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when a key with the same id exists; the existing key is
    /// left as it was. [`StoreError::Backend`] when the backend fails.
    async fn insert(&self, record: &KeyRecord, hash: KeyHash) -> Result<(), StoreError>;

    /// The record of one key, revoked or not.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError>;

    /// One page of the keys of `user`, revoked ones included, in listing order: by creation
    /// time, then by key id (byte order), oldest first (see [`Page`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn list_by_user(&self, user: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError>;

    /// One page of the keys bound to `space`, revoked ones included, in listing order.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails.
    async fn list_by_space(&self, space: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError>;

    /// Gives key `id` a new secret: its hash becomes `hash` and its preview `preview`.
    ///
    /// With `keep_previous_until`, the hash being replaced becomes the key's
    /// [`PreviousSecret`], valid until that time; without it, no previous secret remains.
    /// The store reads the hash it replaces itself, in the same write, so that a stale read
    /// elsewhere can never make an older secret the "previous" one.
    ///
    /// Revocation is not undone: a revoked key stays revoked.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no such key exists.
    async fn replace_secret(
        &self,
        id: &KeyId,
        hash: KeyHash,
        preview: &str,
        keep_previous_until: Option<SystemTime>,
    ) -> Result<(), StoreError>;

    /// Revokes key `id` at `at`, permanently. Revoking a revoked key keeps the first time.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no such key exists.
    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError>;

    /// Removes key `id` and its record for good: its lookups then find nothing. Like
    /// `revoke`, the removal must be visible to the next [`KeyStore::find`] once it returns.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no such key exists.
    async fn delete(&self, id: &KeyId) -> Result<(), StoreError>;

    /// Adds coalesced usage: for each update, `last_used_at` becomes the later of the
    /// stored and the given time, and the use count grows by `count`. Unknown ids are
    /// skipped.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the backend fails; the caller keeps the batch and
    /// retries it with the next flush.
    async fn record_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError>;
}

#[async_trait]
impl<S: KeyStoreWrite + ?Sized> KeyStoreWrite for Arc<S> {
    async fn insert(&self, record: &KeyRecord, hash: KeyHash) -> Result<(), StoreError> {
        (**self).insert(record, hash).await
    }
    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        (**self).record(id).await
    }
    async fn list_by_user(&self, user: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        (**self).list_by_user(user, page).await
    }
    async fn list_by_space(&self, space: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        (**self).list_by_space(space, page).await
    }
    async fn replace_secret(
        &self,
        id: &KeyId,
        hash: KeyHash,
        preview: &str,
        keep_previous_until: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        (**self)
            .replace_secret(id, hash, preview, keep_previous_until)
            .await
    }
    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        (**self).revoke(id, at).await
    }
    async fn delete(&self, id: &KeyId) -> Result<(), StoreError> {
        (**self).delete(id).await
    }
    async fn record_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        (**self).record_usage(updates).await
    }
}

/// Usage of one key since the last flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageUpdate {
    /// The key.
    pub id: KeyId,
    /// The latest successful use in this batch.
    pub last_used_at: SystemTime,
    /// How many successful uses this batch adds.
    pub count: u64,
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
