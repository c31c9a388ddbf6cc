//! [`CachedStore`]: a bounded in-memory cache in front of any [`KeyStore`].

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use moka::future::Cache;

use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::record::KeyRecord;
use crate::store::edit::KeyEdit;
use crate::store::error::StoreError;
use crate::store::invalidations::Invalidations;
use crate::store::key_store::KeyStore;
use crate::store::page::Page;
use crate::store::stored::StoredKey;
use crate::store::write::{KeyStoreWrite, UsageUpdate};

/// Sizes and lifetimes of a [`CachedStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How many known keys to hold (default 100,000).
    pub capacity: u64,
    /// How long a known key is served from memory (default 30 s). Without cross-instance
    /// invalidation this is how long a revocation on another instance can go unseen.
    pub ttl: Duration,
    /// How many unknown key ids to remember (default 10,000). They live apart from known
    /// keys, so a flood of random keys can never evict a real one.
    pub negative_capacity: u64,
    /// How long an unknown key id is remembered (default 5 s).
    pub negative_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: 100_000,
            ttl: Duration::from_secs(30),
            negative_capacity: 10_000,
            negative_ttl: Duration::from_secs(5),
        }
    }
}

/// Wraps a store with a bounded cache, so the hot path stays in memory.
///
/// - Known keys are cached for [`CacheConfig::ttl`]; unknown ids for the shorter
///   [`CacheConfig::negative_ttl`], in a separate, separately bounded cache.
/// - Concurrent misses for one id make one store call (single-flight): a thousand requests
///   with the same unknown key cost one lookup.
/// - Store errors are never cached.
/// - Writes made through this store ([`KeyStoreWrite`]) invalidate the key before they
///   return, so on this instance a revoked or regenerated key fails on the next request.
///   [`CachedStore::invalidate`] does the same for writes made elsewhere; the PostgreSQL
///   store's listener calls it for writes made on other instances.
/// - A lookup that raced with an invalidation is never served from the cache: entries
///   remember when their lookup began and are discarded if the key was invalidated since.
///   The record of invalidations is bounded; when a record has to be forgotten early (more
///   invalidations than [`CacheConfig::capacity`] within its lifetime), every entry loaded
///   before it is discarded too, so no flood of invalidations can make a stale entry pass.
/// - In bypass mode ([`CachedStore::set_bypass`]) every lookup goes to the store; the
///   PostgreSQL listener switches it on while its connection is down.
///
/// Clones share one cache.
pub struct CachedStore<S> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    store: S,
    config: CacheConfig,
    positive: Cache<KeyId, Entry>,
    /// Unknown ids, with the epoch at which their lookup began.
    negative: Cache<KeyId, u64>,
    /// Ids invalidated recently, with the epoch of their invalidation.
    invalidated: Invalidations,
    /// Counts invalidations; every lookup notes it before asking the store.
    epoch: AtomicU64,
    /// The epoch of the latest single invalidation: entries loaded after it need no
    /// per-id check, which keeps the common hit to one cache read.
    latest: AtomicU64,
    /// The epoch of the latest `invalidate_all`.
    all: AtomicU64,
    bypass: AtomicBool,
}

#[derive(Clone)]
struct Entry {
    key: StoredKey,
    loaded_at: u64,
}

/// Why a single-flight load produced no entry to cache.
enum Miss {
    Absent,
    /// The answer came too slowly to be cached safely; it is served once.
    Slow(Option<StoredKey>),
    Store(StoreError),
}

/// A store error shared by every request that waited on the same lookup.
struct SharedError(Arc<Miss>);

impl fmt::Debug for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Miss::Store(error) => fmt::Debug::fmt(error, f),
            Miss::Absent | Miss::Slow(_) => f.write_str("Absent"),
        }
    }
}

impl fmt::Display for SharedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Miss::Store(error) => fmt::Display::fmt(error, f),
            Miss::Absent | Miss::Slow(_) => f.write_str("no such key"),
        }
    }
}

impl StdError for SharedError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &*self.0 {
            Miss::Store(error) => Some(error),
            Miss::Absent | Miss::Slow(_) => None,
        }
    }
}

