//! The conformance suite for [`KeyStore`] + [`KeyStoreWrite`]
//! implementations.
//!
//! Every store that ships with keygate passes it; run it against yours with one macro call
//! (no dependency of yours is needed beyond keygate with feature `testkit`):
//!
//! ```no_run
//! // tests/store_conformance.rs, or a `#[cfg(test)] mod` of a binary crate: one #[test]
//! // per check. The expression yields a fresh store for each check.
//! keygate::store_conformance!(async { keygate::MemoryStore::new() });
//! # fn main() {}
//! ```
//!
//! A store whose users and spaces must exist first (a foreign key to your `users` table,
//! integer ids) says how to make them with a [`Fixture`]:
//!
//! ```no_run
//! # #[cfg(feature = "sqlite")]
//! # mod conformance {
//! use keygate::testkit::Fixture;
//! # type MyStore = keygate::SqliteStore;
//!
//! struct Fresh;
//!
//! impl Fixture for Fresh {
//!     type Store = MyStore;
//!     async fn store(&self) -> MyStore {
//!         MyStore::connect("sqlite::memory:").await.unwrap()
//!     }
//!     async fn user(&self, store: &MyStore) -> String {
//!         // INSERT INTO users … RETURNING id, as the store's own schema wants it.
//! #       let _ = store;
//!         "42".to_owned()
//!     }
//! }
//!
//! keygate::store_conformance!(fixture = Fresh);
//! # }
//! # fn main() {}
//! ```
//!
//! Each check is its own `#[test]`, named after the behaviour it requires, so a failure
//! says which contract broke; each runs on a tokio runtime of its own, with a store of its
//! own. The checks are also public functions in [`checks`], for harnesses of your own.
//!
//! # The contracts
//!
//! - **Lookup.** `find` of an id never inserted is `Ok(None)`; of an inserted key, the
//!   inserted hash and the whole identity (user, space, scopes, name); revoked and expired
//!   keys are returned with their state set.
//! - **Insert.** A second insert of a taken id is `Err(Conflict)` and changes nothing.
//! - **Records.** `record` returns every field as inserted: name, preview, times, usage.
//! - **Listings.** `list_by_user` returns that user's keys and `list_by_space` that space's,
//!   revoked ones included, ordered by creation time, then by key id in byte order, oldest
//!   first; a page holds at most `limit` keys and the next page starts strictly after its
//!   cursor.
//! - **Secrets.** `replace_secret` changes hash and preview (name and the rest kept); with
//!   a deadline the replaced hash comes back as the previous secret, without one no
//!   previous secret remains; it never undoes a revocation; of an unknown id it is
//!   `Err(NotFound)`.
//! - **Revocation.** After `revoke`, `find` reports the key revoked and `record` its time;
//!   revoking again keeps the first time; of an unknown id it is `Err(NotFound)`.
//! - **Deletion.** After `delete`, the key is gone from `find`, `record` and listings; of
//!   an unknown id it is `Err(NotFound)`.
//! - **Usage.** `record_usage` adds counts and keeps the latest time; unknown ids are
//!   skipped without failing the batch.
//! - **Expiry** round-trips.
//! - **Edits.** After `edit`, `find` and `record` show every field it set (name, expiry,
//!   scopes, pause, rate limit, quota) and keep every other one, the secret included;
//!   `Some(None)` takes an expiry, a rate limit or a quota away; a record inserted paused
//!   and with limits is found so; of an unknown id it is `Err(NotFound)`.
//!
//! Times are compared at whole-second precision: stores may truncate below that.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::identity::Identity;
use crate::key::generate::KeyGenerator;
use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::limit::{Quota, RateLimit, Refill};
use crate::record::KeyRecord;
use crate::scopes::Scopes;
use crate::store::edit::KeyEdit;
use crate::store::error::StoreError;
use crate::store::key_store::KeyStore;
use crate::store::page::Page;
use crate::store::stored::PreviousSecret;
use crate::store::write::{KeyStoreWrite, UsageUpdate};

/// Where the suite gets a store, and the users and spaces it puts keys under.
///
/// Only `store` is required: by default users and spaces are random strings, which any
/// store with text owner columns accepts.
// Each check runs on a current-thread runtime of its own, so these futures need not be
// `Send`; requiring it would refuse stores whose connect futures the compiler cannot
// prove `Send` (sqlx's).
#[allow(async_fn_in_trait)]
pub trait Fixture {
    /// The store under test.
    type Store: KeyStoreWrite;

