//! The invalidation log of a [`CachedStore`](super::CachedStore): which keys were
//! invalidated when, so that an entry whose lookup began before an invalidation of its key
//! is never served.
//!
//! The log is bounded. Forgetting a record must never make a stale entry look fresh, so
//! every record that leaves the log, whether pushed out by newer ones or aged out, raises
//! a *floor*: an entry loaded before the floor is treated as invalidated, whatever its
//! key. Under a flood of invalidations larger than the log, the cache thus degrades to a
//! full invalidation of older entries, never to serving one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::key::id::KeyId;

/// A bounded log of invalidations, by epoch.
pub(super) struct Invalidations {
    capacity: usize,
    /// How long a record must be kept: longer than any entry loaded before it can live.
    keep: Duration,
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    /// The latest invalidation epoch of each key in the log.
    latest: HashMap<KeyId, u64>,
    /// Every invalidation in the log, oldest first.
    order: VecDeque<(KeyId, u64, Instant)>,
    /// Entries loaded before this epoch are stale: records up to it have been forgotten.
    floor: u64,
}

impl Invalidations {
    pub(super) fn new(capacity: usize, keep: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            keep,
            log: Mutex::default(),
        }
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        // The log holds plain values; a panic elsewhere cannot leave it inconsistent.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `id` was invalidated at `epoch`.
    pub(super) fn record(&self, id: KeyId, epoch: u64, now: Instant) {
        let mut log = self.log();
        let latest = log.latest.entry(id).or_insert(epoch);
        // Keep the latest epoch: an older invalidation finishing last must not overwrite a
        // newer one, or an entry loaded between the two would pass for fresh.
        *latest = (*latest).max(epoch);
        log.order.push_back((id, epoch, now));
        while log.order.len() > self.capacity
            || log
                .order
                .front()
                .is_some_and(|(_, _, at)| now.saturating_duration_since(*at) > self.keep)
        {
            let Some((id, epoch, _)) = log.order.pop_front() else {
                break;
            };
            log.floor = log.floor.max(epoch);
            if log.latest.get(&id) == Some(&epoch) {
                log.latest.remove(&id);
            }
        }
    }

    /// Whether an entry of `id` loaded at epoch `loaded_at` has been invalidated since, or
    /// may have been (its record forgotten).
    pub(super) fn invalidated_since(&self, id: &KeyId, loaded_at: u64) -> bool {
        let log = self.log();
        log.floor > loaded_at || log.latest.get(id).is_some_and(|&at| at > loaded_at)
    }

    /// How many invalidations the log holds.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.log().order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> KeyId {
        KeyId::parse(&format!("{:A>16}", n)).unwrap()
    }

    const KEEP: Duration = Duration::from_secs(60);

    #[test]
    fn an_entry_loaded_before_its_keys_invalidation_is_stale() {
        let log = Invalidations::new(10, KEEP);
        log.record(id(1), 5, Instant::now());
        assert!(log.invalidated_since(&id(1), 4));
        assert!(!log.invalidated_since(&id(1), 5));
        assert!(!log.invalidated_since(&id(2), 4));
    }

    #[test]
    fn a_record_pushed_out_of_the_log_still_makes_older_entries_stale() {
        let log = Invalidations::new(2, KEEP);
        let now = Instant::now();
        log.record(id(1), 5, now);
        log.record(id(2), 6, now);
        log.record(id(3), 7, now);
        assert_eq!(log.len(), 2);
        assert!(log.invalidated_since(&id(1), 4), "the forgotten record");
        assert!(
            log.invalidated_since(&id(9), 4),
            "any key loaded before the floor"
        );
        assert!(!log.invalidated_since(&id(9), 5));
    }

    #[test]
    fn an_aged_out_record_raises_the_floor() {
        let log = Invalidations::new(10, KEEP);
        let start = Instant::now();
        log.record(id(1), 5, start);
        log.record(id(2), 6, start + KEEP + Duration::from_secs(1));
        assert_eq!(log.len(), 1);
        assert!(log.invalidated_since(&id(1), 4));
    }

    #[test]
    fn an_older_epoch_recorded_last_does_not_hide_a_newer_one() {
        let log = Invalidations::new(10, KEEP);
        let now = Instant::now();
        log.record(id(1), 9, now);
        log.record(id(1), 7, now);
        assert!(log.invalidated_since(&id(1), 8));
    }
}
