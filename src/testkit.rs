//! The conformance suite for [`KeyStore`](crate::KeyStore) + [`KeyStoreWrite`]
//! implementations.
//!
//! Every store that ships with keygate passes it; run it against yours with one macro call
//! in a test file (your crate needs `tokio` with `macros` and `rt` as a dev-dependency):
//!
//! ```no_run
//! // tests/store_conformance.rs: one #[tokio::test] per check.
//! // Put your own store here, e.g. `async { my_crate::MyStore::connect_fresh().await }`.
//! keygate::store_conformance!(async { keygate::MemoryStore::new() });
//! # fn main() {}
//! ```
//!
//! The expression is evaluated once per check and must yield a fresh, empty store (or at
//! least one where the checks' random key ids are unknown). Each check is its own
//! `#[tokio::test]`, named after the behaviour it requires, so a failure says which
//! contract broke. The checks are also public functions in [`checks`], for harnesses of
//! your own.
//!
//! Times are compared at whole-second precision: stores may truncate below that.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::identity::Identity;
use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::record::KeyRecord;
use crate::scopes::Scopes;
use crate::store::error::StoreError;
use crate::store::page::Page;
use crate::store::stored::PreviousSecret;
use crate::store::write::{KeyStoreWrite, UsageUpdate};

/// Runs every conformance check as its own `#[tokio::test]`.
///
/// The argument is an expression of type `impl Future<Output = S>` where
/// `S: KeyStoreWrite`, evaluated afresh for each check.
#[macro_export]
macro_rules! store_conformance {
    ($make:expr) => {
        $crate::store_conformance!(@checks $make;
            find_of_an_unknown_id_is_none,
            inserted_key_is_found_with_its_hash_and_identity,
            insert_of_a_taken_id_is_a_conflict_and_keeps_the_first,
            record_returns_every_listing_field,
            list_by_user_returns_only_that_users_keys_oldest_first,
            list_by_space_returns_only_that_spaces_keys,
            list_pages_resume_after_the_cursor,
            list_orders_keys_created_at_the_same_time_by_id,
            replace_secret_changes_the_hash_and_preview,
            replace_secret_keeps_the_previous_secret_when_given,
            replace_secret_without_previous_drops_the_old_one,
            replace_secret_of_an_unknown_id_is_not_found,
            replace_secret_does_not_undo_a_revocation,
            revoke_is_seen_by_the_next_find,
            revoke_keeps_the_first_revocation_time,
            revoke_of_an_unknown_id_is_not_found,
            delete_removes_the_key_from_find_and_listings,
            delete_of_an_unknown_id_is_not_found,
            record_usage_adds_counts_and_keeps_the_latest_time,
            record_usage_skips_unknown_ids,
            expiry_round_trips,
        );
    };
    (@checks $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $check() {
                let store = $make.await;
                $crate::testkit::checks::$check(&store).await;
            }
        )*
    };
}

/// The checks, one behaviour each. Each takes a store in which its key ids are unknown.
pub mod checks {
    use super::*;