    /// A store in which the suite's random key ids are unknown: a fresh one is simplest.
    async fn store(&self) -> Self::Store;

    /// A new user that `store` accepts keys for, different on every call.
    async fn user(&self, store: &Self::Store) -> String {
        let _ = store;
        format!("user-{}", fresh_id())
    }

    /// A new space that `store` accepts keys in, different on every call.
    async fn space(&self, store: &Self::Store) -> String {
        let _ = store;
        format!("space-{}", fresh_id())
    }
}

/// A [`Fixture`] from a function that makes a fresh store: what
/// `store_conformance!(async { … })` builds.
pub struct Fresh<F>(pub F);

impl<F, Fut, S> Fixture for Fresh<F>
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: KeyStoreWrite,
{
    type Store = S;

    async fn store(&self) -> S {
        (self.0)().await
    }
}

impl<F> std::fmt::Debug for Fresh<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fresh")
    }
}

/// Runs one check to completion on a runtime of its own; what each generated test calls.
pub fn run(check: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("a tokio runtime for the check: {error}"))
        .block_on(check);
}

/// A new key id, as the generator makes them.
fn fresh_id() -> KeyId {
    KeyGenerator::default()
        .generate()
        .map(|key| key.id())
        .unwrap_or_else(|error| panic!("randomness unavailable: {error}"))
}

/// Runs every conformance check as its own `#[test]`.
///
/// `store_conformance!(EXPR)`: `EXPR` is an `impl Future<Output = S>` with
/// `S: KeyStoreWrite`, evaluated afresh for each check.
///
/// `store_conformance!(fixture = FIXTURE)`: `FIXTURE` implements [`Fixture`].
#[macro_export]
macro_rules! store_conformance {
    (fixture = $fixture:expr) => {
        $crate::store_conformance!(@checks $fixture;
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
            edit_is_seen_by_the_next_find_and_record,
            edit_changes_only_the_fields_it_sets,
            edit_takes_away_an_expiry_and_limits,
            disabled_key_round_trips_through_insert,
            edit_of_an_unknown_id_is_not_found,
        );
    };
    ($make:expr) => {
        $crate::store_conformance!(fixture = $crate::testkit::Fresh(|| $make));
    };
    (@checks $fixture:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::testkit::run(async {
                    $crate::testkit::checks::$check(&$fixture).await;
                });
            }
        )*
    };
}

/// The checks, one behaviour each (see the module documentation for the contracts).
pub mod checks {
    use super::*;

    /// A time with whole seconds, so that stores that truncate still compare equal.
    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
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

    /// A store with one key of a fresh user: the store, the key's id and its user.
    async fn one_key<F: Fixture>(fixture: &F) -> (F::Store, KeyId, String) {
        let store = fixture.store().await;
        let user = fixture.user(&store).await;
        let id = fresh_id();
        insert(&store, &record(id, &user, None, 1), hash(1)).await;
        (store, id, user)
    }

    fn ids(listed: Result<Vec<KeyRecord>, StoreError>) -> Vec<KeyId> {
        listed.expect("list").iter().map(KeyRecord::id).collect()
    }

