//! SqlAuditSink on SQLite: the trail persisted with its precise reasons and read back,
//! never a secret or a query string, never in a request's way, and kept as long as
//! retention says.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use common::send_to;
use http::StatusCode;
use keygate::sqlx::{self, Row};
use keygate::{
    AuditQuery, KeyGenerator, KeySource, Keygate, ManualClock, NewKey, Retention, SqlAuditSink,
    SqliteStore,
};

struct Trail {
    app: Router,
    keygate: Keygate<SqliteStore>,
    store: SqliteStore,
    sink: SqlAuditSink,
    clock: ManualClock,
}

async fn trail(retention: Retention) -> Trail {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let sink = SqlAuditSink::sqlite(store.pool().clone(), retention)
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
    Trail {
        app,
        keygate,
        store,
        sink,
        clock,
    }
}

impl Trail {
    async fn get(&self, path: &str, key: &str) -> StatusCode {
        send_to(self.app.clone(), path, &[("x-api-key", key.as_bytes())])
            .await
            .status
    }

    /// Waits until the layer's queue and then the sink's have written everything.
    async fn settle(&self, expected: usize) {
        for _ in 0..500 {
            self.sink.flush().await;
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM keygate_audit")
                .fetch_one(self.store.pool())
                .await
                .unwrap();
            if count as usize >= expected {
                return;
            }
            tokio::task::yield_now().await;
            std::thread::yield_now();
        }
        panic!("the trail never held {expected} events");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_sqlite_with_their_precise_reasons_newest_first() {
    let trail = trail(Retention::default()).await;
    let created = trail
        .keygate
        .manager()
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    let forged = KeyGenerator::default()
        .generate_for(created.key.id())
        .unwrap();
    assert_eq!(trail.get("/me", key).await, StatusCode::OK);
    assert_eq!(
        trail.get("/me", forged.expose_secret()).await,
        StatusCode::UNAUTHORIZED
    );
    trail
        .keygate
        .manager()
        .revoke(&created.key.id())
        .await
        .unwrap();
    assert_eq!(trail.get("/me", key).await, StatusCode::UNAUTHORIZED);
    trail.settle(3).await;

    let events = trail
        .sink
        .events(&AuditQuery::new().key(created.key.id()))
        .await
        .unwrap();
    let seen: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e.outcome.as_str(), e.reason.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("denied", Some("revoked")),
            ("denied", Some("wrong_secret")),
            ("allowed", None)
        ]
    );
    assert!(events.iter().all(|e| e.user_id.as_deref() == Some("alice")));
    let denials = trail
        .sink
        .denials_by_reason(&AuditQuery::new().user("alice"))
        .await
        .unwrap();
    assert_eq!(denials.len(), 2);
    assert!(denials.iter().all(|d| d.count == 1));
    assert_eq!(trail.sink.stats().written, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_and_no_query_string_is_ever_stored() {
    let trail = trail(Retention::default()).await;
    let created = trail
        .keygate
        .manager()
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let key = created.key.expose_secret().to_owned();
    let path = format!("/me?token=hidden&key={key}");
    assert_eq!(trail.get(&path, &key).await, StatusCode::OK);
    let forged = KeyGenerator::default()
        .generate_for(created.key.id())
        .unwrap();
    trail.get(&path, forged.expose_secret()).await;
    trail.settle(2).await;

    let secret_part = &key[key.len() - 20..];
    let forged_part = &forged.expose_secret()[forged.expose_secret().len() - 20..];
    let rows = sqlx::query("SELECT * FROM keygate_audit")
        .fetch_all(trail.store.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        for column in 0..row.len() {
            let text: Option<String> = row.try_get(column).ok().flatten();
            let text = text.unwrap_or_default();
            assert!(!text.contains(secret_part), "a secret in column {column}");
            assert!(
                !text.contains(forged_part),
                "a presented secret in column {column}"
            );
            assert!(
                !text.contains("hidden"),
                "the query string in column {column}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_database_never_holds_a_request_and_drops_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    let sink = SqlAuditSink::sqlite(store.pool().clone(), Retention::default())
        .await
        .unwrap()
        .with_queue_and_clock(8, keygate::SystemClock);
    // Another process's transaction holds the database's write lock for the whole test.
    let blocker = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mut lock = blocker.begin().await.unwrap();
    sqlx::query("DELETE FROM keygate_audit")
        .execute(&mut *lock)
        .await
        .unwrap();

    let keygate = Keygate::new(store.clone()).with_audit_sink(sink.clone(), 8);
    let app = Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(keygate.layer());
    // Unknown keys: their lookups read (WAL lets reads past the write lock), and each
    // denial is an event the blocked trail cannot write.
    let unknown = KeyGenerator::default().generate().unwrap();
    let all = async {
        for _ in 0..500 {
            let reply = send_to(
                app.clone(),
                "/me",
                &[(
                    "authorization",
                    format!("Bearer {}", unknown.expose_secret()).as_bytes(),
                )],
            )
            .await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("requests waited for the blocked database");
    assert!(sink.stats().dropped > 0, "{:?}", sink.stats());
    lock.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_rows_past_the_age_and_beyond_the_count() {
    let trail = trail(Retention::days(1).with_max_rows(3)).await;
    let unknown = KeyGenerator::default().generate().unwrap();
    // Two events two days ago, then five now.
    for _ in 0..2 {
        trail.get("/me", unknown.expose_secret()).await;
    }
    trail.settle(2).await;
    trail.clock.advance(Duration::from_secs(2 * 86_400));
    for _ in 0..5 {
        trail.get("/me", unknown.expose_secret()).await;
    }
    trail.settle(7).await;
    let deleted = trail.sink.enforce_retention().await.unwrap();
    assert_eq!(deleted, 4, "two by age, then two beyond the count");
    let left = trail.sink.events(&AuditQuery::new()).await.unwrap();
    assert_eq!(left.len(), 3);
    let now = keygate::Timestamp(keygate::Clock::now(&trail.clock));
    assert!(left.iter().all(|e| e.at == now));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_agree_with_the_raw_events_over_a_generated_day() {
    use keygate::{Granularity, UsageOf};
    let trail = trail(Retention::default()).await;
    let manager = trail.keygate.manager();
    let mut keys = Vec::new();
    for (user, space) in [("alice", None), ("alice", Some("s1")), ("bob", Some("s1"))] {
        let mut new = NewKey::new(user, "k");
        if let Some(space) = space {
            new = new.with_space(space);
        }
        keys.push(manager.create(new).await.unwrap());
    }
    let start = keygate::Clock::now(&trail.clock);
    // A day of traffic, one request every 7 minutes or so, a fifth of them forged.
    let mut sent = 0;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    while keygate::Clock::now(&trail.clock) < start + Duration::from_secs(86_400) {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let created = &keys[(state >> 33) as usize % keys.len()];
        let key = if (state >> 20).is_multiple_of(5) {
            KeyGenerator::default()
                .generate_for(created.key.id())
                .unwrap()
                .expose_secret()
                .to_owned()
        } else {
            created.key.expose_secret().to_owned()
        };
        send_to(trail.app.clone(), "/me", &[("x-api-key", key.as_bytes())]).await;
        sent += 1;
        trail
            .clock
            .advance(Duration::from_secs(300 + (state >> 40) % 240));
    }
    trail.settle(sent).await;

    let raw = sqlx::query("SELECT at, outcome, key_id, user_id, space_id FROM keygate_audit")
        .fetch_all(trail.store.pool())
        .await
        .unwrap();
    assert_eq!(raw.len(), sent);
    let end = keygate::Clock::now(&trail.clock) + Duration::from_secs(86_400);
    let owners = [
        UsageOf::Key(keys[0].key.id()),
        UsageOf::Key(keys[2].key.id()),
        UsageOf::User("alice".to_owned()),
        UsageOf::Space("s1".to_owned()),
    ];
    for of in &owners {
        for granularity in [Granularity::Minute, Granularity::Hour, Granularity::Day] {
            let buckets = trail.sink.usage(of, granularity, start, end).await.unwrap();
            // The same counts from the raw events, bucket by bucket.
            let mut expected = std::collections::BTreeMap::new();
            for row in &raw {
                let column = match of {
                    UsageOf::Key(_) => "key_id",
                    UsageOf::User(_) => "user_id",
                    _ => "space_id",
                };
                let owner: Option<String> = row.get(column);
                let wanted = match of {
                    UsageOf::Key(id) => id.as_str().to_owned(),
                    UsageOf::User(user) | UsageOf::Space(user) => user.clone(),
                    _ => unreachable!(),
                };
                if owner.as_deref() != Some(wanted.as_str()) {
                    continue;
                }
                let at: keygate::Timestamp = row.get("at");
                let bucket = granularity.start_of(at.0);
                let entry = expected.entry(bucket).or_insert((0i64, 0i64));
                if row.get::<String, _>("outcome") == "denied" {
                    entry.1 += 1;
                } else {
                    entry.0 += 1;
                }
            }
            let got: std::collections::BTreeMap<_, _> = buckets
                .iter()
                .map(|b| (b.bucket.0, (b.allowed, b.denied)))
                .collect();
            assert_eq!(got, expected, "{of:?} by {granularity:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_key_ids_get_no_rollups_of_their_own() {
    let trail = trail(Retention::default()).await;
    for _ in 0..50 {
        let forged = KeyGenerator::default().generate().unwrap();
        trail.get("/me", forged.expose_secret()).await;
    }
    trail.settle(50).await;
    let rollups: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM keygate_usage")
        .fetch_one(trail.store.pool())
        .await
        .unwrap();
    assert_eq!(rollups, 0, "unknown key ids grew the rollups");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_by_reason_reads_a_bounded_sample_however_many_denials_pile_up() {
    let trail = trail(Retention::default()).await;
    let mut tx = trail.store.pool().begin().await.unwrap();
    // More denials of one key than the sample: the oldest as `revoked`, then the rest.
    let extra = 25;
    for n in 0..(keygate::DENIAL_SAMPLE + extra) {
        let reason = if n < extra { "revoked" } else { "wrong_secret" };
        sqlx::query(
            "INSERT INTO keygate_audit (at, outcome, reason, key_id, method, path) \
             VALUES (0, 'denied', $1, 'AAAAAAAAAAAAAAAA', 'GET', '/me')",
        )
        .bind(reason)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let id = keygate::KeyId::parse("AAAAAAAAAAAAAAAA").unwrap();
    let counts = trail
        .sink
        .denials_by_reason(&AuditQuery::new().key(id))
        .await
        .unwrap();
    let total: i64 = counts.iter().map(|c| c.count).sum();
    assert_eq!(total, keygate::DENIAL_SAMPLE);
    assert_eq!(
        counts.len(),
        1,
        "the oldest denials fall outside the sample: {counts:?}"
    );
    assert_eq!(counts[0].reason, "wrong_secret");
}