    /// A time with whole seconds, so that stores that truncate still compare equal.
    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
    }

    fn fresh_id() -> KeyId {
        crate::key::generate::KeyGenerator::default()
            .generate()
            .map(|key| key.id())
            .unwrap_or_else(|error| panic!("randomness unavailable: {error}"))
    }

    fn hash(byte: u8) -> KeyHash {
        KeyHash::from_bytes([byte; 32])
    }

    fn record(id: KeyId, user: &str, space: Option<&str>, created: u64) -> KeyRecord {
        let mut identity = Identity::new(id, user)
            .with_name(format!("key {created}"))
            .with_scopes(Scopes::new(["items:read", "keys:write"]).unwrap_or_default());
        if let Some(space) = space {
            identity = identity.with_space(space);
        }
        KeyRecord::new(identity, format!("kg_...{created:04}"), at(created))
    }

    async fn insert<S: KeyStoreWrite + ?Sized>(store: &S, record: &KeyRecord, hash: KeyHash) {
        if let Err(error) = store.insert(record, hash).await {
            panic!("insert of a fresh key failed: {error:?}");
        }
    }

    async fn read<S: KeyStoreWrite + ?Sized>(store: &S, id: &KeyId) -> KeyRecord {
        match store.record(id).await {
            Ok(Some(record)) => record,
            other => panic!("the record of an inserted key: {other:?}"),
        }
    }

    /// `find` of an id never inserted returns `Ok(None)`.
    pub async fn find_of_an_unknown_id_is_none<S: KeyStoreWrite + ?Sized>(store: &S) {
        let found = store.find(&fresh_id()).await.expect("find");
        assert!(found.is_none(), "an unknown id was found: {found:?}");
    }

    /// `find` returns the inserted hash and the whole identity.
    pub async fn inserted_key_is_found_with_its_hash_and_identity<S: KeyStoreWrite + ?Sized>(
        store: &S,
    ) {
        let id = fresh_id();
        let record = record(id, "alice", Some("space-1"), 1);
        insert(store, &record, hash(7)).await;
        let found = store
            .find(&id)
            .await
            .expect("find")
            .expect("the inserted key");
        assert_eq!(found.hash, hash(7), "hash");
        assert_eq!(found.identity, record.identity, "identity");
        assert!(!found.revoked, "a new key is not revoked");
        assert_eq!(found.expires_at, None, "expiry");
        assert_eq!(found.previous, None, "previous secret");
    }

    /// A second insert with the same id fails with `Conflict` and changes nothing.
    pub async fn insert_of_a_taken_id_is_a_conflict_and_keeps_the_first<
        S: KeyStoreWrite + ?Sized,
    >(
        store: &S,
    ) {
        let id = fresh_id();
        insert(store, &record(id, "alice", None, 1), hash(1)).await;
        let second = store.insert(&record(id, "mallory", None, 2), hash(2)).await;
        assert!(
            matches!(second, Err(StoreError::Conflict)),
            "expected Conflict, got {second:?}"
        );
        let found = store.find(&id).await.expect("find").expect("the first key");
        assert_eq!(found.identity.user(), "alice");
        assert_eq!(found.hash, hash(1));
    }

    /// `record` returns name, preview, times and usage as inserted.
    pub async fn record_returns_every_listing_field<S: KeyStoreWrite + ?Sized>(store: &S) {
        let id = fresh_id();
        let inserted = record(id, "alice", Some("space-1"), 3).with_expires_at(Some(at(100)));
        insert(store, &inserted, hash(1)).await;
        let read = read(store, &id).await;
        assert_eq!(read, inserted);
    }

    /// `list_by_user` returns that user's keys, revoked ones too, oldest first.
    pub async fn list_by_user_returns_only_that_users_keys_oldest_first<
        S: KeyStoreWrite + ?Sized,
    >(
        store: &S,
    ) {
        let user = format!("user-{}", fresh_id());
        let (old, new, other) = (fresh_id(), fresh_id(), fresh_id());
        insert(store, &record(new, &user, None, 20), hash(1)).await;
        insert(store, &record(old, &user, Some("s"), 10), hash(2)).await;
        insert(store, &record(other, "someone else", None, 15), hash(3)).await;
        store.revoke(&old, at(30)).await.expect("revoke");
        let listed: Vec<KeyId> = store
            .list_by_user(&user, Page::first(10))
            .await
            .expect("list")
            .iter()
            .map(KeyRecord::id)
            .collect();
        assert_eq!(listed, [old, new]);
    }

    /// `list_by_space` returns the keys bound to that space only.
    pub async fn list_by_space_returns_only_that_spaces_keys<S: KeyStoreWrite + ?Sized>(store: &S) {
        let space = format!("space-{}", fresh_id());
        let (inside, outside, unbound) = (fresh_id(), fresh_id(), fresh_id());
        insert(store, &record(inside, "alice", Some(&space), 1), hash(1)).await;
        insert(
            store,
            &record(outside, "alice", Some("elsewhere"), 2),
            hash(2),
        )
        .await;
        insert(store, &record(unbound, "alice", None, 3), hash(3)).await;
        let listed: Vec<KeyId> = store
            .list_by_space(&space, Page::first(10))
            .await
            .expect("list")
            .iter()
            .map(KeyRecord::id)
            .collect();
        assert_eq!(listed, [inside]);
    }

    /// A page holds at most `limit` keys, and the next page starts after the last of them.
    pub async fn list_pages_resume_after_the_cursor<S: KeyStoreWrite + ?Sized>(store: &S) {
        let user = format!("user-{}", fresh_id());
        let mut ids = Vec::new();
        for created in 1..=5 {
            let id = fresh_id();
            insert(store, &record(id, &user, None, created), hash(1)).await;
            ids.push(id);
        }
        let first = store
            .list_by_user(&user, Page::first(2))
            .await
            .expect("list");
        let second = store
            .list_by_user(&user, Page::after(&first[1], 2))
            .await
            .expect("list");
        let last = store
            .list_by_user(&user, Page::after(&second[1], 2))
            .await
            .expect("list");
        let pages: Vec<Vec<KeyId>> = [first, second, last]
            .iter()
            .map(|page| page.iter().map(KeyRecord::id).collect())
            .collect();
        assert_eq!(pages, [&ids[0..2], &ids[2..4], &ids[4..5]]);
    }

    /// Keys created at the same instant are listed by key id, in byte order, and the
    /// cursor tells them apart.
    pub async fn list_orders_keys_created_at_the_same_time_by_id<S: KeyStoreWrite + ?Sized>(
        store: &S,
    ) {
        let space = format!("space-{}", fresh_id());
        let mut ids: Vec<KeyId> = (0..4).map(|_| fresh_id()).collect();
        for id in &ids {
            insert(store, &record(*id, "alice", Some(&space), 7), hash(1)).await;
        }
        ids.sort();
        let first = store
            .list_by_space(&space, Page::first(3))
            .await
            .expect("list");
        let rest = store
            .list_by_space(&space, Page::after(&first[2], 3))
            .await
            .expect("list");
        let listed: Vec<KeyId> = first.iter().chain(&rest).map(KeyRecord::id).collect();
        assert_eq!(listed, ids);
    }

    /// `replace_secret` is seen by the next `find` and `record`.
    pub async fn replace_secret_changes_the_hash_and_preview<S: KeyStoreWrite + ?Sized>(store: &S) {
        let id = fresh_id();
        insert(store, &record(id, "alice", None, 1), hash(1)).await;
        store
            .replace_secret(&id, hash(2), "kg_...NEW1", None)
            .await
            .expect("replace");
        let found = store.find(&id).await.expect("find").expect("the key");
        assert_eq!(found.hash, hash(2));
        let read = read(store, &id).await;
        assert_eq!(read.preview, "kg_...NEW1");
        assert_eq!(read.identity.name(), "key 1", "the name is kept");
    }

    /// With a deadline, the replaced hash comes back from `find` as the previous secret.
    pub async fn replace_secret_keeps_the_previous_secret_when_given<S: KeyStoreWrite + ?Sized>(
        store: &S,
    ) {
        let id = fresh_id();
        insert(store, &record(id, "alice", None, 1), hash(1)).await;
        store
            .replace_secret(&id, hash(2), "kg_...NEW1", Some(at(500)))
            .await
            .expect("replace");
        let found = store.find(&id).await.expect("find").expect("the key");
        let replaced = PreviousSecret {
            hash: hash(1),
            valid_until: at(500),
        };
        assert_eq!(found.previous, Some(replaced));
    }

    /// `replace_secret` without a deadline leaves no previous secret, even if one was kept.
    pub async fn replace_secret_without_previous_drops_the_old_one<S: KeyStoreWrite + ?Sized>(
        store: &S,
    ) {
        let id = fresh_id();
        insert(store, &record(id, "alice", None, 1), hash(1)).await;
        store
            .replace_secret(&id, hash(2), "kg_...NEW1", Some(at(500)))
            .await
            .expect("replace");
        store
            .replace_secret(&id, hash(3), "kg_...NEW2", None)
            .await
            .expect("replace");
        let found = store.find(&id).await.expect("find").expect("the key");
        assert_eq!(found.hash, hash(3));
        assert_eq!(found.previous, None);
    }

    /// `replace_secret` of an unknown id fails with `NotFound`.
    pub async fn replace_secret_of_an_unknown_id_is_not_found<S: KeyStoreWrite + ?Sized>(
        store: &S,
    ) {
        let result = store
            .replace_secret(&fresh_id(), hash(1), "kg_...0000", None)
            .await;
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "expected NotFound, got {result:?}"
        );
    }

    /// A revoked key stays revoked when its secret is replaced.
    pub async fn replace_secret_does_not_undo_a_revocation<S: KeyStoreWrite + ?Sized>(store: &S) {
        let id = fresh_id();
        insert(store, &record(id, "alice", None, 1), hash(1)).await;
        store.revoke(&id, at(5)).await.expect("revoke");
        let _ = store.replace_secret(&id, hash(2), "kg_...NEW1", None).await;
        let found = store.find(&id).await.expect("find").expect("the key");
        assert!(found.revoked);
    }

    /// After `revoke` returns, `find` reports the key revoked.
    pub async fn revoke_is_seen_by_the_next_find<S: KeyStoreWrite + ?Sized>(store: &S) {
        let id = fresh_id();
        insert(store, &record(id, "alice", None, 1), hash(1)).await;
        store.revoke(&id, at(5)).await.expect("revoke");
        let found = store
            .find(&id)
            .await
            .expect("find")
            .expect("a revoked key is still found");
        assert!(found.revoked);
        let read = read(store, &id).await;
        assert_eq!(read.revoked_at, Some(at(5)));
    }

    /// Revoking twice keeps the first time.
    pub async fn revoke_keeps_the_first_revocation_time<S: KeyStoreWrite + ?Sized>(store: &S) {
        let id = fresh_id();
        insert(store, &record(id, "alice", None, 1), hash(1)).await;
        store.revoke(&id, at(5)).await.expect("revoke");
        store.revoke(&id, at(9)).await.expect("second revoke");
        let read = read(store, &id).await;
        assert_eq!(read.revoked_at, Some(at(5)));
    }

    /// `revoke` of an unknown id fails with `NotFound`.
    pub async fn revoke_of_an_unknown_id_is_not_found<S: KeyStoreWrite + ?Sized>(store: &S) {
        let result = store.revoke(&fresh_id(), at(5)).await;
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "expected NotFound, got {result:?}"
        );
    }

    /// After `delete` returns, the key is gone from `find`, `record` and listings.
    pub async fn delete_removes_the_key_from_find_and_listings<S: KeyStoreWrite + ?Sized>(
        store: &S,
    ) {
        let user = format!("user-{}", fresh_id());
        let (gone, kept) = (fresh_id(), fresh_id());
        insert(store, &record(gone, &user, None, 1), hash(1)).await;
        insert(store, &record(kept, &user, None, 2), hash(2)).await;
        store.delete(&gone).await.expect("delete");
        assert!(store.find(&gone).await.expect("find").is_none());
        assert!(store.record(&gone).await.expect("record").is_none());
        let listed: Vec<KeyId> = store
            .list_by_user(&user, Page::first(10))
            .await
            .expect("list")
            .iter()
            .map(KeyRecord::id)
            .collect();
        assert_eq!(listed, [kept]);
    }

    /// `delete` of an unknown id fails with `NotFound`.
    pub async fn delete_of_an_unknown_id_is_not_found<S: KeyStoreWrite + ?Sized>(store: &S) {
        let result = store.delete(&fresh_id()).await;
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "expected NotFound, got {result:?}"
        );
    }

    /// Usage batches add their counts and keep the latest time.
    pub async fn record_usage_adds_counts_and_keeps_the_latest_time<S: KeyStoreWrite + ?Sized>(
        store: &S,
    ) {
        let id = fresh_id();
        insert(store, &record(id, "alice", None, 1), hash(1)).await;
        let batch = |count, seconds| UsageUpdate {
            id,
            last_used_at: at(seconds),
            count,
        };
        store.record_usage(&[batch(3, 50)]).await.expect("usage");
        store.record_usage(&[batch(4, 40)]).await.expect("usage");
        let read = read(store, &id).await;
        assert_eq!(read.use_count, 7);
        assert_eq!(read.last_used_at, Some(at(50)));
    }

    /// Usage for unknown ids is skipped without failing the batch.
    pub async fn record_usage_skips_unknown_ids<S: KeyStoreWrite + ?Sized>(store: &S) {
        let id = fresh_id();
        insert(store, &record(id, "alice", None, 1), hash(1)).await;
        let updates = [
            UsageUpdate {
                id: fresh_id(),
                last_used_at: at(10),
                count: 1,
            },
            UsageUpdate {
                id,
                last_used_at: at(10),
                count: 2,
            },
        ];
        store.record_usage(&updates).await.expect("usage");
        let read = read(store, &id).await;
        assert_eq!(read.use_count, 2);
    }

    /// An expiry comes back from `find` as inserted.
    pub async fn expiry_round_trips<S: KeyStoreWrite + ?Sized>(store: &S) {
        let id = fresh_id();
        let record = record(id, "alice", None, 1).with_expires_at(Some(at(3600)));
        insert(store, &record, hash(1)).await;
        let found = store.find(&id).await.expect("find").expect("the key");
        assert_eq!(found.expires_at, Some(at(3600)));
    }
}
