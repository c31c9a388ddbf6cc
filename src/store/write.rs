//! [`KeyStoreWrite`]: the writes behind the key lifecycle, and [`UsageUpdate`].

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::record::KeyRecord;
use crate::store::edit::KeyEdit;
use crate::store::error::StoreError;
use crate::store::key_store::KeyStore;
use crate::store::page::Page;

/// The writes behind the key lifecycle: create, list, regenerate, revoke, and usage.
///
/// [`KeyManager`](crate::KeyManager) drives these; the layer only ever calls
/// [`KeyStore::find`]. There are no default methods: each write decides what a key can do,
/// so each store must implement it deliberately.
///
/// Every write that changes what a key can do (`replace_secret`, `revoke`, `edit`, `delete`) must be visible
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
    /// [`PreviousSecret`](crate::PreviousSecret), valid until that time; without it, no previous secret remains.
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

    /// Applies `edit` to key `id` in one write: every field it sets is changed, the rest
    /// kept. Like `revoke`, the change must be visible to the next [`KeyStore::find`]
    /// once it returns; a cache in front must forget the key.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no such key exists.
    async fn edit(&self, id: &KeyId, edit: &KeyEdit) -> Result<(), StoreError>;

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
    async fn edit(&self, id: &KeyId, edit: &KeyEdit) -> Result<(), StoreError> {
        (**self).edit(id, edit).await
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
