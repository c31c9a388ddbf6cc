//! [`MemoryStore`]: the embedded default, a concurrent map in process memory.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use super::{KeyStore, StoreError, StoredKey};
use crate::key::KeyId;

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
/// store.insert(StoredKey::new(hash, Identity::new(key.id(), "user-1")))?;
/// assert_eq!(store.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    keys: Arc<DashMap<KeyId, StoredKey>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when a key with the same id is already present; the
    /// existing key is left as it was.
    pub fn insert(&self, key: StoredKey) -> Result<(), StoreError> {
        match self.keys.entry(key.id()) {
            Entry::Occupied(_) => Err(StoreError::Conflict),
            Entry::Vacant(slot) => {
                slot.insert(key);
                Ok(())
            }
        }
    }

    /// Replaces the stored state of an existing key.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no key with that id is present.
    pub fn update(&self, key: StoredKey) -> Result<(), StoreError> {
        match self.keys.get_mut(&key.id()) {
            Some(mut slot) => {
                *slot = key;
                Ok(())
            }
            None => Err(StoreError::NotFound),
        }
    }

    /// Removes a key, returning what was stored.
    pub fn remove(&self, id: &KeyId) -> Option<StoredKey> {
        self.keys.remove(id).map(|(_, key)| key)
    }

    /// A copy of the stored key with this id.
    pub fn get(&self, id: &KeyId) -> Option<StoredKey> {
        self.keys.get(id).map(|key| key.clone())
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
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .finish()
    }
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
        store.insert(stored("AAAAAAAAAAAAAAAA", "u1")).unwrap();
        let second = store.insert(stored("AAAAAAAAAAAAAAAA", "u2"));
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
        store.insert(stored("AAAAAAAAAAAAAAAA", "u1")).unwrap();
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
        store.insert(stored("AAAAAAAAAAAAAAAA", "u1")).unwrap();
        assert_eq!(clone.len(), 1);
    }
}
