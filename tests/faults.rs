//! Store faults: an error, a hang past the timeout, or a panic gives 503 without calling
//! the handler, and the same service serves normally once the store recovers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::{Fixture, send};
use http::StatusCode;
use keygate::{KeyId, KeySource, KeyStore, Keygate, StoreError, StoredKey};

const HEALTHY: u8 = 0;
const ERRORS: u8 = 1;
const HANGS: u8 = 2;
const PANICS: u8 = 3;
/// Panics in the synchronous `find_ready` path rather than in `find`.
const PANICS_AT_ONCE: u8 = 4;

/// The fixture's store behind a switch that a test flips to make it fail, then heal.
#[derive(Clone)]
struct Faulty {
    fx_store: common::CountingStore,
    mode: Arc<AtomicU8>,
}

#[async_trait]
impl KeyStore for Faulty {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        match self.mode.load(Ordering::SeqCst) {
            ERRORS => Err(StoreError::backend(std::io::Error::other(
                "database is down",
            ))),
            HANGS => std::future::pending().await,
            PANICS => panic!("store bug"),
            _ => self.fx_store.find(id).await,
        }
    }

    fn find_ready(&self, id: &KeyId) -> Option<Result<Option<StoredKey>, StoreError>> {
        match self.mode.load(Ordering::SeqCst) {
            PANICS_AT_ONCE => panic!("store bug in the fast path"),
            HEALTHY => self.fx_store.inner.find_ready(id),
            _ => None,
        }
    }
}

/// Sends the fixture's valid key once with the store in `fault`, then once healed; returns
/// both statuses and how often the handler ran during the fault.
async fn fault_then_recovery(fault: u8) -> (StatusCode, usize, StatusCode) {
    let fx = Fixture::new();
    let mode = Arc::new(AtomicU8::new(fault));
    let store = Faulty {
        fx_store: fx.store.clone(),
        mode: mode.clone(),
    };
    let layer = Keygate::read_only(store)
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .with_store_timeout(Duration::from_millis(250))
        .layer();
    let app = fx.app(layer);
    let header = [("x-api-key", fx.secret().as_bytes())];

    let during = send(app.clone(), &header).await;
    let handled_during = fx.handled();
    if during.status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(
            during.header("retry-after").is_some(),
            "503 without Retry-After"
        );
    }
    mode.store(HEALTHY, Ordering::SeqCst);
    let after = send(app, &header).await;
    (during.status, handled_during, after.status)
}

const EXPECTED: (StatusCode, usize, StatusCode) =
    (StatusCode::SERVICE_UNAVAILABLE, 0, StatusCode::OK);

#[tokio::test]
async fn store_error_gets_503_then_the_service_serves_again() {
    assert_eq!(fault_then_recovery(ERRORS).await, EXPECTED);
}

#[tokio::test(start_paused = true)]
async fn store_hang_gets_503_at_the_timeout_then_the_service_serves_again() {
    let started = tokio::time::Instant::now();
    assert_eq!(fault_then_recovery(HANGS).await, EXPECTED);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(1));
}

#[tokio::test]
async fn store_panic_gets_503_then_the_service_serves_again() {
    assert_eq!(fault_then_recovery(PANICS).await, EXPECTED);
}

#[tokio::test]
async fn store_panic_in_the_fast_path_gets_503_then_the_service_serves_again() {
    assert_eq!(fault_then_recovery(PANICS_AT_ONCE).await, EXPECTED);
}
