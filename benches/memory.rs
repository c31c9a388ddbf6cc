//! Bytes per key in `MemoryStore` at 1,000,000 keys, measured two ways: live heap bytes
//! (a counting allocator) and resident memory (RSS from /proc), before and after.
//!
//! `cargo bench --bench memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use keygate::{Identity, KeyHash, KeyId, MemoryStore, StoredKey};

/// Counts the bytes currently allocated through it.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: no unsafe code of ours: each method forwards to `System` and counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    const KEYS: usize = 1_000_000;
    let (heap_before, rss_before) = (LIVE.load(Ordering::Relaxed), resident_bytes());

    // Everything a stored key holds is made here: its identity (a user id of its own, the
    // worst case: no sharing between keys), its hash, and its place in the map.
    let store = MemoryStore::new();
    for n in 0..KEYS {
        let id = KeyId::parse(&format!("{n:016}")).expect("sixteen digits");
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&(n as u64).to_le_bytes());
        let identity = Identity::new(id, format!("user-{n:08}"));
        store
            .insert_key(StoredKey::new(KeyHash::from_bytes(hash), identity))
            .expect("unique ids");
    }

    let (heap_after, rss_after) = (LIVE.load(Ordering::Relaxed), resident_bytes());
    let per_key = |before: usize, after: usize| after.saturating_sub(before) as f64 / KEYS as f64;
    println!("MemoryStore with {} keys ({} stored)", KEYS, store.len());
    println!(
        "  heap bytes per key (live allocations): {:.0}",
        per_key(heap_before, heap_after)
    );
    println!(
        "  resident bytes per key (RSS delta):    {:.0}",
        per_key(rss_before, rss_after)
    );
    println!("  target: <= 150 bytes/key");
}