impl<S: KeyStore> CachedStore<S> {
    /// Wraps `store` with the default [`CacheConfig`].
    pub fn new(store: S) -> Self {
        Self::with_config(store, CacheConfig::default())
    }

    /// Wraps `store` with `config`.
    pub fn with_config(store: S, config: CacheConfig) -> Self {
        let positive = Cache::builder()
            .max_capacity(config.capacity)
            .time_to_live(config.ttl)
            .build();
        let negative = Cache::builder()
            .max_capacity(config.negative_capacity)
            .time_to_live(config.negative_ttl)
            .build();
        // An invalidation must be remembered for as long as an entry loaded before it can
        // live: the slowest cached lookup (bounded below) plus one TTL. Records that leave
        // the log earlier make every older entry stale (see `Invalidations`).
        let invalidated = Invalidations::new(
            usize::try_from(config.capacity.max(config.negative_capacity)).unwrap_or(usize::MAX),
            config.ttl.saturating_mul(2) + MAX_CACHED_LOOKUP,
        );
        Self {
            shared: Arc::new(Shared {
                store,
                config,
                positive,
                negative,
                invalidated,
                epoch: AtomicU64::new(0),
                latest: AtomicU64::new(0),
                all: AtomicU64::new(0),
                bypass: AtomicBool::new(false),
            }),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.shared.store
    }

    /// The configuration.
    pub fn config(&self) -> CacheConfig {
        self.shared.config
    }

    /// Forgets key `id`: the next lookup asks the store.
    pub async fn invalidate(&self, id: &KeyId) {
        let shared = &self.shared;
        let epoch = shared.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        shared
            .invalidated
            .record(*id, epoch, std::time::Instant::now());
        shared.latest.fetch_max(epoch, Ordering::SeqCst);
        shared.positive.invalidate(id).await;
        shared.negative.invalidate(id).await;
    }

    /// Forgets every key.
    pub fn invalidate_all(&self) {
        let shared = &self.shared;
        let epoch = shared.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        shared.all.fetch_max(epoch, Ordering::SeqCst);
        shared.positive.invalidate_all();
        shared.negative.invalidate_all();
    }

    /// In bypass mode every lookup goes to the store and nothing is cached. Switching it
    /// off starts from an empty cache.
    pub fn set_bypass(&self, bypass: bool) {
        if !bypass {
            self.invalidate_all();
        }
        self.shared.bypass.store(bypass, Ordering::SeqCst);
    }

    /// Whether bypass mode is on.
    pub fn is_bypassed(&self) -> bool {
        self.shared.bypass.load(Ordering::SeqCst)
    }

    /// Whether a value loaded at epoch `loaded_at` may still be served for `id`.
    fn is_fresh(&self, id: &KeyId, loaded_at: u64) -> bool {
        let shared = &self.shared;
        if shared.all.load(Ordering::SeqCst) > loaded_at {
            return false;
        }
        if shared.latest.load(Ordering::SeqCst) <= loaded_at {
            return true;
        }
        !shared.invalidated.invalidated_since(id, loaded_at)
    }

    async fn cached_find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        let shared = &self.shared;
        if let Some(entry) = shared.positive.get(id).await {
            if self.is_fresh(id, entry.loaded_at) {
                hit(true);
                return Ok(Some(entry.key));
            }
            shared.positive.invalidate(id).await;
        }
        if let Some(loaded_at) = shared.negative.get(id).await {
            if self.is_fresh(id, loaded_at) {
                hit(true);
                return Ok(None);
            }
            shared.negative.invalidate(id).await;
        }

        hit(false);
        let loaded_at = shared.epoch.load(Ordering::SeqCst);
        let load = async {
            let started = std::time::Instant::now();
            let found = shared.store.find(id).await;
            match found {
                // An invalidation made during a lookup this slow may already be forgotten
                // (see `invalidated`'s lifetime): serve the answer, do not cache it.
                Ok(found) if started.elapsed() > MAX_CACHED_LOOKUP => Err(Miss::Slow(found)),
                Ok(Some(key)) => Ok(Entry { key, loaded_at }),
                Ok(None) => Err(Miss::Absent),
                Err(error) => Err(Miss::Store(error)),
            }
        };
        match shared.positive.try_get_with(*id, load).await {
            Ok(entry) if self.is_fresh(id, entry.loaded_at) => Ok(Some(entry.key)),
            Ok(_stale) => {
                shared.positive.invalidate(id).await;
                shared.store.find(id).await
            }
            Err(miss) => match &*miss {
                Miss::Absent => {
                    if self.is_fresh(id, loaded_at) {
                        shared.negative.insert(*id, loaded_at).await;
                    }
                    Ok(None)
                }
                Miss::Slow(found) => Ok(found.clone()),
                Miss::Store(_) => Err(StoreError::backend(SharedError(miss))),
            },
        }
    }
}

