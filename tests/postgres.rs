//! PgStore: conformance, persistence, cross-instance revocation and reconnection.
//! Needs a PostgreSQL server (see tests/pg/mod.rs); run by .ci/run with
//! `--features postgres,testkit`.

mod common;
mod pg;

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use common::send;
use http::StatusCode;
use keygate::{CachedStore, Identity, KeyManager, KeySource, KeyStoreWrite, Keygate, NewKey};

keygate::store_conformance!(pg::fresh_store());

fn app<S: KeyStoreWrite>(keygate: &Keygate<S>) -> Router {
    Router::new()
        .route(
            "/me",
            get(|identity: Identity| async move { identity.user().to_owned() }),
        )
        .layer(
            keygate
                .clone()
                .with_sources([KeySource::header("x-api-key").unwrap()])
                .unwrap()
                .layer(),
        )
}

async fn status(app: &Router, key: &str) -> StatusCode {
    send(app.clone(), &[("x-api-key", key.as_bytes())])
        .await
        .status
}

#[tokio::test]
async fn keys_survive_a_new_pool_on_the_same_database() {
    let first = pg::fresh_store().await;
    let keygate_created = Keygate::new(first.clone());
    let created = keygate_created
        .manager()
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    first.pool().close().await;
    let second = pg::store_in(&pg::schema_of(&first)).await;
    let keygate = Keygate::new(second);
    assert_eq!(
        status(&app(&keygate), created.key.expose_secret()).await,
        StatusCode::OK
    );
}

/// One app instance: its own pool, cache and listener on the shared database.
struct Instance {
    manager: KeyManager,
    app: Router,
    _listener: keygate::InvalidationListener,
}

async fn instance(schema: &str) -> Instance {
    instance_on(pg::store_in(schema).await).await
}

/// An instance whose every connection, its listener's included, goes through `proxy`.
async fn instance_via(schema: &str, proxy: &pg::proxy::StallingProxy, pool: u32) -> Instance {
    instance_on(pg::store_via(schema, proxy.address(), pool).await).await
}

