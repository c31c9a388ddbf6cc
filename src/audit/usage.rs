//! Last-used tracking: per-key `last_used_at` and use counts, coalesced in memory and
//! written to the store in batches instead of once per request.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::key::id::KeyId;
use crate::store::error::StoreError;
use crate::store::write::{KeyStoreWrite, UsageUpdate};

/// Default number of distinct keys held between two flushes.
pub(crate) const DEFAULT_MAX_KEYS: usize = 100_000;
/// Default time between two flushes.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// Coalesces successful uses per key until the next flush.
pub(crate) struct UsageTracker {
    store: Arc<dyn KeyStoreWrite>,
    pending: Mutex<HashMap<KeyId, Pending>>,
    max_keys: usize,
    interval: Duration,
    dropped: AtomicU64,
    #[cfg(feature = "tokio")]
    flusher: std::sync::Once,
}

#[derive(Clone, Copy)]
struct Pending {
    last_used_at: SystemTime,
    count: u64,
}

impl UsageTracker {
    pub(crate) fn new(store: Arc<dyn KeyStoreWrite>, interval: Duration, max_keys: usize) -> Self {
        Self {
            store,
            pending: Mutex::default(),
            max_keys: max_keys.max(1),
            interval,
            dropped: AtomicU64::new(0),
            #[cfg(feature = "tokio")]
            flusher: std::sync::Once::new(),
        }
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<KeyId, Pending>> {
        // The map holds plain counters; a panic elsewhere cannot leave it inconsistent.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes one successful use. When the map already holds `max_keys` other keys, the use
    /// is dropped and counted rather than letting memory grow.
    pub(crate) fn record(&self, id: KeyId, at: SystemTime) {
        let mut pending = self.pending();
        let len = pending.len();
        match pending.entry(id) {
            Entry::Occupied(mut entry) => {
                let entry = entry.get_mut();
                entry.last_used_at = entry.last_used_at.max(at);
                entry.count = entry.count.saturating_add(1);
            }
            Entry::Vacant(_) if len >= self.max_keys => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                #[cfg(feature = "metrics")]
                crate::audit::metrics::usage_dropped();
            }
            Entry::Vacant(entry) => {
                entry.insert(Pending {
                    last_used_at: at,
                    count: 1,
                });
            }
        }
    }

    /// Writes everything pending in one batch. If the write fails, or the flush is
    /// cancelled mid-write (a shutdown timeout, a dropped future), the batch is merged back
    /// for the next flush.
    pub(crate) async fn flush(&self) -> Result<usize, StoreError> {
        let batch = std::mem::take(&mut *self.pending());
        if batch.is_empty() {
            return Ok(0);
        }
        let updates: Vec<UsageUpdate> = batch
            .iter()
            .map(|(id, pending)| UsageUpdate {
                id: *id,
                last_used_at: pending.last_used_at,
                count: pending.count,
            })
            .collect();
        let mut guard = MergeBack {
            tracker: self,
            batch: Some(batch),
        };
        self.store.record_usage(&updates).await?;
        guard.batch = None;
        Ok(updates.len())
    }

    /// Puts a batch that was not written back into the pending map, within the bound.
    fn merge_back(&self, batch: HashMap<KeyId, Pending>) {
        let mut pending = self.pending();
        for (id, failed) in batch {
            let len = pending.len();
            match pending.entry(id) {
                Entry::Occupied(mut entry) => {
                    let entry = entry.get_mut();
                    entry.last_used_at = entry.last_used_at.max(failed.last_used_at);
                    entry.count = entry.count.saturating_add(failed.count);
                }
                Entry::Vacant(_) if len >= self.max_keys => {
                    self.dropped.fetch_add(failed.count, Ordering::Relaxed);
                }
                Entry::Vacant(entry) => {
                    entry.insert(failed);
                }
            }
        }
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Starts the periodic flush on the current tokio runtime, once. Called from the
    /// request path, which is where a runtime is known to be running; outside one this
    /// does nothing and flushing is left to explicit calls.
    #[cfg(feature = "tokio")]
    pub(crate) fn start_flusher(self: &Arc<Self>) {
        self.flusher.call_once(|| {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let tracker = Arc::downgrade(self);
            let interval = self.interval;
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval(interval);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticks.tick().await; // the first tick is immediate
                loop {
                    ticks.tick().await;
                    // The task ends with the layer: it holds the tracker only weakly.
                    let Some(tracker) = tracker.upgrade() else {
                        return;
                    };
                    if let Err(error) = tracker.flush().await {
                        tracing::warn!(
                            target: "keygate::usage",
                            error = &error as &dyn std::error::Error,
                            "writing last-used data failed; retrying at the next flush"
                        );
                    }
                }
            });
        });
    }
}

