//! One configuration: a layer and a manager built from one `Keygate` agree on the key
//! format and the hasher, and a layer that meets keys of another format says so.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use common::send;
use http::StatusCode;
use keygate::{KeyFormat, KeyHasher, KeySource, KeyStore, Keygate, MemoryStore, NewKey};

const PEPPER: &[u8] = b"a pepper of at least thirty-two bytes, from a secret store";

fn app<S: keygate::KeyStoreWrite>(keygate: &Keygate<S>) -> Router {
    Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(keygate.layer())
}

#[tokio::test]
async fn layer_and_manager_from_one_keygate_agree_on_prefix_and_pepper() {
    let keygate = Keygate::new(MemoryStore::new())
        .with_format(KeyFormat::with_prefix("acme_live").unwrap())
        .with_hasher(KeyHasher::hmac_sha256(PEPPER).unwrap())
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap();
    let created = keygate
        .manager()
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let key = created.key.expose_secret();
    assert!(key.starts_with("acme_live_"));

    // The store holds the peppered hash, not plain SHA-256.
    let stored = keygate
        .store()
        .find(&created.key.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.hash,
        KeyHasher::hmac_sha256(PEPPER).unwrap().hash(&created.key)
    );
    assert_ne!(stored.hash, KeyHasher::sha256().hash(&created.key));

    let reply = send(app(&keygate), &[("x-api-key", key.as_bytes())]).await;
    assert_eq!(reply.status, StatusCode::OK);
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_key_of_another_format_is_logged_once_at_warn_with_the_fix() {
    // The only test in this binary that logs: the warning is once per process.
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || Capture(writer.clone()))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let other = Keygate::new(MemoryStore::new());
    let foreign = other
        .manager()
        .create(NewKey::new("alice", "k"))
        .await
        .unwrap();
    let acme = Keygate::new(MemoryStore::new())
        .with_format(KeyFormat::with_prefix("acme").unwrap())
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap();
    let header = [("x-api-key", foreign.key.expose_secret().as_bytes())];
    for _ in 0..3 {
        assert_eq!(
            send(app(&acme), &header).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let logs = String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned();
    assert_eq!(logs.matches("WARN").count(), 1, "{logs}");
    assert!(logs.contains("foreign_prefix=\"kg\""), "{logs}");
    assert!(logs.contains("one Keygate"), "{logs}");
    assert!(
        !logs.contains(foreign.key.expose_secret()),
        "the key was logged"
    );
}
