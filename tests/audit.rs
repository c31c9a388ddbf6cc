//! Audit reasons, last-used tracking and sink failures, through an axum Router.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::Router;
use axum::routing::get;
use common::{FailingStore, send, send_to};
use http::StatusCode;
use keygate::{
    ApiKeyLayer, AuditEvent, AuditSink, Clock, Identity, KeyHash, KeyId, KeyManager, KeyRecord,
    KeySource, KeyStore, KeyStoreWrite, Keygate, ManualClock, MemoryStore, NewKey, Outcome, Page,
    Reason, Scopes, SpaceResolver, StoreError, StoredKey, UsageUpdate,
};

/// Forwards every event to a channel the test reads.
struct ChannelSink(Mutex<Sender<AuditEvent>>);

impl AuditSink for ChannelSink {
    fn record(&self, event: &AuditEvent) {
        let _ = self.0.lock().unwrap().send(event.clone());
    }
}

fn next(events: &Receiver<AuditEvent>) -> AuditEvent {
    events
        .recv_timeout(Duration::from_secs(5))
        .expect("an audit event")
}

/// A MemoryStore whose usage writes are counted.
#[derive(Clone, Default)]
struct CountingWrites {
    inner: MemoryStore,
    usage_writes: Arc<AtomicUsize>,
}

#[async_trait]
impl KeyStore for CountingWrites {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        self.inner.find(id).await
    }
}

#[async_trait]
impl KeyStoreWrite for CountingWrites {
    async fn insert(&self, record: &KeyRecord, hash: KeyHash) -> Result<(), StoreError> {
        self.inner.insert(record, hash).await
    }
    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.record(id).await
    }
    async fn list_by_user(&self, user: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list_by_user(user, page).await
    }
    async fn list_by_space(&self, space: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list_by_space(space, page).await
    }
    async fn replace_secret(
        &self,
        id: &KeyId,
        hash: KeyHash,
        preview: &str,
        keep_previous_until: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        self.inner
            .replace_secret(id, hash, preview, keep_previous_until)
            .await
    }
    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        KeyStoreWrite::revoke(&self.inner, id, at).await
    }
    async fn edit(&self, id: &KeyId, edit: &keygate::KeyEdit) -> Result<(), StoreError> {
        self.inner.edit(id, edit).await
    }
    async fn delete(&self, id: &KeyId) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
    async fn record_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        self.usage_writes.fetch_add(1, Ordering::SeqCst);
        self.inner.record_usage(updates).await
    }
}

struct Audited {
    manager: KeyManager,
    store: CountingWrites,
    clock: ManualClock,
    events: Receiver<AuditEvent>,
    auth: ApiKeyLayer,
}

fn audited() -> Audited {
    let store = CountingWrites::default();
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let (tx, events) = channel();
    let keygate = Keygate::new(store.clone())
        .with_clock(clock.clone())
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .with_space_resolver(SpaceResolver::path_prefix("/spaces/").unwrap())
        .with_audit_sink(ChannelSink(Mutex::new(tx)), 1024);
    let manager = keygate.manager();
    let auth = keygate.layer();
    Audited {
        manager,
        store,
        clock,
        events,
        auth,
    }
}

impl Audited {
    fn app(&self) -> Router {
        Router::new()
            .route(
                "/me",
                get(|identity: Identity| async move { identity.user().to_owned() }),
            )
            .route("/spaces/{space}/items", get(|| async { "items" }))
            .route(
                "/admin",
                get(|| async { "admin" }).route_layer(self.auth.require_scope("admin").unwrap()),
            )
            .layer(self.auth.clone())
    }

    async fn key(&self, new: NewKey) -> String {
        let created = self.manager.create(new).await.unwrap();
        created.key.expose_secret().to_owned()
    }