/// Merges an unwritten batch back when dropped, unless the write succeeded.
struct MergeBack<'a> {
    tracker: &'a UsageTracker,
    batch: Option<HashMap<KeyId, Pending>>,
}

impl Drop for MergeBack<'_> {
    fn drop(&mut self) {
        if let Some(batch) = self.batch.take() {
            self.tracker.merge_back(batch);
        }
    }
}

impl fmt::Debug for UsageTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageTracker")
            .field("interval", &self.interval)
            .field("max_keys", &self.max_keys)
            .field("pending", &self.pending().len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::{Identity, KeyHash, KeyRecord, MemoryStore};

    fn id(n: u8) -> KeyId {
        KeyId::parse(&format!("{:016}", n)).unwrap()
    }

    async fn store_with(ids: &[KeyId]) -> MemoryStore {
        let store = MemoryStore::new();
        for id in ids {
            let record = KeyRecord::new(Identity::new(*id, "u"), "", UNIX_EPOCH);
            KeyStoreWrite::insert(&store, &record, KeyHash::from_bytes([0; 32]))
                .await
                .unwrap();
        }
        store
    }

    #[tokio::test]
    async fn uses_are_coalesced_into_one_update_per_key() {
        let store = store_with(&[id(1)]).await;
        let tracker = UsageTracker::new(Arc::new(store.clone()), DEFAULT_INTERVAL, 10);
        for second in [5, 9, 7] {
            tracker.record(id(1), UNIX_EPOCH + Duration::from_secs(second));
        }
        assert_eq!(tracker.flush().await.unwrap(), 1);
        let record = store.record(&id(1)).await.unwrap().unwrap();
        assert_eq!(record.use_count, 3);
        assert_eq!(
            record.last_used_at,
            Some(UNIX_EPOCH + Duration::from_secs(9))
        );
    }

    #[tokio::test]
    async fn keys_beyond_the_bound_are_dropped_and_counted() {
        let store = store_with(&[]).await;
        let tracker = UsageTracker::new(Arc::new(store), DEFAULT_INTERVAL, 2);
        for n in 1..=3 {
            tracker.record(id(n), UNIX_EPOCH);
        }
        tracker.record(id(1), UNIX_EPOCH);
        assert_eq!(tracker.dropped(), 1);
        assert_eq!(tracker.flush().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn cancelled_flush_keeps_the_batch_for_the_next_one() {
        struct Hanging;
        #[async_trait::async_trait]
        impl crate::KeyStore for Hanging {
            async fn find(&self, _: &KeyId) -> Result<Option<crate::StoredKey>, StoreError> {
                Ok(None)
            }
        }
        #[async_trait::async_trait]
        impl KeyStoreWrite for Hanging {
            async fn insert(&self, _: &KeyRecord, _: KeyHash) -> Result<(), StoreError> {
                Ok(())
            }
            async fn record(&self, _: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
                Ok(None)
            }
            async fn list_by_user(
                &self,
                _: &str,
                _: crate::Page,
            ) -> Result<Vec<KeyRecord>, StoreError> {
                Ok(vec![])
            }
            async fn list_by_space(
                &self,
                _: &str,
                _: crate::Page,
            ) -> Result<Vec<KeyRecord>, StoreError> {
                Ok(vec![])
            }
            async fn replace_secret(
                &self,
                _: &KeyId,
                _: KeyHash,
                _: &str,
                _: Option<SystemTime>,
            ) -> Result<(), StoreError> {
                Ok(())
            }
            async fn revoke(&self, _: &KeyId, _: SystemTime) -> Result<(), StoreError> {
                Ok(())
            }
            async fn edit(&self, _: &KeyId, _: &crate::KeyEdit) -> Result<(), StoreError> {
                Ok(())
            }
            async fn delete(&self, _: &KeyId) -> Result<(), StoreError> {
                Ok(())
            }
            async fn record_usage(&self, _: &[UsageUpdate]) -> Result<(), StoreError> {
                std::future::pending().await
            }
        }
        let tracker = UsageTracker::new(Arc::new(Hanging), DEFAULT_INTERVAL, 10);
        tracker.record(id(1), UNIX_EPOCH);
        let cancelled = tokio::time::timeout(Duration::from_millis(1), tracker.flush()).await;
        assert!(cancelled.is_err());
        assert_eq!(tracker.pending().get(&id(1)).map(|p| p.count), Some(1));
    }

    #[tokio::test]
    async fn empty_flush_writes_nothing() {
        let tracker = UsageTracker::new(Arc::new(MemoryStore::new()), DEFAULT_INTERVAL, 2);
        assert_eq!(tracker.flush().await.unwrap(), 0);
    }
}
