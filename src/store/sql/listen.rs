//! [`InvalidationListener`]: applies PostgreSQL invalidation notifications to a cache, and
//! proves every quarter second that it still receives them.
//!
//! Guarantees, in the order the code keeps them:
//!
//! 1. The cache is trusted only while a heartbeat has come back recently. The listener
//!    sends `NOTIFY` to a channel of its own every [`Heartbeat::every`] and waits at most
//!    [`Heartbeat::within`] for it to arrive. PostgreSQL delivers notifications to a session
//!    in commit order, so a heartbeat that comes back proves every invalidation committed
//!    before it was sent has been applied. One that does not come back in time, over a
//!    connection that is closed, erroring or silently stalled, switches the cache to bypass
//!    at once. A revocation committed at `t` is therefore applied, or the cache bypassed, by
//!    `t + every + within` (750 ms by default).
//! 2. Bypass ends only after a new connection has subscribed and its first heartbeat has
//!    come back; the cache then starts empty.
//! 3. The listener holds its own connection, outside the lookup pool, so a connection that
//!    stalls (and whose teardown may hang until the operating system gives up on the
//!    socket) never takes a connection from lookups.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::key::id::KeyId;
use crate::store::cached::CachedStore;
use crate::store::key_store::KeyStore;

const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(5);
/// How long connecting and subscribing may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the listener proves its connection alive, and how long it waits for the
/// proof: the bound on how long a revocation made on another instance can go unseen is
/// `every + within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Time between two heartbeats (default 250 ms).
    pub every: Duration,
    /// How long a heartbeat may take to come back before the cache is bypassed (default
    /// 500 ms). Keep it above the round trip to the database.
    pub within: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            every: Duration::from_millis(250),
            within: Duration::from_millis(500),
        }
    }
}

/// The running listener of [`PgStore::spawn_invalidation_listener`](crate::PgStore::spawn_invalidation_listener).
///
/// Dropping it stops the listener and leaves the cache bypassed, since it could no
/// longer learn of revocations made elsewhere.
pub struct InvalidationListener {
    task: JoinHandle<()>,
    connected: Arc<AtomicBool>,
    bypass: Box<dyn Fn() + Send + Sync>,
}

/// What a listening task needs.
struct Setup {
    options: PgConnectOptions,
    channel: Arc<str>,
    heartbeat: Heartbeat,
}

impl InvalidationListener {
    pub(crate) fn spawn<S: KeyStore>(
        options: PgConnectOptions,
        channel: Arc<str>,
        heartbeat: Heartbeat,
        cache: CachedStore<S>,
    ) -> Self {
        let connected = Arc::new(AtomicBool::new(false));
        cache.set_bypass(true);
        let setup = Setup {
            options,
            channel,
            heartbeat,
        };
        let task = tokio::spawn(run(setup, cache.clone(), connected.clone()));
        Self {
            task,
            connected,
            bypass: Box::new(move || cache.set_bypass(true)),
        }
    }

    /// Whether the listener is subscribed, its latest heartbeat came back in time, and the
    /// cache is in use.
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

/// Why a session ended.
enum Ended {
    /// Connecting or subscribing failed.
    Connect(sqlx::Error),
    /// The connection closed or failed.
    Lost,
    /// A heartbeat did not come back in time.
    Silent,
}

async fn run<S: KeyStore>(setup: Setup, cache: CachedStore<S>, connected: Arc<AtomicBool>) {
    let _bypass_on_exit = BypassOnExit(cache.clone());
    let mut retry = FIRST_RETRY;
    loop {
        let ended = session(&setup, &cache, &connected).await;
        // From here on notifications may be lost: the cache is not trusted.
        connected.store(false, Ordering::SeqCst);
        cache.set_bypass(true);
        match ended {
            Ended::Connect(error) => {
                tracing::warn!(target: "keygate::listen", error = &error as &dyn std::error::Error, "invalidation listener cannot connect; retrying");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(LAST_RETRY);
            }
            Ended::Lost | Ended::Silent => {
                let why = if matches!(ended, Ended::Silent) {
                    "its heartbeat did not come back in time"
                } else {
                    "its connection closed"
                };
                tracing::warn!(target: "keygate::listen", why, "invalidation listener lost its connection; cache bypassed until it reconnects");
                retry = FIRST_RETRY;
                tokio::time::sleep(retry).await;
            }
        }
    }
}

/// One connection's life: subscribe, trust the cache once a heartbeat comes back, and
/// apply notifications until the connection fails or a heartbeat is late.
async fn session<S: KeyStore>(
    setup: &Setup,
    cache: &CachedStore<S>,
    connected: &AtomicBool,
) -> Ended {
    let beats = heartbeat_channel();
    let mut listener = match tokio::time::timeout(CONNECT_TIMEOUT, subscribe(setup, &beats)).await {
        Ok(Ok(listener)) => listener,
        Ok(Err(error)) => return Ended::Connect(error),
        Err(_elapsed) => return Ended::Connect(sqlx::Error::PoolTimedOut),
    };
    let Heartbeat { every, within } = setup.heartbeat;
    let mut sequence: u64 = 0;
    // The heartbeat in flight: its number and when it is due back.
    let mut pending: Option<(u64, Instant)> = None;
    let mut next_beat = Instant::now();
    loop {
        let wake = pending.map_or(next_beat, |(_, due)| due);
        match tokio::time::timeout_at(wake, listener.try_recv()).await {
            Ok(Ok(Some(notification))) if notification.channel() == beats => {
                let Some((expected, _)) = pending else {
                    continue;
                };
                if notification.payload() != expected.to_string() {
                    continue;
                }
                pending = None;
                if !connected.swap(true, Ordering::SeqCst) {
                    // Anything cached before this point may have missed a notification.
                    cache.set_bypass(false);
                    tracing::debug!(target: "keygate::listen", channel = &*setup.channel, "listening for invalidations");
                }
            }
            Ok(Ok(Some(notification))) => match KeyId::parse(notification.payload()) {
                Ok(id) => cache.invalidate(&id).await,
                // Not ours to read: be safe and forget everything.
                Err(_) => cache.invalidate_all(),
            },
            Ok(Ok(None) | Err(_)) => return Ended::Lost,
            Err(_due) if pending.is_some() => return Ended::Silent,
            Err(_due) => {
                sequence += 1;
                let due = Instant::now() + within;
                pending = Some((sequence, due));
                next_beat = Instant::now() + every;
                let beat = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(&beats)
                    .bind(sequence.to_string())
                    .execute(&mut listener);
                match tokio::time::timeout_at(due, beat).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => return Ended::Lost,
                    Err(_late) => return Ended::Silent,
                }
            }
        }
    }
}

/// Opens the listener's own connection (a pool of one, apart from the lookup pool) and
/// subscribes to the invalidation and heartbeat channels.
async fn subscribe(setup: &Setup, beats: &str) -> Result<PgListener, sqlx::Error> {
    // A fresh pool per session: a stalled connection of an earlier session may still be
    // held by its teardown, and must not block this one.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_lazy_with(setup.options.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    // Report a lost connection at once instead of reconnecting silently: the gap in
    // between may have swallowed notifications.
    listener.eager_reconnect(false);
    listener.listen_all([&*setup.channel, beats]).await?;
    Ok(listener)
}

/// A channel only this session listens to: `kgh_` and 128 random bits in hex. It must be
/// unique across the fleet, or another session's heartbeats could pass for this one's.
fn heartbeat_channel() -> String {
    format!("kgh_{:032x}", rand::random::<u128>())
}