    async fn reason_for(&self, path: &str, key: Option<&str>) -> Reason {
        let headers: Vec<(&str, &[u8])> = key
            .map(|k| ("x-api-key", k.as_bytes()))
            .into_iter()
            .collect();
        let reply = send_to(self.app(), path, &headers).await;
        assert!(reply.status.is_client_error(), "{:?}", reply.status);
        match next(&self.events).outcome {
            Outcome::Denied(reason) => reason,
            other => panic!("expected a denial, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn allowed_request_is_audited_with_key_user_method_and_path() {
    let audited = audited();
    let key = audited.key(NewKey::new("alice", "k")).await;
    let reply = send_to(
        audited.app(),
        "/me?token=hidden",
        &[("x-api-key", key.as_bytes())],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let event = next(&audited.events);
    assert_eq!(event.outcome, Outcome::Allowed);
    assert_eq!(event.user(), Some("alice"));
    assert_eq!(event.method, http::Method::GET);
    assert_eq!(event.path(), "/me");
    assert_eq!(event.at, audited.clock.now());
    assert!(!format!("{event:?}").contains(&key));
}

#[tokio::test]
async fn missing_key_is_audited_as_missing() {
    let audited = audited();
    assert_eq!(audited.reason_for("/me", None).await, Reason::Missing);
}

#[tokio::test]
async fn malformed_key_is_audited_as_malformed() {
    let audited = audited();
    let reason = audited.reason_for("/me", Some("kg_nope")).await;
    assert!(matches!(reason, Reason::Malformed(_)), "{reason:?}");
}

#[tokio::test]
async fn unknown_key_is_audited_as_unknown() {
    let audited = audited();
    let stranger = keygate::KeyGenerator::default().generate().unwrap();
    assert_eq!(
        audited
            .reason_for("/me", Some(stranger.expose_secret()))
            .await,
        Reason::Unknown
    );
}

#[tokio::test]
async fn wrong_secret_is_audited_as_wrong_secret_with_the_owner() {
    let audited = audited();
    let created = audited
        .manager
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let forged = keygate::KeyGenerator::default()
        .generate_for(created.key.id())
        .unwrap();
    let reply = send(
        audited.app(),
        &[("x-api-key", forged.expose_secret().as_bytes())],
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let event = next(&audited.events);
    assert_eq!(event.outcome, Outcome::Denied(Reason::WrongSecret));
    assert_eq!(event.key_id, Some(created.key.id()));
    assert_eq!(event.user(), Some("alice"));
}

#[tokio::test]
async fn revoked_key_is_audited_as_revoked() {
    let audited = audited();
    let created = audited
        .manager
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    audited.manager.revoke(&created.key.id()).await.unwrap();
    let key = created.key.expose_secret();
    assert_eq!(audited.reason_for("/me", Some(key)).await, Reason::Revoked);
}

#[tokio::test]
async fn disabled_key_is_audited_as_disabled() {
    let audited = audited();
    let created = audited
        .manager
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    audited
        .manager
        .edit(&created.key.id(), keygate::KeyEdit::new().disable())
        .await
        .unwrap();
    let key = created.key.expose_secret();
    assert_eq!(audited.reason_for("/me", Some(key)).await, Reason::Disabled);
}

#[tokio::test]
async fn expired_key_is_audited_as_expired() {
    let audited = audited();
    let key = audited
        .key(NewKey::new("alice", "k").expires_in(Duration::from_secs(10)))
        .await;
    audited.clock.advance(Duration::from_secs(10));
    assert_eq!(audited.reason_for("/me", Some(&key)).await, Reason::Expired);
}

#[tokio::test]
async fn other_space_is_audited_as_wrong_space_with_the_target() {
    let audited = audited();
    let key = audited
        .key(NewKey::new("alice", "k").with_space("one"))
        .await;
    let reply = send_to(
        audited.app(),
        "/spaces/two/items",
        &[("x-api-key", key.as_bytes())],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let event = next(&audited.events);
    assert_eq!(event.outcome, Outcome::Denied(Reason::WrongSpace));
    assert_eq!(event.target_space.as_deref(), Some("two"));
    assert_eq!(event.space(), Some("one"));
}

#[tokio::test]
async fn missing_scope_is_audited_with_the_scope() {
    let audited = audited();
    let key = audited
        .key(NewKey::new("alice", "k").with_scopes(Scopes::new(["read"]).unwrap()))
        .await;
    let reply = send_to(audited.app(), "/admin", &[("x-api-key", key.as_bytes())]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(next(&audited.events).outcome, Outcome::Allowed);
    assert_eq!(
        next(&audited.events).outcome,
        Outcome::Denied(Reason::MissingScope("admin".into()))
    );
}

#[tokio::test]
async fn store_error_is_audited_as_store_error() {
    let (tx, events) = channel();
    let fx = common::Fixture::new();
    let layer = Keygate::read_only(FailingStore)
        .with_audit_sink(ChannelSink(Mutex::new(tx)), 16)
        .layer();
    let header = format!("Bearer {}", fx.secret());
    let reply = send(fx.app(layer), &[("authorization", header.as_bytes())]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(next(&events).outcome, Outcome::Denied(Reason::StoreError));
}

#[tokio::test]
async fn last_used_is_written_in_one_batch_not_per_request() {
    let audited = audited();
    let created = audited
        .manager
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let header = [("x-api-key", created.key.expose_secret().as_bytes())];
    for _ in 0..10 {
        assert_eq!(send(audited.app(), &header).await.status, StatusCode::OK);
    }
    assert_eq!(audited.store.usage_writes.load(Ordering::SeqCst), 0);

    assert_eq!(audited.auth.flush_usage().await.unwrap(), 1);
    assert_eq!(audited.store.usage_writes.load(Ordering::SeqCst), 1);
    let record = audited.manager.get(&created.key.id()).await.unwrap();
    assert_eq!(record.use_count, 10);
    assert_eq!(record.last_used_at, Some(audited.clock.now()));
}

#[tokio::test(start_paused = true)]
async fn last_used_is_flushed_in_the_background_at_the_interval() {
    let store = CountingWrites::default();
    let keygate = Keygate::new(store.clone())
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .with_usage_tracking(Duration::from_secs(30), 100);
    let manager = keygate.manager();
    let created = manager.create(NewKey::new("alice", "k")).await.unwrap();
    let auth = keygate.layer();
    let app = Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(auth);
    let header = [("x-api-key", created.key.expose_secret().as_bytes())];
    for _ in 0..5 {
        assert_eq!(send(app.clone(), &header).await.status, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_secs(29)).await; // paused clock: advances instantly
    assert_eq!(store.usage_writes.load(Ordering::SeqCst), 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(store.usage_writes.load(Ordering::SeqCst), 1);
    let record = manager.get(&created.key.id()).await.unwrap();
    assert_eq!(record.use_count, 5);
}

#[tokio::test]
async fn a_blocked_sink_neither_slows_nor_fails_requests() {
    /// Blocks on its first event until the test drops the sender.
    struct Blocked(Mutex<Receiver<()>>);
    impl AuditSink for Blocked {
        fn record(&self, _event: &AuditEvent) {
            let _ = self.0.lock().unwrap().recv();
        }
    }
    let (release, blocked) = channel::<()>();
    let fx = common::Fixture::new();
    let layer = fx
        .keygate()
        .with_audit_sink(Blocked(Mutex::new(blocked)), 4)
        .layer();
    let header = [("x-api-key", fx.secret().as_bytes())];
    for _ in 0..50 {
        assert_eq!(
            send(fx.app(layer.clone()), &header).await.status,
            StatusCode::OK
        );
    }
    assert!(layer.stats().audit.dropped >= 45, "{:?}", layer.stats());
    drop(release);
}

#[tokio::test]
async fn a_panicking_sink_does_not_fail_requests() {
    struct Panics;
    impl AuditSink for Panics {
        fn record(&self, _event: &AuditEvent) {
            panic!("sink is broken");
        }
    }
    let fx = common::Fixture::new();
    let layer = fx.keygate().with_audit_sink(Panics, 16).layer();
    let header = [("x-api-key", fx.secret().as_bytes())];
    for _ in 0..3 {
        assert_eq!(
            send(fx.app(layer.clone()), &header).await.status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn cors_preflight_passes_without_a_key_when_enabled() {
    let fx = common::Fixture::new();
    let preflight = || {
        http::Request::options("/me")
            .header("origin", "https://app.example")
            .header("access-control-request-method", "GET")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let app = |layer: ApiKeyLayer| {
        Router::new()
            .route("/me", axum::routing::options(|| async { "preflight ok" }))
            .layer(layer)
    };
    use tower::ServiceExt;
    let refused = app(fx.layer()).oneshot(preflight()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let allowed = app(fx.keygate().with_cors_preflight(true).layer())
        .oneshot(preflight())
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
}

#[tokio::test]
async fn plain_options_request_still_needs_a_key_with_preflight_enabled() {
    let fx = common::Fixture::new();
    let request = http::Request::options("/me")
        .body(axum::body::Body::empty())
        .unwrap();
    use tower::ServiceExt;
    let app = Router::new()
        .route("/me", axum::routing::options(|| async { "ok" }))
        .layer(fx.keygate().with_cors_preflight(true).layer());
    assert_eq!(
        app.oneshot(request).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_long_target_space_is_cut_to_512_bytes_in_the_event() {
    let audited = audited();
    let key = audited
        .key(NewKey::new("alice", "k").with_space("one"))
        .await;
    let path = format!("/spaces/{}/items", "x".repeat(16 * 1024));
    let reply = send_to(audited.app(), &path, &[("x-api-key", key.as_bytes())]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let event = next(&audited.events);
    assert_eq!(event.target_space.map(|space| space.len()), Some(512));
}
