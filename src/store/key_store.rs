//! [`KeyStore`]: the one read on the hot path.

use std::sync::Arc;

use async_trait::async_trait;

use crate::key::id::KeyId;
use crate::store::error::StoreError;
use crate::store::stored::StoredKey;

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
