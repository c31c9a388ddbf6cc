//! No key material escapes: not in any log line at `TRACE`, not in any `Debug` output, not
//! in any error's `Display` (shared/DESIGN.md, contract 1).
//!
//! Every test issues its own keys, so the tests share one global log capture and still run
//! in parallel: each looks for its own keys only.

mod common;

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{Capture, FailingStore, send_to};
use http::{HeaderValue, StatusCode};
use keygate::{
    ApiKey, ApiKeyLayer, AuditEvent, AuditSink, Identity, KeyFormat, KeyGenerator, KeyRecord,
    KeySource, Keygate, ManualClock, MemoryStore, NewKey, Scopes, SpaceResolver, TracingSink,
};

/// Everything every thread logged since the first test started, at every level.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .finish();
        // Global, because the audit worker logs from a thread of its own.
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buffer
    })
}

fn captured() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// The default sink, plus a signal per event so a test can wait for the audit worker
/// without guessing how long it takes.
struct Signalling(TracingSink, Mutex<Sender<()>>);

impl AuditSink for Signalling {
    fn record(&self, event: &AuditEvent) {
        self.0.record(event);
        let _ = self.1.lock().unwrap().send(());
    }
}

fn signalling_sink() -> (Signalling, Receiver<()>) {
    let (sender, receiver) = channel();
    (Signalling(TracingSink, Mutex::new(sender)), receiver)
}

/// Fails when `text` holds the key, its secret, or any 12 characters of the secret in a
/// row: enough to catch a key cut, quoted or escaped, too few to match by chance.
#[track_caller]
fn assert_no_key_material(text: &str, key: &str, what: &str) {
    assert!(!text.contains(key), "{what} shows a whole key");
    let secret = &key[key.len() - 54..key.len() - 6];
    for (offset, window) in secret.as_bytes().windows(12).enumerate() {
        let window = std::str::from_utf8(window).unwrap();
        // The message names the offset, not the characters: a failing run must not print
        // the material it found.
        assert!(
            !text.contains(window),
            "{what} shows 12 characters of a secret, from offset {offset}"
        );
    }
}

/// A key with the same id as `key` and another secret: a well-formed wrong secret.
fn wrong_secret(key: &ApiKey) -> ApiKey {
    KeyGenerator::default().generate_for(key.id()).unwrap()
}