    /// `find` of an id never inserted returns `Ok(None)`.
    pub async fn find_of_an_unknown_id_is_none<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let found = store.find(&fresh_id()).await.expect("find");
        assert!(found.is_none(), "an unknown id was found: {found:?}");
    }

    /// `find` returns the inserted hash and the whole identity.
    pub async fn inserted_key_is_found_with_its_hash_and_identity<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let (user, space) = (fixture.user(&store).await, fixture.space(&store).await);
        let id = fresh_id();
        let record = record(id, &user, Some(&space), 1);
        insert(&store, &record, hash(7)).await;
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
    pub async fn insert_of_a_taken_id_is_a_conflict_and_keeps_the_first<F: Fixture>(fixture: &F) {
        let (store, id, user) = one_key(fixture).await;
        let other = fixture.user(&store).await;
        let second = store.insert(&record(id, &other, None, 2), hash(2)).await;
        assert!(
            matches!(second, Err(StoreError::Conflict)),
            "expected Conflict, got {second:?}"
        );
        let found = store.find(&id).await.expect("find").expect("the first key");
        assert_eq!(found.identity.user(), user);
        assert_eq!(found.hash, hash(1));
    }

    /// `record` returns name, preview, times and usage as inserted.
    pub async fn record_returns_every_listing_field<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let (user, space) = (fixture.user(&store).await, fixture.space(&store).await);
        let id = fresh_id();
        let inserted = record(id, &user, Some(&space), 3).with_expires_at(Some(at(100)));
        insert(&store, &inserted, hash(1)).await;
        assert_eq!(read(&store, &id).await, inserted);
    }

    /// `list_by_user` returns that user's keys, revoked ones too, oldest first.
    pub async fn list_by_user_returns_only_that_users_keys_oldest_first<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let (user, other) = (fixture.user(&store).await, fixture.user(&store).await);
        let space = fixture.space(&store).await;
        let (old, new, others) = (fresh_id(), fresh_id(), fresh_id());
        insert(&store, &record(new, &user, None, 20), hash(1)).await;
        insert(&store, &record(old, &user, Some(&space), 10), hash(2)).await;
        insert(&store, &record(others, &other, None, 15), hash(3)).await;
        store.revoke(&old, at(30)).await.expect("revoke");
        let listed = ids(store.list_by_user(&user, Page::first(10)).await);
        assert_eq!(listed, [old, new]);
    }

    /// `list_by_space` returns the keys bound to that space only.
    pub async fn list_by_space_returns_only_that_spaces_keys<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let user = fixture.user(&store).await;
        let (space, elsewhere) = (fixture.space(&store).await, fixture.space(&store).await);
        let (inside, outside, unbound) = (fresh_id(), fresh_id(), fresh_id());
        insert(&store, &record(inside, &user, Some(&space), 1), hash(1)).await;
        insert(
            &store,
            &record(outside, &user, Some(&elsewhere), 2),
            hash(2),
        )
        .await;
        insert(&store, &record(unbound, &user, None, 3), hash(3)).await;
        let listed = ids(store.list_by_space(&space, Page::first(10)).await);
        assert_eq!(listed, [inside]);
    }

    /// A page holds at most `limit` keys, and the next page starts after the last of them.
    pub async fn list_pages_resume_after_the_cursor<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let user = fixture.user(&store).await;
        let mut inserted = Vec::new();
        for created in 1..=5 {
            let id = fresh_id();
            insert(&store, &record(id, &user, None, created), hash(1)).await;
            inserted.push(id);
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
        assert_eq!(pages, [&inserted[0..2], &inserted[2..4], &inserted[4..5]]);
    }

    /// Keys created at the same instant are listed by key id, in byte order, and the
    /// cursor tells them apart.
    pub async fn list_orders_keys_created_at_the_same_time_by_id<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let (user, space) = (fixture.user(&store).await, fixture.space(&store).await);
        let mut inserted: Vec<KeyId> = (0..4).map(|_| fresh_id()).collect();
        for id in &inserted {
            insert(&store, &record(*id, &user, Some(&space), 7), hash(1)).await;
        }
        inserted.sort();
        let first = store
            .list_by_space(&space, Page::first(3))
            .await
            .expect("list");
        let rest = store
            .list_by_space(&space, Page::after(&first[2], 3))
            .await
            .expect("list");
        let listed: Vec<KeyId> = first.iter().chain(&rest).map(KeyRecord::id).collect();
        assert_eq!(listed, inserted);
    }

    /// `replace_secret` is seen by the next `find` and `record`.
    pub async fn replace_secret_changes_the_hash_and_preview<F: Fixture>(fixture: &F) {
        let (store, id, _) = one_key(fixture).await;
        store
            .replace_secret(&id, hash(2), "kg_...NEW1", None)
            .await
            .expect("replace");
        let found = store.find(&id).await.expect("find").expect("the key");
        assert_eq!(found.hash, hash(2));
        let read = read(&store, &id).await;
        assert_eq!(read.preview, "kg_...NEW1");
        assert_eq!(read.identity.name(), "key 1", "the name is kept");
    }

    /// With a deadline, the replaced hash comes back from `find` as the previous secret.
    pub async fn replace_secret_keeps_the_previous_secret_when_given<F: Fixture>(fixture: &F) {
        let (store, id, _) = one_key(fixture).await;
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
    pub async fn replace_secret_without_previous_drops_the_old_one<F: Fixture>(fixture: &F) {
        let (store, id, _) = one_key(fixture).await;
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
    pub async fn replace_secret_of_an_unknown_id_is_not_found<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let result = store
            .replace_secret(&fresh_id(), hash(1), "kg_...0000", None)
            .await;
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "expected NotFound, got {result:?}"
        );
    }

    /// A revoked key stays revoked when its secret is replaced.
    pub async fn replace_secret_does_not_undo_a_revocation<F: Fixture>(fixture: &F) {
        let (store, id, _) = one_key(fixture).await;
        store.revoke(&id, at(5)).await.expect("revoke");
        let _ = store.replace_secret(&id, hash(2), "kg_...NEW1", None).await;
        let found = store.find(&id).await.expect("find").expect("the key");
        assert!(found.revoked);
    }

    /// After `revoke` returns, `find` reports the key revoked.
    pub async fn revoke_is_seen_by_the_next_find<F: Fixture>(fixture: &F) {
        let (store, id, _) = one_key(fixture).await;
        store.revoke(&id, at(5)).await.expect("revoke");
        let found = store
            .find(&id)
            .await
            .expect("find")
            .expect("a revoked key is still found");
        assert!(found.revoked);
        assert_eq!(read(&store, &id).await.revoked_at, Some(at(5)));
    }

    /// Revoking twice keeps the first time.
    pub async fn revoke_keeps_the_first_revocation_time<F: Fixture>(fixture: &F) {
        let (store, id, _) = one_key(fixture).await;
        store.revoke(&id, at(5)).await.expect("revoke");
        store.revoke(&id, at(9)).await.expect("second revoke");
        assert_eq!(read(&store, &id).await.revoked_at, Some(at(5)));
    }

    /// `revoke` of an unknown id fails with `NotFound`.
    pub async fn revoke_of_an_unknown_id_is_not_found<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let result = store.revoke(&fresh_id(), at(5)).await;
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "expected NotFound, got {result:?}"
        );
    }

    /// After `delete` returns, the key is gone from `find`, `record` and listings.
    pub async fn delete_removes_the_key_from_find_and_listings<F: Fixture>(fixture: &F) {
        let (store, gone, user) = one_key(fixture).await;
        let kept = fresh_id();
        insert(&store, &record(kept, &user, None, 2), hash(2)).await;
        store.delete(&gone).await.expect("delete");
        assert!(store.find(&gone).await.expect("find").is_none());
        assert!(store.record(&gone).await.expect("record").is_none());
        let listed = ids(store.list_by_user(&user, Page::first(10)).await);
        assert_eq!(listed, [kept]);
    }

    /// `delete` of an unknown id fails with `NotFound`.
    pub async fn delete_of_an_unknown_id_is_not_found<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let result = store.delete(&fresh_id()).await;
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "expected NotFound, got {result:?}"
        );
    }

    /// Usage batches add their counts and keep the latest time.
    pub async fn record_usage_adds_counts_and_keeps_the_latest_time<F: Fixture>(fixture: &F) {
        let (store, id, _) = one_key(fixture).await;
        let batch = |count, seconds| UsageUpdate {
            id,
            last_used_at: at(seconds),
            count,
        };
        store.record_usage(&[batch(3, 50)]).await.expect("usage");
        store.record_usage(&[batch(4, 40)]).await.expect("usage");
        let read = read(&store, &id).await;
        assert_eq!(read.use_count, 7);
        assert_eq!(read.last_used_at, Some(at(50)));
    }

    /// Usage for unknown ids is skipped without failing the batch.
    pub async fn record_usage_skips_unknown_ids<F: Fixture>(fixture: &F) {
        let (store, id, _) = one_key(fixture).await;
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
        assert_eq!(read(&store, &id).await.use_count, 2);
    }

    /// An expiry comes back from `find` as inserted.
    pub async fn expiry_round_trips<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let user = fixture.user(&store).await;
        let id = fresh_id();
        let record = record(id, &user, None, 1).with_expires_at(Some(at(3600)));
        insert(&store, &record, hash(1)).await;
        let found = store.find(&id).await.expect("find").expect("the key");
        assert_eq!(found.expires_at, Some(at(3600)));
    }

    fn limits() -> (RateLimit, Quota) {
        let rate = RateLimit::new(90, Duration::from_secs(60))
            .and_then(|limit| limit.with_burst(7))
            .unwrap_or_else(|error| panic!("a valid limit: {error}"));
        let quota = Quota::new(500, Refill::Monthly)
            .unwrap_or_else(|error| panic!("a valid quota: {error}"));
        (rate, quota)
    }

    /// After `edit` returns, `find` and `record` show every field it set: name, expiry,
    /// scopes, pause, rate limit and quota.
    pub async fn edit_is_seen_by_the_next_find_and_record<F: Fixture>(fixture: &F) {
        let (store, id, _) = one_key(fixture).await;
        let (rate, quota) = limits();
        let scopes = Scopes::new(["items:read"]).unwrap_or_default();
        let edit = KeyEdit::new()
            .rename("renamed")
            .expires_at(Some(at(7200)))
            .scopes(scopes.clone())
            .disable()
            .rate_limit(Some(rate))
            .quota(Some(quota));
        store.edit(&id, &edit).await.expect("edit");
        let found = store.find(&id).await.expect("find").expect("the key");
        assert_eq!(found.identity.name(), "renamed", "name");
        assert_eq!(found.expires_at, Some(at(7200)), "expiry");
        assert_eq!(found.identity.scopes(), &scopes, "scopes");
        assert!(found.disabled, "paused");
        assert_eq!(found.rate_limit, Some(rate), "rate limit");
        assert_eq!(found.quota, Some(quota), "quota");
        let record = read(&store, &id).await;
        assert_eq!(record.identity.name(), "renamed", "record name");
        assert!(record.disabled, "record paused");
        assert_eq!(record.rate_limit, Some(rate), "record rate limit");
        assert_eq!(record.quota, Some(quota), "record quota");
    }

    /// An edit that sets one field keeps every other one, and `enable` undoes `disable`.
    pub async fn edit_changes_only_the_fields_it_sets<F: Fixture>(fixture: &F) {
        let (store, id, _) = one_key(fixture).await;
        let before = read(&store, &id).await;
        store
            .edit(&id, &KeyEdit::new().disable())
            .await
            .expect("disable");
        store
            .edit(&id, &KeyEdit::new().enable())
            .await
            .expect("enable");
        store
            .edit(&id, &KeyEdit::new().rename("only the name"))
            .await
            .expect("rename");
        let after = read(&store, &id).await;
        assert_eq!(after.identity.name(), "only the name");
        assert_eq!(
            after.identity.scopes(),
            before.identity.scopes(),
            "scopes kept"
        );
        assert_eq!(after.expires_at, before.expires_at, "expiry kept");
        assert!(!after.disabled, "enabled again");
        let found = store.find(&id).await.expect("find").expect("the key");
        assert_eq!(found.hash, hash(1), "the secret is not an edit's to change");
    }

    /// `Some(None)` takes an expiry, a rate limit and a quota away.
    pub async fn edit_takes_away_an_expiry_and_limits<F: Fixture>(fixture: &F) {
        let (store, id, _) = one_key(fixture).await;
        let (rate, quota) = limits();
        let set = KeyEdit::new()
            .expires_at(Some(at(7200)))
            .rate_limit(Some(rate))
            .quota(Some(quota));
        store.edit(&id, &set).await.expect("set");
        let clear = KeyEdit::new().expires_at(None).rate_limit(None).quota(None);
        store.edit(&id, &clear).await.expect("clear");
        let found = store.find(&id).await.expect("find").expect("the key");
        assert_eq!(found.expires_at, None, "expiry");
        assert_eq!(found.rate_limit, None, "rate limit");
        assert_eq!(found.quota, None, "quota");
    }

    /// A record inserted paused and with limits is found that way.
    pub async fn disabled_key_round_trips_through_insert<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let user = fixture.user(&store).await;
        let id = fresh_id();
        let (rate, quota) = limits();
        let record = record(id, &user, None, 1)
            .with_disabled(true)
            .with_limits(Some(rate), Some(quota));
        insert(&store, &record, hash(1)).await;
        let found = store.find(&id).await.expect("find").expect("the key");
        assert!(found.disabled);
        assert_eq!((found.rate_limit, found.quota), (Some(rate), Some(quota)));
    }

    /// `edit` of an unknown id fails with `NotFound`.
    pub async fn edit_of_an_unknown_id_is_not_found<F: Fixture>(fixture: &F) {
        let store = fixture.store().await;
        let result = store.edit(&fresh_id(), &KeyEdit::new().rename("x")).await;
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "expected NotFound, got {result:?}"
        );
    }
}
