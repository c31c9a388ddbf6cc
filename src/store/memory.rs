//! [`MemoryStore`]: the embedded default, a concurrent map in process memory.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::identity::Identity;
use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::record::KeyRecord;
use crate::store::error::StoreError;
use crate::store::key_store::KeyStore;
use crate::store::page::{Cursor, Page};
use crate::store::stored::{PreviousSecret, StoredKey};
use crate::store::write::{KeyStoreWrite, UsageUpdate};

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

/// One key, laid out for a million of them: the hash and the identity are inline, the
/// expiry is one word, and everything a lookup rarely needs (revocation, a grace secret,
/// listing metadata) sits behind one optional pointer.
struct Slot {
    hash: KeyHash,
    identity: Identity,
    /// Nanoseconds since the Unix epoch; `0` for no expiry.
    expires: u64,
    cold: Option<Box<Cold>>,
}

#[derive(Default)]
struct Cold {
    revoked: bool,
    previous: Option<PreviousSecret>,
    preview: String,
    created_at: Option<SystemTime>,
    revoked_at: Option<SystemTime>,
    last_used_at: Option<SystemTime>,
    use_count: u64,
}

/// An expiry as one word: exact to the nanosecond from 1970 to 2554; earlier times are
/// stored as 1 ns after the epoch (long expired), later ones as the latest representable.
fn pack_expiry(at: Option<SystemTime>) -> u64 {
    match at {
        None => 0,
        Some(at) => at.duration_since(UNIX_EPOCH).map_or(1, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX).max(1)
        }),
    }
}

fn unpack_expiry(expires: u64) -> Option<SystemTime> {
    (expires != 0).then(|| UNIX_EPOCH + Duration::from_nanos(expires))
}

impl Slot {
    fn new(key: StoredKey) -> Self {
        let cold = (key.revoked || key.previous.is_some()).then(|| {
            Box::new(Cold {
                revoked: key.revoked,
                previous: key.previous,
                ..Cold::default()
            })
        });
        Self {
            hash: key.hash,
            identity: key.identity,
            expires: pack_expiry(key.expires_at),
            cold,
        }
    }

    fn id(&self) -> KeyId {
        self.identity.key_id()
    }

    fn cold_mut(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Box::default)
    }

    fn stored(&self) -> StoredKey {
        let mut key = StoredKey::new(self.hash, self.identity.clone());
        key.expires_at = unpack_expiry(self.expires);
        if let Some(cold) = &self.cold {
            key.revoked = cold.revoked;
            key.previous = cold.previous;
        }
        key
    }

    /// Replaces what a lookup sees, keeping the listing metadata.
    fn set_stored(&mut self, key: StoredKey) {
        let Self {
            hash,
            identity,
            expires,
            ..
        } = Self::new(key.clone());
        (self.hash, self.identity, self.expires) = (hash, identity, expires);
        if key.revoked || key.previous.is_some() || self.cold.is_some() {
            let cold = self.cold_mut();
            cold.revoked = key.revoked;
            cold.previous = key.previous;
        }
    }

    fn record(&self) -> KeyRecord {
        let empty = Cold::default();
        let cold = self.cold.as_deref().unwrap_or(&empty);
        let revoked_at = match (cold.revoked, cold.revoked_at) {
            (true, None) => Some(UNIX_EPOCH),
            (_, at) => at,
        };
        KeyRecord::new(
            self.identity.clone(),
            cold.preview.clone(),
            cold.created_at.unwrap_or(UNIX_EPOCH),
        )
        .with_expires_at(unpack_expiry(self.expires))
        .with_revoked_at(revoked_at)
        .with_usage(cold.last_used_at, cold.use_count)
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
        self.insert_slot(Slot::new(key))
    }

    fn insert_slot(&self, slot: Slot) -> Result<(), StoreError> {
        match self.keys.entry(slot.id()) {
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

    /// One page of the records `keep` selects, in listing order.
    fn records(&self, page: Page, mut keep: impl FnMut(&Identity) -> bool) -> Vec<KeyRecord> {
        let mut records: Vec<KeyRecord> = self
            .keys
            .iter()
            .filter(|slot| keep(&slot.identity))
            .map(|slot| slot.record())
            .filter(|record| page.admits(&Cursor::of(record)))
            .collect();
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
        self.keys.remove(id).map(|(_, slot)| slot.stored())
    }

    /// A copy of the stored key with this id.
    pub fn get(&self, id: &KeyId) -> Option<StoredKey> {
        self.keys.get(id).map(|slot| slot.stored())
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
        Ok(self.keys.get(id).map(|slot| slot.record()))
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

    async fn delete(&self, id: &KeyId) -> Result<(), StoreError> {
        self.keys.remove(id).map(drop).ok_or(StoreError::NotFound)
    }

    async fn record_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        for update in updates {
            if let Some(mut slot) = self.keys.get_mut(&update.id) {
                let cold = slot.cold_mut();
                cold.last_used_at = cold.last_used_at.max(Some(update.last_used_at));
                cold.use_count = cold.use_count.saturating_add(update.count);
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
    fn expiry_packs_exactly_and_clamps_the_edges() {
        let at = UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789);
        assert_eq!(unpack_expiry(pack_expiry(Some(at))), Some(at));
        assert_eq!(unpack_expiry(pack_expiry(None)), None);
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(
            unpack_expiry(pack_expiry(Some(before_epoch))),
            Some(UNIX_EPOCH + Duration::from_nanos(1))
        );
    }

    #[test]
    fn slot_stays_within_one_cache_line() {
        assert!(std::mem::size_of::<Slot>() + std::mem::size_of::<KeyId>() <= 112);
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