/// Header names and values of one request.
type Headers = Vec<(&'static str, String)>;

fn app(layer: ApiKeyLayer) -> Router {
    Router::new()
        .route(
            "/me",
            get(|identity: Identity| async move { identity.user().to_owned() }),
        )
        .route(
            "/spaces/{space}/items",
            get(|identity: Identity| async move { identity.user().to_owned() }),
        )
        .layer(layer)
}

#[tokio::test]
async fn no_log_line_at_trace_holds_key_material() {
    logs();
    let clock = ManualClock::new(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    let keygate = Keygate::new(MemoryStore::new()).with_clock(clock.clone());
    let manager = keygate.manager();
    let create = |new: NewKey| {
        let manager = &manager;
        async move { manager.create(new).await.unwrap().key }
    };
    let admin =
        create(NewKey::new("alice", "admin").with_scopes(Scopes::new(["keys:write"]).unwrap()))
            .await;
    let space = create(NewKey::new("alice", "space").with_space("s1")).await;
    let revoked = create(NewKey::new("alice", "to revoke")).await;
    let expiring =
        create(NewKey::new("alice", "expiring").expires_in(Duration::from_secs(60))).await;
    let replaced = create(NewKey::new("alice", "to replace")).await;
    manager.revoke(&revoked.id()).await.unwrap();
    let regenerated = manager.regenerate(&replaced.id(), None).await.unwrap().key;
    clock.advance(Duration::from_secs(120));
    let unknown = KeyGenerator::default().generate().unwrap();
    let wrong = wrong_secret(&admin);

    let (sink, events) = signalling_sink();
    let layer = keygate
        .clone()
        .with_sources([KeySource::bearer(), KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .with_space_resolver(SpaceResolver::path_prefix("/spaces/").unwrap())
        .with_audit_sink(sink, 1024)
        .layer();
    let app = app(layer);

    let bearer = |key: &ApiKey| format!("Bearer {}", key.expose_secret());
    let truncated = &admin.expose_secret()[..40];
    let in_query = format!("/me?api_key={}", admin.expose_secret());
    let requests: Vec<(String, Headers, StatusCode)> = vec![
        (
            "/me".into(),
            vec![("authorization", bearer(&admin))],
            StatusCode::OK,
        ),
        (
            "/me".into(),
            vec![("x-api-key", admin.expose_secret().into())],
            StatusCode::OK,
        ),
        (
            "/spaces/s1/items".into(),
            vec![("x-api-key", space.expose_secret().into())],
            StatusCode::OK,
        ),
        (
            "/spaces/s2/items".into(),
            vec![("x-api-key", space.expose_secret().into())],
            StatusCode::FORBIDDEN,
        ),
        (
            "/me".into(),
            vec![("authorization", bearer(&wrong))],
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/me".into(),
            vec![("authorization", bearer(&unknown))],
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/me".into(),
            vec![("authorization", bearer(&revoked))],
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/me".into(),
            vec![("authorization", bearer(&expiring))],
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/me".into(),
            vec![("authorization", bearer(&replaced))],
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/me".into(),
            vec![("authorization", bearer(&regenerated))],
            StatusCode::OK,
        ),
        (
            "/me".into(),
            vec![("x-api-key", truncated.into())],
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/me".into(),
            vec![
                ("authorization", bearer(&admin)),
                ("x-api-key", admin.expose_secret().into()),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (in_query, vec![], StatusCode::UNAUTHORIZED),
    ];
    for (index, (path, headers, status)) in requests.iter().enumerate() {
        let headers: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_bytes()))
            .collect();
        let reply = send_to(app.clone(), path, &headers).await;
        assert_eq!(reply.status, *status, "request {index}");
    }
    for _ in &requests {
        events
            .recv_timeout(Duration::from_secs(10))
            .expect("one audit event per request");
    }

    let logs = captured();
    // The capture holds this test's events (other tests log into it too): the allowed
    // requests, the denials of well-formed keys, and the lifecycle, by key id.
    for key in [&admin, &space, &revoked, &expiring, &replaced, &unknown] {
        assert!(
            logs.contains(key.id().as_str()),
            "no event names a key of this test"
        );
    }
    for key in [
        &admin,
        &space,
        &revoked,
        &expiring,
        &replaced,
        &regenerated,
        &unknown,
        &wrong,
    ] {
        assert_no_key_material(&logs, key.expose_secret(), "the log");
    }
}

#[tokio::test]
async fn store_failures_log_no_key_material() {
    logs();
    let key = KeyGenerator::default().generate().unwrap();
    let (sink, events) = signalling_sink();
    let layer = Keygate::read_only(FailingStore)
        .with_audit_sink(sink, 16)
        .layer();
    let reply = send_to(
        app(layer),
        "/me",
        &[(
            "authorization",
            format!("Bearer {}", key.expose_secret()).as_bytes(),
        )],
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    events
        .recv_timeout(Duration::from_secs(10))
        .expect("an audit event");
    assert_no_key_material(&captured(), key.expose_secret(), "the log");
}

#[tokio::test]
async fn no_debug_output_holds_key_material() {
    let store = MemoryStore::new();
    let keygate = Keygate::new(store.clone());
    let manager = keygate.manager();
    let created = manager
        .create(NewKey::new("alice", "ci").with_space("s1"))
        .await
        .unwrap();
    let key = created.key.expose_secret().to_owned();
    let record: KeyRecord = manager.get(&created.key.id()).await.unwrap();
    let stored = keygate::KeyStore::find(&store, &created.key.id())
        .await
        .unwrap()
        .unwrap();
    // A layer that keeps the credential header for the handler, which formats the
    // headers it receives: the layer must have marked the key sensitive.
    let layer = keygate
        .clone()
        .with_sources([KeySource::bearer()])
        .unwrap()
        .with_space_resolver(SpaceResolver::in_handlers())
        .with_strip_credential(false)
        .layer();
    let service = tower::Layer::layer(
        &layer,
        tower::service_fn(|request: http::Request<()>| async move {
            let seen = format!("{:?}", request.headers());
            Ok::<_, std::convert::Infallible>(http::Response::new(seen.into_bytes()))
        }),
    );
    let mut request = http::Request::new(());
    let value = HeaderValue::from_str(&format!("Bearer {key}")).unwrap();
    request.headers_mut().insert("authorization", value);
    let response = tower::ServiceExt::oneshot(service.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let handler_headers = String::from_utf8(response.into_body()).unwrap();
    assert!(handler_headers.contains("authorization"));

    let outputs = [
        ("ApiKey", format!("{:?} {:#?}", created.key, created.key)),
        ("CreatedKey", format!("{created:?} {created:#?}")),
        ("KeyRecord", format!("{record:?}")),
        ("StoredKey", format!("{stored:?}")),
        ("KeyFormat", format!("{:?}", manager.format())),
        ("ApiKeyLayer", format!("{layer:?}")),
        ("ApiKeyService", format!("{service:?}")),
        ("the handler's kept headers", handler_headers),
        ("KeyManager", format!("{manager:?}")),
    ];
    for (what, output) in outputs {
        assert_no_key_material(&output, &key, what);
    }
}

#[tokio::test]
async fn no_error_display_holds_key_material() {
    let keygate = Keygate::new(MemoryStore::new());
    let manager = keygate.manager();
    let key = manager
        .create(NewKey::new("alice", "ci"))
        .await
        .unwrap()
        .key;
    let text = key.expose_secret();

    let mut texts = Vec::new();
    // Every way the format check can fail, on inputs made from the real key.
    let format = KeyFormat::new();
    let cut = &text[..text.len() - 1];
    let other_charset = format!("{}-{}", &text[..30], &text[31..]);
    let other_checksum = format!("{}000000", &text[..text.len() - 6]);
    let other_prefix = format!("zz{}", &text[2..]);
    for candidate in [cut, &other_charset, &other_checksum, &other_prefix] {
        let error = format.check(candidate).unwrap_err();
        texts.push(format!("{error} {error:?}"));
        let error = ApiKey::parse(candidate, &format).unwrap_err();
        texts.push(format!("{error} {error:?}"));
    }
    // Every rejection the layer builds, as its hook sees it.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let hook_seen = seen.clone();
    let layer = keygate
        .clone()
        .with_sources([KeySource::bearer(), KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .with_rejection_response(move |rejection, response| {
            let mut chain = format!("{rejection} {rejection:?}");
            let mut source = std::error::Error::source(rejection);
            while let Some(error) = source {
                chain.push_str(&format!(" {error} {error:?}"));
                source = error.source();
            }
            hook_seen.lock().unwrap().push(chain);
            response
        })
        .layer();
    let wrong = wrong_secret(&key);
    let bearer = format!("Bearer {text}");
    let app = app(layer);
    for headers in [
        vec![("x-api-key", wrong.expose_secret())],
        vec![("x-api-key", cut)],
        vec![("x-api-key", text), ("authorization", &bearer)],
        vec![("x-api-key", text), ("x-api-key", text)],
    ] {
        let headers: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_bytes()))
            .collect();
        let reply = send_to(app.clone(), "/me", &headers).await;
        assert_ne!(reply.status, StatusCode::OK);
    }
    texts.extend(seen.lock().unwrap().drain(..));
    // Lifecycle errors about the key.
    manager.revoke(&key.id()).await.unwrap();
    let error = manager.regenerate(&key.id(), None).await.unwrap_err();
    texts.push(format!("{error} {error:?}"));

    assert!(texts.len() >= 12, "only {} texts", texts.len());
    for text_out in &texts {
        assert_no_key_material(text_out, text, "an error");
        assert_no_key_material(text_out, wrong.expose_secret(), "an error");
    }
}

/// The SQL store's statements are logged by sqlx at `DEBUG` and `TRACE`; neither the key
/// nor its secret may appear in them.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_store_logs_at_trace_hold_no_key_material() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let keygate = Keygate::new(keygate::SqliteStore::connect(&url).await.unwrap());
    let manager = keygate.manager();
    let created = manager
        .create(NewKey::new("alice", "sql"))
        .await
        .unwrap()
        .key;
    let (sink, events) = signalling_sink();
    let layer = keygate
        .clone()
        .with_sources([KeySource::bearer()])
        .unwrap()
        .with_audit_sink(sink, 16)
        .layer();
    let app = app(layer);
    let wrong = wrong_secret(&created);
    for key in [&created, &wrong] {
        let header = format!("Bearer {}", key.expose_secret());
        send_to(app.clone(), "/me", &[("authorization", header.as_bytes())]).await;
    }
    let regenerated = manager.regenerate(&created.id(), None).await.unwrap().key;
    manager.revoke(&created.id()).await.unwrap();
    for _ in 0..2 {
        events
            .recv_timeout(Duration::from_secs(10))
            .expect("an audit event");
    }

    let logs = captured();
    assert!(
        logs.contains("sqlx"),
        "sqlx logged nothing: the capture is not working"
    );
    for key in [&created, &wrong, &regenerated] {
        assert_no_key_material(&logs, key.expose_secret(), "the log");
    }
}
