//! CachedStore behind the layer: single-flight misses and invalidation on writes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use common::send;
use http::StatusCode;
use keygate::{
    CacheConfig, CachedStore, KeyGenerator, KeyId, KeySource, KeyStore, Keygate, MemoryStore,
    NewKey, StoreError, StoredKey,
};
use tokio::task::JoinSet;

/// A store that counts lookups and answers only after a pause (paused clock), so that
/// concurrent requests overlap.
#[derive(Clone, Default)]
struct SlowCounting {
    inner: MemoryStore,
    finds: Arc<AtomicUsize>,
}

#[async_trait]
impl KeyStore for SlowCounting {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.inner.find(id).await
    }
}

fn app(store: impl KeyStore) -> Router {
    let layer = Keygate::read_only(store)
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .layer();
    Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(layer)
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_requests_with_one_unknown_key_make_one_store_call() {
    let store = SlowCounting::default();
    let cached = CachedStore::new(store.clone());
    let app = app(cached);
    let unknown = KeyGenerator::default().generate().unwrap();
    let key = unknown.expose_secret().to_owned();

    let mut requests = JoinSet::new();
    for _ in 0..1000 {
        let (app, key) = (app.clone(), key.clone());
        requests.spawn(async move { send(app, &[("x-api-key", key.as_bytes())]).await.status });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(store.finds.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_repeated_unknown_key_is_answered_from_the_negative_cache() {
    let store = SlowCounting::default();
    let config = CacheConfig {
        negative_ttl: Duration::from_secs(5),
        ..CacheConfig::default()
    };
    let app = app(CachedStore::with_config(store.clone(), config));
    let unknown = KeyGenerator::default().generate().unwrap();
    let header = [("x-api-key", unknown.expose_secret().as_bytes())];
    send(app.clone(), &header).await;
    send(app.clone(), &header).await;
    assert_eq!(store.finds.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn random_keys_do_not_evict_known_ones() {
    let store = SlowCounting::default();
    let keygate = Keygate::new(store.inner.clone());
    let manager = keygate.manager();
    let known = manager.create(NewKey::new("alice", "k")).await.unwrap();
    let config = CacheConfig {
        capacity: 10,
        negative_capacity: 10,
        ..CacheConfig::default()
    };
    let app = app(CachedStore::with_config(store.clone(), config));
    let header = [("x-api-key", known.key.expose_secret().as_bytes())];
    assert_eq!(send(app.clone(), &header).await.status, StatusCode::OK);
    for _ in 0..200 {
        let random = KeyGenerator::default().generate().unwrap();
        send(
            app.clone(),
            &[("x-api-key", random.expose_secret().as_bytes())],
        )
        .await;
    }
    let before = store.finds.load(Ordering::SeqCst);
    assert_eq!(send(app.clone(), &header).await.status, StatusCode::OK);
    assert_eq!(
        store.finds.load(Ordering::SeqCst),
        before,
        "the known key was evicted"
    );
}

#[tokio::test]
async fn revoke_through_the_cache_kills_the_key_on_the_next_request() {
    let cached = CachedStore::new(MemoryStore::new());
    let keygate = Keygate::new(cached.clone());
    let manager = keygate.manager();
    let created = manager.create(NewKey::new("alice", "k")).await.unwrap();
    let app = Router::new().route("/me", get(|| async { "ok" })).layer(
        keygate
            .clone()
            .with_sources([KeySource::header("x-api-key").unwrap()])
            .unwrap()
            .layer(),
    );
    let header = [("x-api-key", created.key.expose_secret().as_bytes())];
    assert_eq!(send(app.clone(), &header).await.status, StatusCode::OK);
    manager.revoke(&created.record.id()).await.unwrap();
    assert_eq!(send(app, &header).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn regenerating_with_grace_on_a_stale_instance_never_revives_an_older_secret() {
    // Two instances share one store but not their caches, and no invalidation reaches B.
    let shared = MemoryStore::new();
    let keygate_a = Keygate::new(CachedStore::new(shared.clone()));
    let a = keygate_a.manager();
    let keygate_b = Keygate::new(CachedStore::new(shared.clone()));
    let b = keygate_b.manager();
    let first = a.create(NewKey::new("alice", "k")).await.unwrap();
    let id = first.record.id();
    let app_b = Router::new().route("/me", get(|| async { "ok" })).layer(
        keygate_b
            .clone()
            .with_sources([KeySource::header("x-api-key").unwrap()])
            .unwrap()
            .layer(),
    );
    let old = [("x-api-key", first.key.expose_secret().as_bytes())];
    assert_eq!(send(app_b.clone(), &old).await.status, StatusCode::OK); // B caches S1

    a.regenerate(&id, None).await.unwrap(); // S1 leaked: replaced, no grace
    b.regenerate(&id, Some(Duration::from_secs(3600)))
        .await
        .unwrap(); // grace for S2

    let keygate_fresh = Keygate::new(shared);
    let app = Router::new().route("/me", get(|| async { "ok" })).layer(
        keygate_fresh
            .clone()
            .with_sources([KeySource::header("x-api-key").unwrap()])
            .unwrap()
            .layer(),
    );
    assert_eq!(send(app, &old).await.status, StatusCode::UNAUTHORIZED);
}

/// A store whose lookups of one key read the store, then wait at a gate before answering:
/// a lookup that began before a write and ends after it.
#[derive(Clone)]
struct Gated {
    inner: MemoryStore,
    gated: KeyId,
    gate: Arc<tokio::sync::Semaphore>,
}

#[async_trait]
impl KeyStore for Gated {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        let found = self.inner.find(id).await;
        if *id == self.gated {
            let _pass = self.gate.acquire().await.expect("gate open");
        }
        found
    }
}

#[tokio::test]
async fn revoked_key_is_never_served_after_invalidations_overflow_their_records() {
    let inner = MemoryStore::new();
    let keygate = Keygate::new(inner.clone());
    let manager = keygate.manager();
    let created = manager.create(NewKey::new("alice", "k")).await.unwrap();
    let id = created.record.id();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let config = CacheConfig {
        capacity: 16,
        negative_capacity: 16,
        ..CacheConfig::default()
    };
    let gated = Gated {
        inner: inner.clone(),
        gated: id,
        gate: gate.clone(),
    };
    let cached = CachedStore::with_config(gated, config);

    // A lookup reads the live key, then stalls.
    let racing = tokio::spawn({
        let cached = cached.clone();
        async move { cached.find(&id).await }
    });
    tokio::task::yield_now().await;
    // The key is revoked and invalidated while that lookup is in flight...
    manager.revoke(&id).await.unwrap();
    cached.invalidate(&id).await;
    // ...and a flood of invalidations of other keys overflows the record of that one.
    for _ in 0..5_000 {
        cached
            .invalidate(&KeyGenerator::default().generate().unwrap().id())
            .await;
    }
    gate.add_permits(1_000);
    racing.await.unwrap().unwrap();

    for _ in 0..3 {
        let found = cached.find(&id).await.unwrap().expect("the key");
        assert!(found.revoked, "a revoked key was served from the cache");
    }
}
