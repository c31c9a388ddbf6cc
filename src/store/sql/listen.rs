//! [`InvalidationListener`]: applies PostgreSQL invalidation notifications to a cache.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::task::JoinHandle;

use crate::key::KeyId;
use crate::store::{CachedStore, KeyStore};

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// The running listener of [`PgStore::spawn_invalidation_listener`](crate::PgStore::spawn_invalidation_listener).
///
/// Dropping it stops the listener and leaves the cache bypassed, since it could no
/// longer learn of revocations made elsewhere.
pub struct InvalidationListener {
    task: JoinHandle<()>,
    connected: Arc<AtomicBool>,
    bypass: Box<dyn Fn() + Send + Sync>,
}

impl InvalidationListener {
    pub(crate) fn spawn<S: KeyStore>(
        pool: PgPool,
        channel: Arc<str>,
        cache: CachedStore<S>,
    ) -> Self {
        let connected = Arc::new(AtomicBool::new(false));
        cache.set_bypass(true);
        let task = tokio::spawn(run(pool, channel, cache.clone(), connected.clone()));
        Self {
            task,
            connected,
            bypass: Box::new(move || cache.set_bypass(true)),
        }
    }

    /// Whether the listener is connected and the cache in use.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }
}

impl Drop for InvalidationListener {
    fn drop(&mut self) {
        self.task.abort();
        (self.bypass)();
    }
}

impl fmt::Debug for InvalidationListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvalidationListener")
            .field("connected", &self.is_connected())
            .finish()
    }
}

async fn run<S: KeyStore>(
    pool: PgPool,
    channel: Arc<str>,
    cache: CachedStore<S>,
    connected: Arc<AtomicBool>,
) {
    let mut retry = FIRST_RETRY;
    loop {
        match subscribe(&pool, &channel).await {
            Ok(mut listener) => {
                retry = FIRST_RETRY;
                // Anything cached before this point may have missed a notification.
                cache.set_bypass(false);
                connected.store(true, Ordering::SeqCst);
                tracing::debug!(target: "keygate::listen", channel = &*channel, "listening for invalidations");
                // `Ok(None)` (the connection dropped) or an error ends the loop: from then
                // on notifications may be lost, so the cache is no longer trusted.
                while let Ok(Some(notification)) = listener.try_recv().await {
                    match KeyId::parse(notification.payload()) {
                        Ok(id) => cache.invalidate(&id).await,
                        // Not ours to read: be safe and forget everything.
                        Err(_) => cache.invalidate_all(),
                    }
                }
                connected.store(false, Ordering::SeqCst);
                cache.set_bypass(true);
                tracing::warn!(target: "keygate::listen", "invalidation listener lost its connection; cache bypassed until it reconnects");
            }
            Err(error) => {
                tracing::warn!(target: "keygate::listen", error = &error as &dyn std::error::Error, "invalidation listener cannot connect; retrying");
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

async fn subscribe(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Report a lost connection at once instead of reconnecting silently: the gap in
    // between may have swallowed notifications.
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}