/// The slowest lookup whose answer is still cached.
const MAX_CACHED_LOOKUP: Duration = Duration::from_secs(30);

impl<S> Clone for CachedStore<S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for CachedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStore")
            .field("store", &self.shared.store)
            .field("config", &self.shared.config)
            .field("entries", &self.shared.positive.entry_count())
            .field("bypass", &self.shared.bypass.load(Ordering::Relaxed))
            .finish()
    }
}

#[async_trait]
impl<S: KeyStore> KeyStore for CachedStore<S> {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        if self.shared.bypass.load(Ordering::SeqCst) {
            return self.shared.store.find(id).await;
        }
        self.cached_find(id).await
    }

    /// A cache hit, answered without waiting; misses and anything that would have to wait
    /// go through [`KeyStore::find`].
    fn find_ready(&self, id: &KeyId) -> Option<Result<Option<StoredKey>, StoreError>> {
        let shared = &self.shared;
        if shared.bypass.load(Ordering::SeqCst) {
            return None;
        }
        if let Some(entry) = now_or_never(shared.positive.get(id))? {
            let fresh = self.is_fresh(id, entry.loaded_at);
            if fresh {
                hit(true);
            }
            return fresh.then_some(Ok(Some(entry.key)));
        }
        let loaded_at = now_or_never(shared.negative.get(id))??;
        let fresh = self.is_fresh(id, loaded_at);
        if fresh {
            hit(true);
        }
        fresh.then_some(Ok(None))
    }
}

/// Counts a cache hit or miss in the metrics (feature `metrics`).
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
fn hit(hit: bool) {
    #[cfg(feature = "metrics")]
    crate::audit::metrics::cache(hit);
}

/// Polls a future once: its output if it is ready without waiting, else `None` (and the
/// future is dropped). Cache reads complete on their first poll unless contended.
fn now_or_never<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

