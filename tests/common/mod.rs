//! Shared fixtures for the integration tests: a store that counts lookups, a store that
//! fails, and a one-call HTTP client over an axum `Router`.

#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use keygate::{
    ApiKey, ApiKeyLayer, Identity, KeyGenerator, KeyHasher, KeyId, KeySource, KeyStore, Keygate,
    MemoryStore, StoreError, StoredKey,
};
use tower::ServiceExt;

/// Wraps a store and counts `find` calls.
#[derive(Clone, Default)]
pub struct CountingStore {
    pub inner: MemoryStore,
    pub finds: Arc<AtomicUsize>,
}

impl CountingStore {
    pub fn finds(&self) -> usize {
        self.finds.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KeyStore for CountingStore {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        self.finds.fetch_add(1, Ordering::SeqCst);
        self.inner.find(id).await
    }
}

/// A store whose backend is always down.
#[derive(Clone, Default)]
pub struct FailingStore;

#[async_trait]
impl KeyStore for FailingStore {
    async fn find(&self, _id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        Err(StoreError::backend(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "database is down",
        )))
    }
}

/// A store with one issued key for user `alice`.
pub struct Fixture {
    pub store: CountingStore,
    pub key: ApiKey,
    /// How many times the handler ran.
    pub handled: Arc<AtomicUsize>,
}

impl Fixture {
    pub fn new() -> Self {
        let store = CountingStore::default();
        let key = issue(&store.inner, "alice", |identity| identity);
        Self {
            store,
            key,
            handled: Arc::default(),
        }
    }

    /// The default configuration of the tests: Bearer and X-API-Key.
    pub fn keygate(&self) -> Keygate<CountingStore> {
        Keygate::read_only(self.store.clone())
            .with_sources([KeySource::bearer(), KeySource::header("x-api-key").unwrap()])
            .unwrap()
    }

    /// The layer of the default configuration.
    pub fn layer(&self) -> ApiKeyLayer {
        self.keygate().layer()
    }

    /// A router whose `/me` answers with the caller's user and the headers it saw.
    pub fn app(&self, layer: ApiKeyLayer) -> Router {
        let handled = self.handled.clone();
        Router::new()
            .route(
                "/me",
                get(move |identity: Identity, headers: HeaderMap| {
                    handled.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let seen: Vec<String> =
                            headers.keys().map(|name| name.to_string()).collect();
                        format!("{}|{}", identity.user(), seen.join(","))
                    }
                }),
            )
            .layer(layer)
    }

    pub fn secret(&self) -> &str {
        self.key.expose_secret()
    }

    pub fn handled(&self) -> usize {
        self.handled.load(Ordering::SeqCst)
    }
}

/// Issues a key into `store`, letting `shape` adjust its identity.
pub fn issue(store: &MemoryStore, user: &str, shape: impl FnOnce(Identity) -> Identity) -> ApiKey {
    let key = KeyGenerator::default().generate().unwrap();
    let hash = KeyHasher::sha256().hash(&key);
    let identity = shape(Identity::new(key.id(), user));
    store.insert_key(StoredKey::new(hash, identity)).unwrap();
    key
}

/// What a test reads back from one response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends one request with `headers` to `path` and collects the reply.
pub async fn send_to(app: Router, path: &str, headers: &[(&str, &[u8])]) -> Reply {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Sends one request to `/me`.
pub async fn send(app: Router, headers: &[(&str, &[u8])]) -> Reply {
    send_to(app, "/me", headers).await
}

/// A store that never answers.
#[derive(Clone, Default)]
pub struct HangingStore;

#[async_trait]
impl KeyStore for HangingStore {
    async fn find(&self, _id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        std::future::pending().await
    }
}

/// A store that panics on every lookup.
#[derive(Clone, Default)]
pub struct PanickingStore;

#[async_trait]
impl KeyStore for PanickingStore {
    async fn find(&self, _id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        panic!("store bug")
    }
}

/// A log writer into a shared buffer: `.with_writer(move || Capture(buffer.clone()))`.
pub struct Capture(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
