//! [`KeyTable`]: the sharded, compact table behind [`MemoryStore`](crate::MemoryStore).
//!
//! Laid out for a million keys:
//!
//! - each key is one 96-byte [`Slot`] (hash, id, user inline when short, expiry as one word,
//!   and one pointer each to the rarely set parts), kept densely in fixed-size chunks, so
//!   growing never copies the slots or leaves half a table unused;
//! - the index from key id to slot is a hash table of 4-byte slot numbers, so its empty
//!   buckets cost little;
//! - sixteen shards, each behind its own read-write lock: lookups only ever take a shard's
//!   read lock.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::identity::{Extra, Identity};
use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::limit::{Quota, RateLimit};
use crate::record::KeyRecord;
use crate::store::stored::{PreviousSecret, StoredKey};
use crate::text::Text;

const SHARDS: usize = 16;
/// Slots per chunk: 96 KiB chunks, allocated whole.
const CHUNK: usize = 1024;

/// One key.
pub(crate) struct Slot {
    pub(crate) hash: KeyHash,
    id: KeyId,
    user: Text,
    extra: Option<Arc<Extra>>,
    /// Nanoseconds since the Unix epoch; `0` for no expiry.
    expires: u64,
    /// What a lookup rarely needs: revocation, a pause, limits, a grace secret, listing
    /// metadata.
    pub(crate) cold: Option<Box<Cold>>,
}

#[derive(Default)]
pub(crate) struct Cold {
    pub(crate) revoked: bool,
    pub(crate) disabled: bool,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) quota: Option<Quota>,
    pub(crate) previous: Option<PreviousSecret>,
    pub(crate) preview: String,
    pub(crate) created_at: Option<SystemTime>,
    pub(crate) revoked_at: Option<SystemTime>,
    pub(crate) last_used_at: Option<SystemTime>,
    pub(crate) use_count: u64,
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
    pub(crate) fn new(key: StoredKey) -> Self {
        let rare = key.revoked
            || key.disabled
            || key.previous.is_some()
            || key.rate_limit.is_some()
            || key.quota.is_some();
        let cold = rare.then(|| {
            Box::new(Cold {
                revoked: key.revoked,
                disabled: key.disabled,
                rate_limit: key.rate_limit,
                quota: key.quota,
                previous: key.previous,
                ..Cold::default()
            })
        });
        let (id, user, extra) = key.identity.into_parts();
        Self {
            hash: key.hash,
            id,
            user,
            extra,
            expires: pack_expiry(key.expires_at),
            cold,
        }
    }

    #[cfg(test)]
    fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn identity(&self) -> Identity {
        Identity::from_parts(self.id, self.user.clone(), self.extra.clone())
    }

    pub(crate) fn cold_mut(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Box::default)
    }

    pub(crate) fn stored(&self) -> StoredKey {
        let mut key = StoredKey::new(self.hash, self.identity());
        key.expires_at = unpack_expiry(self.expires);
        if let Some(cold) = &self.cold {
            key.revoked = cold.revoked;
            key.disabled = cold.disabled;
            key.rate_limit = cold.rate_limit;
            key.quota = cold.quota;
            key.previous = cold.previous;
        }
        key
    }

    /// Replaces what a lookup sees, keeping the listing metadata.
    pub(crate) fn set_stored(&mut self, key: StoredKey) {
        let kept = self.cold.take();
        *self = Self::new(key);
        if let Some(mut kept) = kept {
            // What a lookup sees comes from `key`; the listing metadata stays.
            let fresh = self.cold.take().unwrap_or_default();
            kept.revoked = fresh.revoked;
            kept.disabled = fresh.disabled;
            kept.rate_limit = fresh.rate_limit;
            kept.quota = fresh.quota;
            kept.previous = fresh.previous;
            self.cold = Some(kept);
        }
    }

    pub(crate) fn record(&self) -> KeyRecord {
        let empty = Cold::default();
        let cold = self.cold.as_deref().unwrap_or(&empty);
        let revoked_at = match (cold.revoked, cold.revoked_at) {
            (true, None) => Some(UNIX_EPOCH),
            (_, at) => at,
        };
        KeyRecord::new(
            self.identity(),
            cold.preview.clone(),
            cold.created_at.unwrap_or(UNIX_EPOCH),
        )
        .with_expires_at(unpack_expiry(self.expires))
        .with_revoked_at(revoked_at)
        .with_usage(cold.last_used_at, cold.use_count)
        .with_disabled(cold.disabled)
        .with_limits(cold.rate_limit, cold.quota)
    }
}

/// The table: an index and its slots, in shards.
#[derive(Default)]
pub(crate) struct KeyTable {
    hasher: hashbrown::DefaultHashBuilder,
    shards: [RwLock<Shard>; SHARDS],
}

#[derive(Default)]
pub(crate) struct Shard {
    /// Slot numbers, found by the hash of their key's id.
    index: HashTable<u32>,
    slots: Slots,
}

/// Slots kept densely in chunks of [`CHUNK`]: a slot's number is its position.
#[derive(Default)]
struct Slots {
    chunks: Vec<Vec<Slot>>,
    len: usize,
}

impl Slots {
    fn get(&self, number: u32) -> &Slot {
        let number = number as usize;
        &self.chunks[number / CHUNK][number % CHUNK]
    }

    fn get_mut(&mut self, number: u32) -> &mut Slot {
        let number = number as usize;
        &mut self.chunks[number / CHUNK][number % CHUNK]
    }

    fn push(&mut self, slot: Slot) -> u32 {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let number = self.len;
        self.chunks[number / CHUNK].push(slot);
        self.len += 1;
        // A shard holds at most `u32::MAX` keys: far beyond any memory.
        u32::try_from(number).unwrap_or(u32::MAX)
    }

