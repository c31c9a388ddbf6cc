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

/// Bypasses the cache when the listening task ends for any reason, aborts included: the
/// abort takes effect at the task's next await, possibly after it re-enabled the cache.
struct BypassOnExit<S: KeyStore>(CachedStore<S>);

impl<S: KeyStore> Drop for BypassOnExit<S> {
    fn drop(&mut self) {
        self.0.set_bypass(true);
    }
}

/// How long the connection may stay silent before it is probed: a connection dropped by a
/// NAT or a vanished host sends no reset, and would otherwise look alive forever.
const QUIET: Duration = Duration::from_secs(15);
/// How long a probe may take.
const PROBE: Duration = Duration::from_secs(5);

async fn run<S: KeyStore>(
    pool: PgPool,
    channel: Arc<str>,
    cache: CachedStore<S>,
    connected: Arc<AtomicBool>,
) {
    let _bypass_on_exit = BypassOnExit(cache.clone());
    let mut retry = FIRST_RETRY;
    loop {
        match subscribe(&pool, &channel).await {
            Ok(mut listener) => {
                retry = FIRST_RETRY;
                // Anything cached before this point may have missed a notification.
                cache.set_bypass(false);
                connected.store(true, Ordering::SeqCst);
                tracing::debug!(target: "keygate::listen", channel = &*channel, "listening for invalidations");
                // A dropped connection (`Ok(None)`), an error, or a failed probe ends the
                // loop: from then on notifications may be lost, so the cache is no longer
                // trusted.
                loop {
                    match tokio::time::timeout(QUIET, listener.try_recv()).await {
                        Ok(Ok(Some(notification))) => match KeyId::parse(notification.payload()) {
                            Ok(id) => cache.invalidate(&id).await,
                            // Not ours to read: be safe and forget everything.
                            Err(_) => cache.invalidate_all(),
                        },
                        Ok(Ok(None) | Err(_)) => break,
                        Err(_quiet) => {
                            let probe = sqlx::query("SELECT 1").execute(&mut listener);
                            if !matches!(tokio::time::timeout(PROBE, probe).await, Ok(Ok(_))) {
                                break;
                            }
                        }
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
