//! RedisLimiter: limits and quotas shared by instances, and what happens when Redis is
//! gone. Needs a Redis server at `KEYGATE_TEST_REDIS` (default `redis://127.0.0.1:6379`);
//! `.ci/run` starts one and runs these with `--all-features`. Each test writes under a
//! namespace of its own.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use common::send;
use http::StatusCode;
use keygate::{
    KeyEdit, KeyGenerator, KeyManager, KeySource, Keygate, LocalLimiter, ManualClock, MemoryStore,
    NewKey, OnRedisError, Quota, RateLimit, RateLimits, RedisLimiter, Refill,
};

fn url() -> String {
    std::env::var("KEYGATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn namespace() -> String {
    let id = KeyGenerator::default().generate().unwrap().id();
    format!("kg_t_{}", id.as_str().to_lowercase())
}

/// One instance: its own layer and limiter over a store the instances share.
fn instance(store: &MemoryStore, limiter: RedisLimiter) -> Router {
    let keygate = Keygate::new(store.clone())
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .with_limiter(limiter);
    Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(keygate.layer())
}

fn manager(store: &MemoryStore) -> KeyManager {
    Keygate::new(store.clone()).manager()
}

fn limiter(namespace: &str, limits: RateLimits) -> RedisLimiter {
    RedisLimiter::connect(&url(), limits)
        .unwrap()
        .with_namespace(namespace)
        .with_timeout(Duration::from_secs(2))
}

async fn status(app: &Router, key: &str) -> StatusCode {
    send(app.clone(), &[("x-api-key", key.as_bytes())])
        .await
        .status
}

#[tokio::test]
async fn two_instances_together_let_through_no_more_than_the_limit() {
    let ns = namespace();
    // 50 per second in bursts of 5: over a run of T seconds, at most 5 + 50 T.
    let limits =
        RateLimits::new().per_key(RateLimit::per_second(50).unwrap().with_burst(5).unwrap());
    let store = MemoryStore::new();
    let a = instance(&store, limiter(&ns, limits));
    let b = instance(&store, limiter(&ns, limits));
    let created = manager(&store)
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();

    let started = Instant::now();
    let (mut allowed, mut refused) = (0u64, 0u64);
    while started.elapsed() < Duration::from_millis(1_200) {
        for app in [&a, &b] {
            match status(app, key).await {
                StatusCode::OK => allowed += 1,
                StatusCode::TOO_MANY_REQUESTS => refused += 1,
                other => panic!("unexpected {other}"),
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let bound = 5.0 + 50.0 * elapsed;
    println!(
        "shared limit over {elapsed:.2} s: {allowed} allowed, {refused} refused, bound {bound:.0}"
    );
    assert!(refused > 0, "the run never reached the limit");
    assert!(allowed as f64 <= bound.ceil(), "{allowed} > {bound}");
    assert!(
        allowed as f64 >= 0.8 * 50.0 * elapsed,
        "the limit starved: {allowed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_quota_is_exact_under_64_concurrent_requests_on_two_instances() {
    let ns = namespace();
    let store = MemoryStore::new();
    let apps = Arc::new([
        instance(&store, limiter(&ns, RateLimits::new())),
        instance(&store, limiter(&ns, RateLimits::new())),
    ]);
    let manager = manager(&store);
    let created = manager.create(NewKey::new("alice", "k")).await.unwrap();
    let quota = Quota::new(100, Refill::Daily).unwrap();
    manager
        .edit(&created.record.id(), KeyEdit::new().quota(Some(quota)))
        .await
        .unwrap();
    let key = Arc::new(created.key.expose_secret().to_owned());
    let mut tasks = Vec::new();
    for task in 0..64 {
        let (apps, key) = (apps.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut allowed = 0;
            for n in 0..4 {
                let app = &apps[(task + n) % 2];
                allowed += usize::from(status(app, &key).await == StatusCode::OK);
            }
            allowed
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.unwrap();
    }
    assert_eq!(allowed, 100);
}

#[tokio::test]
async fn the_sixth_request_in_a_second_is_refused_with_the_rate_limit_fields() {
    let ns = namespace();
    let limits = RateLimits::new().per_key(RateLimit::per_second(5).unwrap());
    let store = MemoryStore::new();
    let app = instance(&store, limiter(&ns, limits));
    let created = manager(&store)
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(status(&app, key).await, StatusCode::OK);
    }
    let refused = send(app.clone(), &[("x-api-key", key.as_bytes())]).await;
    // The five took far less than the 200 ms one request takes to come back.
    assert!(started.elapsed() < Duration::from_millis(200));
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.header("ratelimit-policy"), Some(r#""key";q=5;w=1"#));
    assert!(
        refused
            .header("ratelimit")
            .unwrap()
            .starts_with(r#""key";r=0;t="#)
    );
}

/// A TCP server on 127.0.0.1 that accepts connections and never answers: a Redis that
/// silently stopped.
async fn silent_server() -> String {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = socket.accept().await {
            held.push(connection);
        }
    });
    format!("redis://{address}")
}

#[tokio::test]
async fn when_redis_is_silent_the_default_falls_back_to_local_limits() {
    let limits = RateLimits::new().per_key(RateLimit::per_second(5).unwrap());
    // The fallback counts on a clock of the test's: the timeouts take real time.
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let limiter = RedisLimiter::connect(&silent_server().await, limits)
        .unwrap()
        .with_timeout(Duration::from_millis(50))
        .with_local_limiter(LocalLimiter::with_clock(limits, clock));
    let store = MemoryStore::new();
    let app = instance(&store, limiter);
    let created = manager(&store)
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    for _ in 0..5 {
        assert_eq!(status(&app, key).await, StatusCode::OK);
    }
    assert_eq!(
        status(&app, key).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the local limiter still enforces the limit"
    );
}

/// An instance whose limiter (5 per second) refuses when its silent Redis is late, and a
/// key of it.
async fn refusing_on_a_silent_redis() -> (Router, keygate::CreatedKey) {
    let limits = RateLimits::new().per_key(RateLimit::per_second(5).unwrap());
    let limiter = RedisLimiter::connect(&silent_server().await, limits)
        .unwrap()
        .with_timeout(Duration::from_millis(50))
        .on_error(OnRedisError::Refuse);
    let store = MemoryStore::new();
    let app = instance(&store, limiter);
    let created = manager(&store)
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    (app, created)
}

#[tokio::test]
async fn when_redis_is_silent_refuse_answers_503() {
    let (app, created) = refusing_on_a_silent_redis().await;
    let reply = send(
        app.clone(),
        &[("x-api-key", created.key.expose_secret().as_bytes())],
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("retry-after"), Some("1"));
}

#[tokio::test]
async fn an_invalid_key_never_reaches_redis() {
    // Refusing on error: a lookup of Redis would turn the 401 into a 503.
    let (app, created) = refusing_on_a_silent_redis().await;
    let forged = KeyGenerator::default()
        .generate_for(created.key.id())
        .unwrap();
    assert_eq!(
        status(&app, forged.expose_secret()).await,
        StatusCode::UNAUTHORIZED
    );
}