#[async_trait]
impl<S: KeyStoreWrite> KeyStoreWrite for CachedStore<S> {
    async fn insert(&self, record: &KeyRecord, hash: KeyHash) -> Result<(), StoreError> {
        let result = self.shared.store.insert(record, hash).await;
        // Even a failed insert may have raced with a lookup that cached "unknown".
        self.invalidate(&record.id()).await;
        result
    }

    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.shared.store.record(id).await
    }

    async fn list_by_user(&self, user: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        self.shared.store.list_by_user(user, page).await
    }

    async fn list_by_space(&self, space: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        self.shared.store.list_by_space(space, page).await
    }

    async fn replace_secret(
        &self,
        id: &KeyId,
        hash: KeyHash,
        preview: &str,
        keep_previous_until: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        let result = self
            .shared
            .store
            .replace_secret(id, hash, preview, keep_previous_until)
            .await;
        // Invalidate whatever the outcome: a write that failed after reaching the database
        // must not leave the old secret cached.
        self.invalidate(id).await;
        result
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        let result = self.shared.store.revoke(id, at).await;
        self.invalidate(id).await;
        result
    }

    async fn edit(&self, id: &KeyId, edit: &KeyEdit) -> Result<(), StoreError> {
        let result = self.shared.store.edit(id, edit).await;
        self.invalidate(id).await;
        result
    }

    async fn delete(&self, id: &KeyId) -> Result<(), StoreError> {
        let result = self.shared.store.delete(id).await;
        self.invalidate(id).await;
        result
    }

    async fn record_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        self.shared.store.record_usage(updates).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::{Identity, MemoryStore};

    #[derive(Clone, Default)]
    struct Counting {
        inner: MemoryStore,
        finds: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl KeyStore for Counting {
        async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
            self.finds.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            self.inner.find(id).await
        }
    }

    fn id(text: &str) -> KeyId {
        KeyId::parse(text).unwrap()
    }

    fn stored(id: KeyId) -> StoredKey {
        StoredKey::new(KeyHash::from_bytes([1; 32]), Identity::new(id, "u"))
    }

    #[tokio::test]
    async fn second_lookup_of_a_known_key_is_served_from_memory() {
        let counting = Counting::default();
        counting
            .inner
            .insert_key(stored(id("AAAAAAAAAAAAAAAA")))
            .unwrap();
        let cached = CachedStore::new(counting.clone());
        for _ in 0..3 {
            assert!(
                cached
                    .find(&id("AAAAAAAAAAAAAAAA"))
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        assert_eq!(counting.finds.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn unknown_id_is_remembered_apart() {
        let counting = Counting::default();
        let cached = CachedStore::new(counting.clone());
        for _ in 0..3 {
            assert!(
                cached
                    .find(&id("BBBBBBBBBBBBBBBB"))
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        assert_eq!(counting.finds.load(Ordering::SeqCst), 1);
        assert_eq!(cached.shared.positive.entry_count(), 0);
    }

    #[tokio::test]
    async fn invalidate_makes_the_next_lookup_ask_the_store() {
        let counting = Counting::default();
        let key = id("AAAAAAAAAAAAAAAA");
        counting.inner.insert_key(stored(key)).unwrap();
        let cached = CachedStore::new(counting.clone());
        cached.find(&key).await.unwrap();
        counting
            .inner
            .update(stored(key).with_revoked(true))
            .unwrap();
        cached.invalidate(&key).await;
        assert!(cached.find(&key).await.unwrap().unwrap().revoked);
        assert_eq!(counting.finds.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn entry_loaded_before_an_invalidation_is_not_served() {
        let counting = Counting::default();
        let key = id("AAAAAAAAAAAAAAAA");
        counting.inner.insert_key(stored(key)).unwrap();
        let cached = CachedStore::new(counting.clone());
        // Simulate the race: an entry whose lookup began before an invalidation lands
        // in the cache after it.
        let loaded_at = cached.shared.epoch.load(Ordering::SeqCst);
        cached.invalidate(&key).await;
        cached
            .shared
            .positive
            .insert(
                key,
                Entry {
                    key: stored(key),
                    loaded_at,
                },
            )
            .await;
        counting
            .inner
            .update(stored(key).with_revoked(true))
            .unwrap();
        assert!(cached.find(&key).await.unwrap().unwrap().revoked);
    }

    #[tokio::test]
    async fn a_hit_is_answered_without_waiting() {
        let counting = Counting::default();
        let key = id("AAAAAAAAAAAAAAAA");
        counting.inner.insert_key(stored(key)).unwrap();
        let cached = CachedStore::new(counting.clone());
        assert!(
            cached.find_ready(&key).is_none(),
            "a miss must go to the store"
        );
        cached.find(&key).await.unwrap();
        assert!(cached.find_ready(&key).unwrap().unwrap().is_some());
        cached.invalidate(&key).await;
        assert!(
            cached.find_ready(&key).is_none(),
            "an invalidated key must go to the store"
        );
        assert_eq!(counting.finds.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn bypass_sends_every_lookup_to_the_store() {
        let counting = Counting::default();
        let key = id("AAAAAAAAAAAAAAAA");
        counting.inner.insert_key(stored(key)).unwrap();
        let cached = CachedStore::new(counting.clone());
        cached.set_bypass(true);
        cached.find(&key).await.unwrap();
        cached.find(&key).await.unwrap();
        assert_eq!(counting.finds.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn store_errors_are_not_cached() {
        #[derive(Clone, Default)]
        struct Flaky(Arc<AtomicUsize>);
        #[async_trait]
        impl KeyStore for Flaky {
            async fn find(&self, _id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
                match self.0.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(StoreError::backend("down")),
                    _ => Ok(None),
                }
            }
        }
        let flaky = Flaky::default();
        let cached = CachedStore::new(flaky.clone());
        let key = id("AAAAAAAAAAAAAAAA");
        assert!(cached.find(&key).await.is_err());
        assert!(cached.find(&key).await.unwrap().is_none());
    }
}
