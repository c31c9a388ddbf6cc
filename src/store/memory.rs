//! [`MemoryStore`]: the embedded default, a concurrent map in process memory.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::{KeyStore, KeyStoreWrite, PreviousSecret, StoreError, StoredKey, UsageUpdate};
use crate::hash::KeyHash;
use crate::key::KeyId;
use crate::record::KeyRecord;

/// Keys held in process memory: for tests, demos and single-instance services whose keys
/// are provisioned at start-up. Nothing survives a restart.
///
/// Reads take a shard's read lock, never a global one, so lookups from many threads do
/// not contend. Clones share the same keys.
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
    keys: Arc<DashMap<KeyId, Slot>>,
}

/// One key: what lookups need, and the listing metadata beside it.
struct Slot {
    key: StoredKey,
    /// Boxed and optional so that keys inserted directly, without a record (bulk
    /// provisioning, benchmarks), cost no memory for it.
    meta: Option<Box<Meta>>,
}

#[derive(Default)]
struct Meta {
    preview: String,
    created_at: Option<SystemTime>,
    revoked_at: Option<SystemTime>,
    last_used_at: Option<SystemTime>,
    use_count: u64,
}

impl Slot {
    fn meta_mut(&mut self) -> &mut Meta {
        self.meta.get_or_insert_with(Box::default)
    }

    fn record(&self) -> KeyRecord {
        let empty = Meta::default();
        let meta = self.meta.as_deref().unwrap_or(&empty);
        let revoked_at = match (self.key.revoked, meta.revoked_at) {
            (true, None) => Some(UNIX_EPOCH),
            (_, at) => at,
        };
        KeyRecord::new(
            self.key.identity.clone(),
            meta.preview.clone(),
            meta.created_at.unwrap_or(UNIX_EPOCH),
        )
        .with_expires_at(self.key.expires_at)
        .with_revoked_at(revoked_at)
        .with_usage(meta.last_used_at, meta.use_count)
    }
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
        self.insert_slot(Slot { key, meta: None })
    }

    fn insert_slot(&self, slot: Slot) -> Result<(), StoreError> {
        match self.keys.entry(slot.key.id()) {
            Entry::Occupied(_) => Err(StoreError::Conflict),
            Entry::Vacant(vacant) => {
                vacant.insert(slot);
                Ok(())
            }
        }
    }

    fn modify<T>(&self, id: &KeyId, f: impl FnOnce(&mut Slot) -> T) -> Result<T, StoreError> {
        let mut slot = self.keys.get_mut(id).ok_or(StoreError::NotFound)?;
        Ok(f(&mut slot))
    }

    fn records(&self, mut keep: impl FnMut(&StoredKey) -> bool) -> Vec<KeyRecord> {
        let mut records: Vec<KeyRecord> = self
            .keys
            .iter()
            .filter(|slot| keep(&slot.key))
            .map(|slot| slot.record())
            .collect();
        records.sort_by_key(|record| (record.created_at, record.id()));
        records
    }

    /// Replaces the stored state of an existing key.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no key with that id is present.
    pub fn update(&self, key: StoredKey) -> Result<(), StoreError> {
        self.modify(&key.id(), |slot| slot.key = key)
    }

    /// Removes a key, returning what was stored.
    pub fn remove(&self, id: &KeyId) -> Option<StoredKey> {
        self.keys.remove(id).map(|(_, slot)| slot.key)
    }

    /// A copy of the stored key with this id.
    pub fn get(&self, id: &KeyId) -> Option<StoredKey> {
        self.keys.get(id).map(|slot| slot.key.clone())
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
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
        let mut key =
            StoredKey::new(hash, record.identity.clone()).with_revoked(record.revoked_at.is_some());
        key.expires_at = record.expires_at;
        let meta = Meta {
            preview: record.preview.clone(),
            created_at: Some(record.created_at),
            revoked_at: record.revoked_at,
            last_used_at: record.last_used_at,
            use_count: record.use_count,
        };
        self.insert_slot(Slot {
            key,
            meta: Some(Box::new(meta)),
        })
    }

    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.keys.get(id).map(|slot| slot.record()))
    }

    async fn list_by_user(&self, user: &str) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(self.records(|key| key.identity.user() == user))
    }

    async fn list_by_space(&self, space: &str) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(self.records(|key| key.identity.space() == Some(space)))
    }

    async fn replace_secret(
        &self,
        id: &KeyId,
        hash: KeyHash,
        preview: &str,
        previous: Option<PreviousSecret>,
    ) -> Result<(), StoreError> {
        self.modify(id, |slot| {
            slot.key.hash = hash;
            slot.key.previous = previous;
            slot.meta_mut().preview = preview.to_owned();
        })
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        self.modify(id, |slot| {
            slot.key.revoked = true;
            slot.key.previous = None;
            slot.meta_mut().revoked_at.get_or_insert(at);
        })
    }

    async fn record_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        for update in updates {
            if let Some(mut slot) = self.keys.get_mut(&update.id) {
                let meta = slot.meta_mut();
                meta.last_used_at = meta.last_used_at.max(Some(update.last_used_at));
                meta.use_count = meta.use_count.saturating_add(update.count);
            }
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
