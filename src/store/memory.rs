//! [`MemoryStore`]: the embedded default, a concurrent table in process memory.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::identity::Identity;
use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::record::KeyRecord;
use crate::store::edit::KeyEdit;
use crate::store::error::StoreError;
use crate::store::key_store::KeyStore;
use crate::store::page::{Cursor, Page};
use crate::store::stored::{PreviousSecret, StoredKey};
use crate::store::table::{KeyTable, Slot};
use crate::store::write::{KeyStoreWrite, UsageUpdate};

/// Keys held in process memory: for tests, demos and single-instance services whose keys
/// are provisioned at start-up. Nothing survives a restart.
///
/// Reads take one shard's read lock, never a global one, so lookups from many threads do
/// not contend. A key costs about a hundred bytes (short user ids are kept inline). Clones
/// share the same keys.
///
/// ```
/// use keygate::{Identity, KeyGenerator, KeyHasher, MemoryStore, StoredKey};
///
/// let store = MemoryStore::new();
/// let key = KeyGenerator::default().generate()?;
/// let hash = KeyHasher::sha256().hash(&key);
/// store.insert_key(StoredKey::new(hash, Identity::new(key.id(), "user-1")))?;
/// assert_eq!(store.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    keys: Arc<KeyTable>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key directly, without a listing record: for provisioning keys whose hashes
    /// you already hold. [`KeyManager`](crate::KeyManager) adds keys with records.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when a key with the same id is already present; the
    /// existing key is left as it was.
    pub fn insert_key(&self, key: StoredKey) -> Result<(), StoreError> {
        self.insert_slot(Slot::new(key))
    }

    fn insert_slot(&self, slot: Slot) -> Result<(), StoreError> {
        if self.keys.insert(slot) {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    fn modify<T>(&self, id: &KeyId, f: impl FnOnce(&mut Slot) -> T) -> Result<T, StoreError> {
        self.keys.with_mut(id, f).ok_or(StoreError::NotFound)
    }

    /// One page of the records `keep` selects, in listing order.
    fn records(&self, page: Page, mut keep: impl FnMut(&Identity) -> bool) -> Vec<KeyRecord> {
        let mut records = Vec::new();
        self.keys.for_each(|slot| {
            let record = slot.record();
            if keep(&record.identity) && page.admits(&Cursor::of(&record)) {
                records.push(record);
            }
        });
        records.sort_by_key(Cursor::of);
        records.truncate(page.limit);
        records
    }

    /// Replaces the stored state of an existing key.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no key with that id is present.
    pub fn update(&self, key: StoredKey) -> Result<(), StoreError> {
        self.modify(&key.id(), |slot| slot.set_stored(key))
    }

    /// Removes a key, returning what was stored.
    pub fn remove(&self, id: &KeyId) -> Option<StoredKey> {
        self.keys.remove(id).map(|slot| slot.stored())
    }

    /// A copy of the stored key with this id.
    pub fn get(&self, id: &KeyId) -> Option<StoredKey> {
        self.keys.with(id, Slot::stored)
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        Ok(self.get(id))
    }

    fn find_ready(&self, id: &KeyId) -> Option<Result<Option<StoredKey>, StoreError>> {
        Some(Ok(self.get(id)))
    }
}

#[async_trait]
impl KeyStoreWrite for MemoryStore {
    async fn insert(&self, record: &KeyRecord, hash: KeyHash) -> Result<(), StoreError> {
        let mut key = StoredKey::new(hash, record.identity.clone())
            .with_revoked(record.revoked_at.is_some())
            .with_disabled(record.disabled)
            .with_rate_limit(record.rate_limit)
            .with_quota(record.quota);
        key.expires_at = record.expires_at;
        let mut slot = Slot::new(key);
        let cold = slot.cold_mut();
        cold.preview = record.preview.clone();
        cold.created_at = Some(record.created_at);
        cold.revoked_at = record.revoked_at;
        cold.last_used_at = record.last_used_at;
        cold.use_count = record.use_count;
        self.insert_slot(slot)
    }

    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.keys.with(id, Slot::record))
    }

    async fn list_by_user(&self, user: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(self.records(page, |identity| identity.user() == user))
    }

    async fn list_by_space(&self, space: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(self.records(page, |identity| identity.space() == Some(space)))
    }

    async fn replace_secret(
        &self,
        id: &KeyId,
        hash: KeyHash,
        preview: &str,
        keep_previous_until: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        self.modify(id, |slot| {
            let replaced = std::mem::replace(&mut slot.hash, hash);
            let cold = slot.cold_mut();
            cold.previous = keep_previous_until.map(|valid_until| PreviousSecret {
                hash: replaced,
                valid_until,
            });
            cold.preview = preview.to_owned();
        })
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        self.modify(id, |slot| {
            let cold = slot.cold_mut();
            cold.revoked = true;
            cold.previous = None;
            cold.revoked_at.get_or_insert(at);
        })
    }

    async fn edit(&self, id: &KeyId, edit: &KeyEdit) -> Result<(), StoreError> {
        self.modify(id, |slot| {
            let mut key = slot.stored();
            edit.apply(&mut key);
            slot.set_stored(key);
        })
    }

    async fn delete(&self, id: &KeyId) -> Result<(), StoreError> {
        self.keys.remove(id).map(drop).ok_or(StoreError::NotFound)
    }

    async fn record_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        for update in updates {
            self.keys.with_mut(&update.id, |slot| {
                let cold = slot.cold_mut();
                cold.last_used_at = cold.last_used_at.max(Some(update.last_used_at));
                cold.use_count = cold.use_count.saturating_add(update.count);
            });
        }
        Ok(())
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod conformance {
    crate::store_conformance!(async { super::MemoryStore::new() });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, KeyHash};

    fn stored(id: &str, user: &str) -> StoredKey {
        let id = KeyId::parse(id).unwrap();
        StoredKey::new(KeyHash::from_bytes([7; 32]), Identity::new(id, user))
    }

    #[test]
    fn insert_of_an_existing_id_is_a_conflict_and_keeps_the_original() {
        let store = MemoryStore::new();
        store.insert_key(stored("AAAAAAAAAAAAAAAA", "u1")).unwrap();
        let second = store.insert_key(stored("AAAAAAAAAAAAAAAA", "u2"));
        assert!(matches!(second, Err(StoreError::Conflict)));
        let id = KeyId::parse("AAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(store.get(&id).unwrap().identity.user(), "u1");
    }

    #[test]
    fn update_of_a_missing_id_is_not_found() {
        let store = MemoryStore::new();
        assert!(matches!(
            store.update(stored("AAAAAAAAAAAAAAAA", "u1")),
            Err(StoreError::NotFound)
        ));
    }

    #[tokio::test]
    async fn find_returns_the_stored_key_or_none() {
        let store = MemoryStore::new();
        store.insert_key(stored("AAAAAAAAAAAAAAAA", "u1")).unwrap();
        let known = KeyId::parse("AAAAAAAAAAAAAAAA").unwrap();
        let unknown = KeyId::parse("BBBBBBBBBBBBBBBB").unwrap();
        assert_eq!(
            store.find(&known).await.unwrap().unwrap().identity.user(),
            "u1"
        );
        assert!(store.find(&unknown).await.unwrap().is_none());
    }

    #[test]
    fn clones_share_keys() {
        let store = MemoryStore::new();
        let clone = store.clone();
        store.insert_key(stored("AAAAAAAAAAAAAAAA", "u1")).unwrap();
        assert_eq!(clone.len(), 1);
    }
}
