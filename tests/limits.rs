//! Rate limits and quotas through the layer: 429 with `Retry-After` and the `RateLimit`
//! fields, only for verified keys, audited with the precise reason.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use common::send;
use http::StatusCode;
use keygate::{
    AuditEvent, AuditSink, KeyEdit, KeyManager, KeySource, Keygate, ManualClock, MemoryStore,
    NewKey, Outcome, Quota, RateLimit, RateLimits, Reason, Refill,
};

struct ChannelSink(Mutex<Sender<AuditEvent>>);

impl AuditSink for ChannelSink {
    fn record(&self, event: &AuditEvent) {
        let _ = self.0.lock().unwrap().send(event.clone());
    }
}

struct Limited {
    app: Router,
    manager: KeyManager,
    clock: ManualClock,
    handled: Arc<AtomicUsize>,
    events: Receiver<AuditEvent>,
}

fn limited(limits: RateLimits) -> Limited {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let (tx, events) = channel();
    let keygate = Keygate::new(MemoryStore::new())
        .with_clock(clock.clone())
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .with_rate_limits(limits)
        .with_audit_sink(ChannelSink(Mutex::new(tx)), 4096);
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    let app = Router::new()
        .route(
            "/me",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { "ok" }
            }),
        )
        .layer(keygate.layer());
    Limited {
        app,
        manager: keygate.manager(),
        clock,
        handled,
        events,
    }
}

fn five_per_second() -> RateLimits {
    RateLimits::new().per_key(RateLimit::per_second(5).unwrap())
}

impl Limited {
    async fn key(&self) -> String {
        let created = self
            .manager
            .create(NewKey::new("alice", "k"))
            .await
            .unwrap();
        created.key.expose_secret().to_owned()
    }

    async fn status(&self, key: &str) -> StatusCode {
        send(self.app.clone(), &[("x-api-key", key.as_bytes())])
            .await
            .status
    }

    /// The reason of the next denial the audit trail delivers (off the request path).
    fn next_denial(&self) -> Reason {
        loop {
            let event = self
                .events
                .recv_timeout(Duration::from_secs(5))
                .expect("an audit event");
            if let Outcome::Denied(reason) = event.outcome {
                return reason;
            }
        }
    }
}

#[tokio::test]
async fn a_limit_of_five_per_second_lets_five_through_and_refuses_the_sixth() {
    let limited = limited(five_per_second());
    let key = limited.key().await;
    for _ in 0..5 {
        assert_eq!(limited.status(&key).await, StatusCode::OK);
    }
    let refused = send(limited.app.clone(), &[("x-api-key", key.as_bytes())]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.header("ratelimit-policy"), Some(r#""key";q=5;w=1"#));
    assert_eq!(refused.header("ratelimit"), Some(r#""key";r=0;t=1"#));
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    assert!(
        refused
            .body
            .contains(r#""type":"urn:keygate:problem:rate-limited""#),
        "{}",
        refused.body
    );
    assert_eq!(
        limited.handled.load(Ordering::SeqCst),
        5,
        "the sixth never reached the handler"
    );
    assert_eq!(limited.next_denial(), Reason::RateLimited);
}

#[tokio::test]
async fn the_budget_comes_back_with_time() {
    let limited = limited(five_per_second());
    let key = limited.key().await;
    for _ in 0..5 {
        limited.status(&key).await;
    }
    assert_eq!(limited.status(&key).await, StatusCode::TOO_MANY_REQUESTS);
    limited.clock.advance(Duration::from_millis(200));
    assert_eq!(limited.status(&key).await, StatusCode::OK);
    assert_eq!(limited.status(&key).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn forged_and_invalid_keys_never_spend_a_keys_budget() {
    let limited = limited(five_per_second());
    let created = limited
        .manager
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let key = created.key.expose_secret().to_owned();
    // The real key id with another secret: well-formed, refused as a wrong secret.
    let forged = keygate::KeyGenerator::default()
        .generate_for(created.key.id())
        .unwrap();
    for _ in 0..50 {
        let status = limited.status(forged.expose_secret()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let other = keygate::KeyGenerator::default().generate().unwrap();
    for _ in 0..50 {
        let status = limited.status(other.expose_secret()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..5 {
        assert_eq!(limited.status(&key).await, StatusCode::OK, "budget intact");
    }
}

#[tokio::test]
async fn a_keys_own_limit_set_by_an_edit_applies_on_the_next_request() {
    let limited = limited(RateLimits::new());
    let created = limited
        .manager
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let key = created.key.expose_secret().to_owned();
    for _ in 0..20 {
        assert_eq!(limited.status(&key).await, StatusCode::OK, "no limit yet");
    }
    let one_per_minute = RateLimit::per_minute(1).unwrap();
    limited
        .manager
        .edit(
            &created.record.id(),
            KeyEdit::new().rate_limit(Some(one_per_minute)),
        )
        .await
        .unwrap();
    assert_eq!(limited.status(&key).await, StatusCode::OK);
    let refused = send(limited.app.clone(), &[("x-api-key", key.as_bytes())]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), Some("60"));
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some(r#""key";q=1;w=60"#)
    );
}

#[tokio::test]
async fn an_exhausted_quota_gets_429_with_its_own_problem_type() {
    let limited = limited(RateLimits::new());
    let quota = Quota::new(3, Refill::Daily).unwrap();
    let created = limited
        .manager
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    limited
        .manager
        .edit(&created.record.id(), KeyEdit::new().quota(Some(quota)))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    for _ in 0..3 {
        assert_eq!(limited.status(key).await, StatusCode::OK);
    }
    let refused = send(limited.app.clone(), &[("x-api-key", key.as_bytes())]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused
            .body
            .contains(r#""type":"urn:keygate:problem:quota-exhausted""#),
        "{}",
        refused.body
    );
    // 1_800_000_000 is 2027-01-15 08:00 UTC: the quota refills 16 hours later.
    assert_eq!(refused.header("retry-after"), Some("57600"));
    assert_eq!(refused.header("ratelimit"), Some(r#""quota";r=0;t=57600"#));
    assert_eq!(limited.next_denial(), Reason::QuotaExhausted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_counts_are_exact_under_64_concurrent_requests() {
    let limited = limited(RateLimits::new());
    let created = limited
        .manager
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let quota = Quota::new(100, Refill::Never).unwrap();
    limited
        .manager
        .edit(&created.record.id(), KeyEdit::new().quota(Some(quota)))
        .await
        .unwrap();
    let key = Arc::new(created.key.expose_secret().to_owned());
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (app, key) = (limited.app.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut allowed = 0;
            for _ in 0..4 {
                let reply = send(app.clone(), &[("x-api-key", key.as_bytes())]).await;
                allowed += usize::from(reply.status == StatusCode::OK);
            }
            allowed
        }));
    }
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.unwrap();
    }
    assert_eq!(allowed, 100);
    assert_eq!(limited.handled.load(Ordering::SeqCst), 100);
}

#[tokio::test]
async fn a_key_without_limits_is_not_limited_by_default() {
    let limited = limited(RateLimits::new());
    let key = limited.key().await;
    for _ in 0..200 {
        assert_eq!(limited.status(&key).await, StatusCode::OK);
    }
}