    /// Removes slot `number`, moving the last slot into its place; returns the removed
    /// slot and the old number of the moved one.
    fn swap_remove(&mut self, number: u32) -> (Slot, Option<u32>) {
        let last = self.len - 1;
        let mut tail = self.chunks[last / CHUNK]
            .pop()
            .unwrap_or_else(|| unreachable!());
        if self.chunks[last / CHUNK].is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        if number as usize == last {
            return (tail, None);
        }
        std::mem::swap(self.get_mut(number), &mut tail);
        (tail, u32::try_from(last).ok())
    }

    fn iter(&self) -> impl Iterator<Item = &Slot> {
        self.chunks.iter().flatten()
    }
}

impl KeyTable {
    fn hash(&self, id: &KeyId) -> u64 {
        use std::hash::BuildHasher as _;
        self.hasher.hash_one(id)
    }

    /// The shard of a hash: from a multiplicative mix of it, so that neither the bits the
    /// index uses for buckets (the low ones) nor for its tags (the top seven) are constant
    /// within a shard.
    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        let mixed = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(mixed >> 60) as usize % SHARDS]
    }

    fn read(&self, hash: u64) -> RwLockReadGuard<'_, Shard> {
        // A panic under the lock cannot leave a shard half-written: every write either
        // completes or touches nothing the readers rely on.
        self.shard(hash)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, hash: u64) -> RwLockWriteGuard<'_, Shard> {
        self.shard(hash)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the slot of `id`.
    pub(crate) fn with<T>(&self, id: &KeyId, f: impl FnOnce(&Slot) -> T) -> Option<T> {
        let hash = self.hash(id);
        let shard = self.read(hash);
        let number = shard.index.find(hash, |&n| shard.slots.get(n).id == *id)?;
        Some(f(shard.slots.get(*number)))
    }

    /// Changes the slot of `id`.
    pub(crate) fn with_mut<T>(&self, id: &KeyId, f: impl FnOnce(&mut Slot) -> T) -> Option<T> {
        let hash = self.hash(id);
        let mut shard = self.write(hash);
        let Shard { index, slots } = &mut *shard;
        let number = *index.find(hash, |&n| slots.get(n).id == *id)?;
        Some(f(slots.get_mut(number)))
    }

    /// Adds a slot; `false` (and nothing changed) when its id is taken.
    pub(crate) fn insert(&self, slot: Slot) -> bool {
        let hash = self.hash(&slot.id);
        let mut shard = self.write(hash);
        let Shard { index, slots } = &mut *shard;
        let rehash = |&n: &u32| self.hash(&slots.get(n).id);
        match index.entry(hash, |&n| slots.get(n).id == slot.id, rehash) {
            Entry::Occupied(_) => false,
            Entry::Vacant(vacant) => {
                // The entry borrows the index only; the slots are free to grow.
                let number = u32::try_from(slots.len).unwrap_or(u32::MAX);
                vacant.insert(number);
                slots.push(slot);
                true
            }
        }
    }

    /// Removes the slot of `id`.
    pub(crate) fn remove(&self, id: &KeyId) -> Option<Slot> {
        let hash = self.hash(id);
        let mut shard = self.write(hash);
        let Shard { index, slots } = &mut *shard;
        let entry = index.find_entry(hash, |&n| slots.get(n).id == *id).ok()?;
        let (number, _) = entry.remove();
        let (removed, moved) = slots.swap_remove(number);
        if let Some(from) = moved {
            // The last slot now sits at `number`: point its index entry there.
            let moved_hash = self.hash(&slots.get(number).id);
            if let Some(entry) = index.find_mut(moved_hash, |&n| n == from) {
                *entry = number;
            }
        }
        Some(removed)
    }

    /// Calls `f` on every slot, shard by shard.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Slot)) {
        for shard in &self.shards {
            let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
            shard.slots.iter().for_each(&mut f);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .slots
                    .len
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(n: usize) -> Slot {
        let id = KeyId::parse(&format!("{n:016}")).unwrap();
        Slot::new(StoredKey::new(
            KeyHash::from_bytes([n as u8; 32]),
            Identity::new(id, "u"),
        ))
    }

    fn id(n: usize) -> KeyId {
        KeyId::parse(&format!("{n:016}")).unwrap()
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
    fn a_slot_is_96_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 96);
    }

    #[test]
    fn every_inserted_key_is_found_across_chunks() {
        let table = KeyTable::default();
        for n in 0..5_000 {
            assert!(table.insert(slot(n)));
        }
        assert_eq!(table.len(), 5_000);
        for n in 0..5_000 {
            assert_eq!(table.with(&id(n), Slot::id), Some(id(n)));
        }
        assert_eq!(table.with(&id(5_000), Slot::id), None);
    }

    #[test]
    fn a_taken_id_is_not_inserted_twice() {
        let table = KeyTable::default();
        assert!(table.insert(slot(1)));
        assert!(!table.insert(slot(1)));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn removing_keys_keeps_every_other_key_findable() {
        let table = KeyTable::default();
        for n in 0..3_000 {
            table.insert(slot(n));
        }
        for n in (0..3_000).step_by(3) {
            assert_eq!(table.remove(&id(n)).map(|slot| slot.id()), Some(id(n)));
        }
        for n in 0..3_000 {
            let found = table.with(&id(n), Slot::id);
            assert_eq!(found.is_some(), n % 3 != 0, "{n}");
        }
        assert_eq!(table.len(), 2_000);
        assert!(table.remove(&id(0)).is_none());
    }
}