async fn instance_on(store: keygate::PgStore) -> Instance {
    let cached = CachedStore::new(store.clone());
    let listener = store.spawn_invalidation_listener(&cached);
    let started = Instant::now();
    while !listener.is_connected() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "listener never connected"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let keygate = Keygate::new(cached);
    let manager = keygate.manager();
    let app = app(&keygate);
    Instance {
        manager,
        app,
        _listener: listener,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_on_one_instance_reaches_the_other_within_100_ms() {
    let schema = pg::schema_of(&pg::fresh_store().await);
    let a = instance(&schema).await;
    let b = instance(&schema).await;

    let mut latencies = Vec::new();
    for _ in 0..60 {
        let created = a.manager.create(NewKey::new("alice", "k")).await.unwrap();
        let key = created.key.expose_secret();
        // Both instances accept it, and B now holds it in its cache.
        assert_eq!(status(&a.app, key).await, StatusCode::OK);
        assert_eq!(status(&b.app, key).await, StatusCode::OK);
        assert_eq!(status(&b.app, key).await, StatusCode::OK);

        let revoked_at = Instant::now();
        a.manager.revoke(&created.record.id()).await.unwrap();
        assert_eq!(
            status(&a.app, key).await,
            StatusCode::UNAUTHORIZED,
            "A at once"
        );
        loop {
            if status(&b.app, key).await == StatusCode::UNAUTHORIZED {
                latencies.push(revoked_at.elapsed());
                break;
            }
            assert!(
                revoked_at.elapsed() < Duration::from_secs(5),
                "B never saw the revocation"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
    println!(
        "cross-instance revocation over {} revocations: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        p50,
        p99,
        latencies[latencies.len() - 1]
    );
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regenerate_on_one_instance_kills_the_old_key_on_the_other() {
    let schema = pg::schema_of(&pg::fresh_store().await);
    let a = instance(&schema).await;
    let b = instance(&schema).await;
    let created = a.manager.create(NewKey::new("alice", "k")).await.unwrap();
    let old = created.key.expose_secret();
    assert_eq!(status(&b.app, old).await, StatusCode::OK);
    let rotated = a
        .manager
        .regenerate(&created.record.id(), None)
        .await
        .unwrap();
    let started = Instant::now();
    while status(&b.app, old).await != StatusCode::UNAUTHORIZED {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "old key still accepted on B"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(
        status(&b.app, rotated.key.expose_secret()).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_key_disabled_on_one_instance_is_refused_by_the_other_within_the_bound() {
    let schema = pg::schema_of(&pg::fresh_store().await);
    let a = instance(&schema).await;
    let b = instance(&schema).await;
    let created = a.manager.create(NewKey::new("alice", "k")).await.unwrap();
    let key = created.key.expose_secret();
    assert_eq!(status(&b.app, key).await, StatusCode::OK);
    assert_eq!(status(&b.app, key).await, StatusCode::OK, "cached on B");
    a.manager
        .edit(&created.record.id(), keygate::KeyEdit::new().disable())
        .await
        .unwrap();
    let edited = Instant::now();
    assert_eq!(
        status(&a.app, key).await,
        StatusCode::UNAUTHORIZED,
        "at once on A"
    );
    while status(&b.app, key).await != StatusCode::UNAUTHORIZED {
        assert!(
            edited.elapsed() < Duration::from_secs(1),
            "B served a disabled key past the fleet bound"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    a.manager
        .edit(&created.record.id(), keygate::KeyEdit::new().enable())
        .await
        .unwrap();
    let enabled = Instant::now();
    while status(&b.app, key).await != StatusCode::OK {
        assert!(
            enabled.elapsed() < Duration::from_secs(1),
            "B kept refusing a key enabled again"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_listener_recover_after_their_connections_are_cut() {
    let schema = pg::schema_of(&pg::fresh_store().await);
    let a = instance(&schema).await;
    let b = instance(&schema).await;
    let created = a.manager.create(NewKey::new("alice", "k")).await.unwrap();
    let key = created.key.expose_secret();
    assert_eq!(status(&b.app, key).await, StatusCode::OK);

    // Every connection of both instances, listeners included, dies as in a restart.
    let probe = pg::store_in(&schema).await;
    assert!(pg::cut_connections(&probe).await >= 2);

    // B's listener notices, bypasses its cache, reconnects, and trusts the cache again.
    let started = Instant::now();
    while !b._listener.is_connected() || status(&b.app, key).await != StatusCode::OK {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "B did not recover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.manager.revoke(&created.record.id()).await.unwrap();
    let revoked_at = Instant::now();
    while status(&b.app, key).await != StatusCode::UNAUTHORIZED {
        assert!(
            revoked_at.elapsed() < Duration::from_secs(5),
            "revocation lost after reconnect"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn last_used_is_written_to_postgres_in_one_batch() {
    let store = pg::fresh_store().await;
    let keygate = Keygate::new(store.clone());
    let manager = keygate.manager();
    let created = manager.create(NewKey::new("alice", "k")).await.unwrap();
    let auth = keygate
        .clone()
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .layer();
    let app = Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(auth.clone());
    for _ in 0..7 {
        assert_eq!(
            status(&app, created.key.expose_secret()).await,
            StatusCode::OK
        );
    }
    assert_eq!(auth.flush_usage().await.unwrap(), 1);
    let record = manager.get(&created.record.id()).await.unwrap();
    assert_eq!(record.use_count, 7);
    assert!(record.last_used_at.is_some());
}

/// Waits until `instance`'s listener trusts its cache again.
async fn until_connected(instance: &Instance) {
    let started = Instant::now();
    while !instance._listener.is_connected() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "listener never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_is_refused_within_1_s_when_the_listener_connection_stalls() {
    let schema = pg::schema_of(&pg::fresh_store().await);
    let a = instance(&schema).await;
    let proxy = pg::proxy::StallingProxy::start(pg::server_address()).await;
    let b = instance_via(&schema, &proxy, 4).await;

    let mut latencies = Vec::new();
    for _ in 0..20 {
        until_connected(&b).await;
        let created = a.manager.create(NewKey::new("alice", "k")).await.unwrap();
        let key = created.key.expose_secret();
        assert_eq!(status(&b.app, key).await, StatusCode::OK);
        assert_eq!(
            status(&b.app, key).await,
            StatusCode::OK,
            "served from B's cache"
        );

        // B's listener connection goes silent without closing; then A revokes, and its
        // notification to B is swallowed.
        assert_eq!(proxy.stall_listeners(), 1, "one live listener connection");
        a.manager.revoke(&created.record.id()).await.unwrap();
        let revoked_at = Instant::now();
        loop {
            if status(&b.app, key).await == StatusCode::UNAUTHORIZED {
                latencies.push(revoked_at.elapsed());
                break;
            }
            assert!(
                revoked_at.elapsed() < Duration::from_secs(5),
                "B served a revoked key for 5 s over a stalled listener connection"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
    let max = latencies[latencies.len() - 1];
    println!(
        "revocation over a stalled listener connection, {} stalls: p50 {p50:?}, p99 {p99:?}, max {max:?}",
        latencies.len()
    );
    assert!(max < Duration::from_secs(1), "max {max:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_listener_stalls_in_a_row_leave_lookups_working() {
    let schema = pg::schema_of(&pg::fresh_store().await);
    let a = instance(&schema).await;
    let proxy = pg::proxy::StallingProxy::start(pg::server_address()).await;
    // A pool of two: a listener that kept one pool connection per stall would drain it.
    let b = instance_via(&schema, &proxy, 2).await;
    for _ in 0..10 {
        until_connected(&b).await;
        assert_eq!(proxy.stall_listeners(), 1, "one live listener connection");
        let stalled_at = Instant::now();
        while b._listener.is_connected() {
            assert!(
                stalled_at.elapsed() < Duration::from_secs(5),
                "the stall went unnoticed for 5 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    until_connected(&b).await;
    assert_eq!(proxy.stalled(), 10);
    // A key B has never seen must be read through B's pool.
    for _ in 0..3 {
        let created = a.manager.create(NewKey::new("alice", "k")).await.unwrap();
        assert_eq!(
            status(&b.app, created.key.expose_secret()).await,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_table_with_integer_times_migrates_to_timestamptz_exactly() {
    // A database as keygate's first migration left it: times in BIGINT microseconds.
    let schema = pg::unique_name();
    let admin = keygate::sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&pg::url())
        .await
        .unwrap();
    let old = format!(
        "CREATE SCHEMA {schema}; SET search_path TO {schema}; {} \
         CREATE TABLE keygate_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL); \
         INSERT INTO keygate_migrations VALUES (1, 0); \
         INSERT INTO keygate_keys (id, hash, user_id, name, scopes, preview, created_at, expires_at) \
         VALUES ('AbCdEfGh12345678', '\\x{}', 'alice', 'k', '', 'kg_...0000', \
                 1800000000123456, 1900000000654321);",
        include_str!("../src/store/sql/migrations/postgres_0001_keys.sql"),
        "00".repeat(32),
    );
    keygate::sqlx::raw_sql(&old).execute(&admin).await.unwrap();
    admin.close().await;

    let store = pg::store_in(&schema).await; // applies migration 2
    let record = Keygate::new(store)
        .manager()
        .get(&keygate::KeyId::parse("AbCdEfGh12345678").unwrap())
        .await
        .unwrap();
    let micros = |at: std::time::SystemTime| {
        at.duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
    };
    assert_eq!(micros(record.created_at), 1_800_000_000_123_456);
    assert_eq!(micros(record.expires_at.unwrap()), 1_900_000_000_654_321);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_reach_postgres_with_their_precise_reasons_and_age_out() {
    use keygate::{AuditQuery, Retention, SqlAuditSink};
    let store = pg::fresh_store().await;
    let clock =
        keygate::ManualClock::new(std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let sink = SqlAuditSink::postgres(store.pool().clone(), Retention::days(1))
        .await
        .unwrap()
        .with_queue_and_clock(1_024, clock.clone());
    let keygate = Keygate::new(store.clone())
        .with_clock(clock.clone())
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .with_audit_sink(sink.clone(), 1_024);
    let app = Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(keygate.layer());
    let created = keygate
        .manager()
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let forged = keygate::KeyGenerator::default()
        .generate_for(created.key.id())
        .unwrap();
    assert_eq!(
        status(&app, created.key.expose_secret()).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, forged.expose_secret()).await,
        StatusCode::UNAUTHORIZED
    );
    let query = AuditQuery::new().key(created.key.id());
    let mut events = Vec::new();
    for _ in 0..500 {
        sink.flush().await;
        events = sink.events(&query).await.unwrap();
        if events.len() == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let seen: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e.outcome.as_str(), e.reason.as_deref()))
        .collect();
    assert_eq!(seen, [("denied", Some("wrong_secret")), ("allowed", None)]);
    let reasons = sink.denials_by_reason(&query).await.unwrap();
    assert_eq!(reasons.len(), 1);
    assert_eq!(
        (reasons[0].reason.as_str(), reasons[0].count),
        ("wrong_secret", 1)
    );
    clock.advance(Duration::from_secs(2 * 86_400));
    assert_eq!(sink.enforce_retention().await.unwrap(), 2);
    assert!(sink.events(&query).await.unwrap().is_empty());
}
