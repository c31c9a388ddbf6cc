//! [`SqlAuditSink`]: the audit trail persisted to SQLite or PostgreSQL, and queried back.
//!
//! What it keeps:
//!
//! - **Never a request's wait.** [`AuditSink::record`] only puts the event in a bounded
//!   queue; a task of its own writes batches of up to [`BATCH`] events in one statement.
//!   When the database falls behind and the queue is full, events are dropped and counted
//!   ([`SqlAuditStats::dropped`]); a failed write is counted too, never retried into an
//!   unbounded backlog.
//! - **No secret, no query string.** A row holds the time, the outcome and its precise
//!   reason, the key id, user and space, the target space, the method and the path
//!   (without its query, which may carry anything), as [`AuditEvent`] has them.
//! - **Bounded size.** [`Retention`] deletes rows older than a maximum age and beyond a
//!   maximum count, after writes and at most once a minute.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::audit::event::{AuditEvent, Outcome};
use crate::audit::rollup::{Granularity, UsageBucket, UsageOf};
use crate::audit::sink::AuditSink;
use crate::clock::{Clock, SystemClock};
use crate::key::id::KeyId;
use crate::store::error::StoreError;
use crate::store::sql::types::Timestamp;

/// The most events one write inserts.
pub const BATCH: usize = 256;

/// Events waiting to be written, by default; past it they are dropped and counted.
pub const DEFAULT_AUDIT_QUEUE: usize = 8_192;

/// How long minute buckets of usage are kept: two days.
const MINUTE_BUCKETS_KEPT_SECS: u64 = 2 * 86_400;

/// How many of the latest matching denials [`SqlAuditSink::denials_by_reason`] counts.
pub const DENIAL_SAMPLE: i64 = 10_000;

/// How often retention runs at most.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// How long the trail is kept, by age and by count. Both unset keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Rows older than this are deleted.
    pub max_age: Option<Duration>,
    /// Beyond this many rows, the oldest are deleted.
    pub max_rows: Option<u64>,
}

impl Retention {
    /// Keep rows for `days` days.
    pub fn days(days: u64) -> Self {
        Self {
            max_age: Some(Duration::from_secs(days.saturating_mul(86_400))),
            max_rows: None,
        }
    }

    /// Keep at most `rows` rows as well.
    pub fn with_max_rows(mut self, rows: u64) -> Self {
        self.max_rows = Some(rows);
        self
    }
}

/// What to read back from the trail: events of a key, a user or a space, in a time
/// range, newest first, a page at a time.
///
/// ```
/// use keygate::AuditQuery;
/// use std::time::{Duration, SystemTime};
///
/// let yesterday = AuditQuery::new()
///     .user("user-42")
///     .since(SystemTime::now() - Duration::from_secs(86_400))
///     .denied_only()
///     .limit(50);
/// # let _ = yesterday;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    key_id: Option<KeyId>,
    user: Option<String>,
    space: Option<String>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    denied_only: bool,
    before: Option<i64>,
    limit: usize,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditQuery {
    /// Every event, newest first, 100 at a time.
    pub fn new() -> Self {
        Self {
            key_id: None,
            user: None,
            space: None,
            since: None,
            until: None,
            denied_only: false,
            before: None,
            limit: 100,
        }
    }

    /// Only events of key `id`.
    pub fn key(mut self, id: KeyId) -> Self {
        self.key_id = Some(id);
        self
    }

    /// Only events of keys of `user`.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Only events of keys bound to `space`.
    pub fn space(mut self, space: impl Into<String>) -> Self {
        self.space = Some(space.into());
        self
    }

    /// Only events at or after `at`.
    pub fn since(mut self, at: SystemTime) -> Self {
        self.since = Some(at);
        self
    }

    /// Only events before `at`.
    pub fn until(mut self, at: SystemTime) -> Self {
        self.until = Some(at);
        self
    }

    /// Only denials.
    pub fn denied_only(mut self) -> Self {
        self.denied_only = true;
        self
    }

    /// The page after the one that ended with the event of id `id` ([`StoredEvent::id`]).
    pub fn before(mut self, id: i64) -> Self {
        self.before = Some(id);
        self
    }

    /// At most `limit` events (1 to 1,000).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit.clamp(1, 1_000);
        self
    }
}

/// One event as the trail keeps it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
#[non_exhaustive]
pub struct StoredEvent {
    /// Its place in the trail: larger is newer.
    pub id: i64,
    /// When the decision was made.
    pub at: Timestamp,
    /// `allowed`, `allowed_by_previous_secret`, `anonymous`, `preflight` or `denied`.
    pub outcome: String,
    /// For a denial, the precise reason (`wrong_secret`, `rate_limited`, …).
    pub reason: Option<String>,
    /// The presented key's id.
    pub key_id: Option<String>,
    /// The key's user.
    pub user_id: Option<String>,
    /// The key's space.
    pub space_id: Option<String>,
    /// The space the request targeted.
    pub target_space: Option<String>,
    /// The request method.
    pub method: String,
    /// The request path, without its query.
    pub path: String,
}

/// How many denials of one reason.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
#[non_exhaustive]
pub struct ReasonCount {
    /// The reason (`wrong_secret`, …).
    pub reason: String,
    /// How many.
    pub count: i64,
}

/// What the sink has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqlAuditStats {
    /// Events written.
    pub written: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    /// Events lost to failed writes.
    pub failed: u64,
    /// Rows deleted by retention.
    pub deleted: u64,
}

#[derive(Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    deleted: AtomicU64,
}

enum Message {
    Event(Row),
    Flush(oneshot::Sender<()>),
}

/// An event as a row.
struct Row {
    at: SystemTime,
    outcome: &'static str,
    reason: Option<&'static str>,
    key_id: Option<String>,
    user_id: Option<String>,
    space_id: Option<String>,
    target_space: Option<String>,
    method: String,
    path: String,
}

impl Row {
    fn of(event: &AuditEvent) -> Self {
        let (outcome, reason) = match &event.outcome {
            Outcome::Allowed => ("allowed", None),
            Outcome::AllowedByPreviousSecret => ("allowed_by_previous_secret", None),
            Outcome::Anonymous => ("anonymous", None),
            Outcome::Preflight => ("preflight", None),
            Outcome::Denied(reason) => ("denied", Some(reason.as_str())),
        };
        Self {
            at: event.at,
            outcome,
            reason,
            key_id: event.key_id.map(|id| id.as_str().to_owned()),
            user_id: event.user().map(str::to_owned),
            space_id: event.space().map(str::to_owned),
            // Read from a decoded path segment or a header: control characters are
            // escaped, so that a tool printing the column prints text.
            target_space: event.target_space.as_deref().map(escape_controls),
            method: event.method.as_str().to_owned(),
            path: event.path().to_owned(),
        }
    }
}

/// `text` with its control characters written as `\u{..}` escapes.
fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The database the trail lives in.
#[derive(Clone)]
enum Db {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// The audit trail in SQLite or PostgreSQL: an [`AuditSink`] that writes in batches off
/// the request path, and queries of what it wrote.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use keygate::{AuditQuery, Keygate, Retention, SqlAuditSink, SqliteStore};
///
/// let store = SqliteStore::connect("sqlite::memory:").await?;
/// let trail = SqlAuditSink::sqlite(store.pool().clone(), Retention::days(30)).await?;
/// let keygate = Keygate::new(store).with_audit_sink(trail.clone(), 8_192);
/// # let _ = keygate.layer();
/// let latest = trail.events(&AuditQuery::new().denied_only()).await?;
/// # let _ = latest;
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
///
/// Build it inside a tokio runtime: its writer is a task of that runtime.
#[derive(Clone)]
pub struct SqlAuditSink {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    queue: mpsc::Sender<Message>,
    counters: Arc<Counters>,
    retention: Retention,
    clock: Arc<dyn Clock>,
}

#[cfg(feature = "sqlite")]
const SQLITE_SCHEMA: &str = include_str!("../store/sql/migrations/audit_sqlite.sql");
#[cfg(feature = "postgres")]
const POSTGRES_SCHEMA: &str = include_str!("../store/sql/migrations/audit_postgres.sql");

impl SqlAuditSink {
    /// A trail in the SQLite database of `pool` (its table and indexes are created when
    /// missing), kept as `retention` says.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the table cannot be created.
    #[cfg(feature = "sqlite")]
    pub async fn sqlite(pool: sqlx::SqlitePool, retention: Retention) -> Result<Self, StoreError> {
        sqlx::raw_sql(SQLITE_SCHEMA).execute(&pool).await?;
        Ok(Self::start(Db::Sqlite(pool), retention))
    }

    /// A trail in the PostgreSQL database of `pool` (in the pool's `search_path`; its
    /// table and indexes are created when missing), kept as `retention` says.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the table cannot be created.
    #[cfg(feature = "postgres")]
    pub async fn postgres(pool: sqlx::PgPool, retention: Retention) -> Result<Self, StoreError> {
        sqlx::raw_sql(POSTGRES_SCHEMA).execute(&pool).await?;
        Ok(Self::start(Db::Postgres(pool), retention))
    }

    fn start(db: Db, retention: Retention) -> Self {
        Self::start_with(db, retention, DEFAULT_AUDIT_QUEUE, Arc::new(SystemClock))
    }

    fn start_with(db: Db, retention: Retention, queue: usize, clock: Arc<dyn Clock>) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let counters = Arc::new(Counters::default());
        let inner = Arc::new(Inner {
            db,
            queue: tx,
            counters,
            retention,
            clock,
        });
        tokio::spawn(write(Arc::downgrade(&inner), rx));
        Self { inner }
    }

    /// The same trail with a queue of `capacity` events and `clock` for retention
    /// (tests use [`ManualClock`](crate::ManualClock)). Call it before recording: events
    /// still queued in the first queue are dropped with it.
    pub fn with_queue_and_clock(self, capacity: usize, clock: impl Clock) -> Self {
        Self::start_with(
            self.inner.db.clone(),
            self.inner.retention,
            capacity,
            Arc::new(clock),
        )
    }

    /// Waits until every event recorded before the call is written (or lost to a failed
    /// write): for tests and for shutdown.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.inner.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Counts of written, dropped, failed and deleted events.
    pub fn stats(&self) -> SqlAuditStats {
        let c = &self.inner.counters;
        SqlAuditStats {
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            deleted: c.deleted.load(Ordering::Relaxed),
        }
    }

    /// Events matching `query`, newest first.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn events(&self, query: &AuditQuery) -> Result<Vec<StoredEvent>, StoreError> {
        match &self.inner.db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => sqlite::events(pool, query).await,
            #[cfg(feature = "postgres")]
            Db::Postgres(pool) => postgres::events(pool, query).await,
        }
    }

    /// The latest [`DENIAL_SAMPLE`] denials matching `query` (its page and limit aside),
    /// counted by reason, most first: many `wrong_secret` for one key id is a key under
    /// attack. The sample bounds the read, however many denials anyone piles up.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn denials_by_reason(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<ReasonCount>, StoreError> {
        match &self.inner.db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => sqlite::denials(pool, query).await,
            #[cfg(feature = "postgres")]
            Db::Postgres(pool) => postgres::denials(pool, query).await,
        }
    }

    /// Usage of a key, a user or a space in buckets of `granularity` from `since` to
    /// `until`, oldest first; buckets without requests are left out. A key's last 30
    /// days are `usage(&UsageOf::Key(id), Granularity::Day, now - 30 days, now)`.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn usage(
        &self,
        of: &UsageOf,
        granularity: Granularity,
        since: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<UsageBucket>, StoreError> {
        match &self.inner.db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => sqlite::usage(pool, of, granularity, since, until).await,
            #[cfg(feature = "postgres")]
            Db::Postgres(pool) => postgres::usage(pool, of, granularity, since, until).await,
        }
    }

    /// Deletes what [`Retention`] no longer keeps, now; returns how many rows. The writer
    /// also does this by itself, at most once a minute.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn enforce_retention(&self) -> Result<u64, StoreError> {
        let now = self.inner.clock.now();
        let deleted = match &self.inner.db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(pool) => sqlite::retain(pool, self.inner.retention, now).await?,
            #[cfg(feature = "postgres")]
            Db::Postgres(pool) => postgres::retain(pool, self.inner.retention, now).await?,
        };
        self.inner
            .counters
            .deleted
            .fetch_add(deleted, Ordering::Relaxed);
        Ok(deleted)
    }
}

impl AuditSink for SqlAuditSink {
    fn record(&self, event: &AuditEvent) {
        let sent = self.inner.queue.try_send(Message::Event(Row::of(event)));
        if let Err(mpsc::error::TrySendError::Closed(_)) = &sent {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    target: "keygate::audit",
                    "the SQL audit trail's writer has stopped (its runtime ended): events are dropped"
                );
            });
        }
        if sent.is_err() {
            self.inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            crate::audit::metrics::audit_dropped();
        }
    }
}

impl fmt::Debug for SqlAuditSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlAuditSink")
            .field("retention", &self.inner.retention)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The writer: batches what the queue holds, writes it, and now and then applies
/// retention. It ends when the sink is gone.
async fn write(sink: std::sync::Weak<Inner>, mut queue: mpsc::Receiver<Message>) {
    let mut last_retention: Option<std::time::Instant> = None;
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(row) => batch.push(row),
                Message::Flush(done) => waiting.push(done),
            }
            if batch.len() < BATCH {
                next = queue.try_recv().ok();
            }
        }
        let Some(inner) = sink.upgrade() else { return };
        if !batch.is_empty() {
            let result = match &inner.db {
                #[cfg(feature = "sqlite")]
                Db::Sqlite(pool) => sqlite::insert(pool, &batch).await,
                #[cfg(feature = "postgres")]
                Db::Postgres(pool) => postgres::insert(pool, &batch).await,
            };
            let counter = match result {
                Ok(()) => &inner.counters.written,
                Err(error) => {
                    tracing::warn!(target: "keygate::audit", %error, lost = batch.len(), "audit events could not be written");
                    &inner.counters.failed
                }
            };
            counter.fetch_add(batch.len() as u64, Ordering::Relaxed);
            batch.clear();
        }
        let due = last_retention.is_none_or(|at| at.elapsed() >= RETENTION_EVERY);
        if due {
            last_retention = Some(std::time::Instant::now());
            let sink = SqlAuditSink {
                inner: inner.clone(),
            };
            if let Err(error) = sink.enforce_retention().await {
                tracing::warn!(target: "keygate::audit", %error, "audit retention failed");
            }
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

/// The queries of the trail, for one dialect: the same SQL, written once, compiled per
/// database (sqlx's builder does not lend itself to code generic over the database).
macro_rules! trail_queries {
    ($db:ty) => {
        use std::time::{Duration, SystemTime};

        use sqlx::{Pool, QueryBuilder};

        use super::{DENIAL_SAMPLE, MINUTE_BUCKETS_KEPT_SECS};

        use super::{AuditQuery, ReasonCount, Retention, Row, StoredEvent};
        use crate::audit::rollup::{Granularity, Tally, UsageBucket, UsageOf};
        use crate::store::error::StoreError;
        use crate::store::sql::types::Timestamp;

        /// Inserts `rows` in one statement.
        /// Inserts `rows` and adds them to the usage rollups, in one transaction.
        pub(super) async fn insert(pool: &Pool<$db>, rows: &[Row]) -> Result<(), StoreError> {
            let mut tally = Tally::default();
            for row in rows {
                // A key id no store knows (a guess, a forgery) gets no rollup of its own:
                // anyone can mint such ids, and their rows would grow without bound. The
                // raw trail keeps them, within retention, to show what is being guessed.
                let known = row.user_id.is_some();
                tally.add(
                    row.at,
                    row.outcome != "denied",
                    row.key_id.as_deref().filter(|_| known),
                    row.user_id.as_deref(),
                    row.space_id.as_deref(),
                );
            }
            let rollups = tally.into_rollups();
            let mut tx = pool.begin().await?;
            let mut insert = QueryBuilder::<$db>::new(
                "INSERT INTO keygate_audit (at, outcome, reason, key_id, user_id, space_id, \
                 target_space, method, path) ",
            );
            insert.push_values(rows, |mut values, row| {
                values
                    .push_bind(Timestamp(row.at))
                    .push_bind(row.outcome)
                    .push_bind(row.reason)
                    .push_bind(row.key_id.as_deref())
                    .push_bind(row.user_id.as_deref())
                    .push_bind(row.space_id.as_deref())
                    .push_bind(row.target_space.as_deref())
                    .push_bind(row.method.as_str())
                    .push_bind(row.path.as_str());
            });
            // Each batch size is its own statement: kept out of sqlx's per-connection
            // statement cache, where a hundred of them per connection would pin memory.
            insert.build().persistent(false).execute(&mut *tx).await?;
            // Rollups go in chunks: each row binds six values, and SQLite allows 32,766.
            for chunk in rollups.chunks(1_000) {
                let mut upsert = QueryBuilder::<$db>::new(
                    "INSERT INTO keygate_usage (kind, owner, granularity, bucket, allowed, denied) ",
                );
                upsert.push_values(chunk, |mut values, rollup| {
                    values
                        .push_bind(rollup.kind)
                        .push_bind(rollup.owner.as_str())
                        .push_bind(rollup.granularity)
                        .push_bind(Timestamp(rollup.bucket))
                        .push_bind(rollup.allowed)
                        .push_bind(rollup.denied);
                });
                upsert.push(
                    " ON CONFLICT (kind, owner, granularity, bucket) DO UPDATE SET \
                     allowed = keygate_usage.allowed + excluded.allowed, \
                     denied = keygate_usage.denied + excluded.denied",
                );
                upsert.build().persistent(false).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        /// `of`'s buckets of `granularity` from `since` (inclusive) to `until`, oldest
        /// first.
        pub(super) async fn usage(
            pool: &Pool<$db>,
            of: &UsageOf,
            granularity: Granularity,
            since: SystemTime,
            until: SystemTime,
        ) -> Result<Vec<UsageBucket>, StoreError> {
            let rows = sqlx::query_as(
                "SELECT bucket, allowed, denied FROM keygate_usage \
                 WHERE kind = $1 AND owner = $2 AND granularity = $3 \
                 AND bucket >= $4 AND bucket < $5 ORDER BY bucket",
            )
            .bind(of.kind())
            .bind(of.owner())
            .bind(granularity.as_str())
            .bind(Timestamp(granularity.start_of(since)))
            .bind(Timestamp(until))
            .fetch_all(pool)
            .await?;
            Ok(rows)
        }

        /// `WHERE …` for `query`'s filters.
        fn filter<'q>(sql: &mut QueryBuilder<'q, $db>, query: &'q AuditQuery, denied_only: bool) {
            sql.push(" WHERE 1 = 1");
            if let Some(id) = &query.key_id {
                sql.push(" AND key_id = ").push_bind(id.as_str());
            }
            if let Some(user) = &query.user {
                sql.push(" AND user_id = ").push_bind(user.as_str());
            }
            if let Some(space) = &query.space {
                sql.push(" AND space_id = ").push_bind(space.as_str());
            }
            if let Some(since) = query.since {
                sql.push(" AND at >= ").push_bind(Timestamp(since));
            }
            if let Some(until) = query.until {
                sql.push(" AND at < ").push_bind(Timestamp(until));
            }
            if denied_only {
                sql.push(" AND outcome = 'denied'");
            }
        }

        pub(super) async fn events(
            pool: &Pool<$db>,
            query: &AuditQuery,
        ) -> Result<Vec<StoredEvent>, StoreError> {
            let mut sql = QueryBuilder::<$db>::new(
                "SELECT id, at, outcome, reason, key_id, user_id, space_id, target_space, method, \
                 path FROM keygate_audit",
            );
            filter(&mut sql, query, query.denied_only);
            if let Some(before) = query.before {
                sql.push(" AND id < ").push_bind(before);
            }
            sql.push(" ORDER BY id DESC LIMIT ")
                .push_bind(i64::try_from(query.limit).unwrap_or(1_000));
            Ok(sql.build_query_as().fetch_all(pool).await?)
        }

        pub(super) async fn denials(
            pool: &Pool<$db>,
            query: &AuditQuery,
        ) -> Result<Vec<ReasonCount>, StoreError> {
            // Over the latest denials only: anyone who knows a key id can pile up denials
            // of it, and this read must stay cheap whatever they pile up.
            let mut sql = QueryBuilder::<$db>::new(
                "SELECT reason, COUNT(*) AS count FROM (SELECT reason FROM keygate_audit",
            );
            filter(&mut sql, query, true);
            sql.push(" ORDER BY id DESC LIMIT ")
                .push_bind(DENIAL_SAMPLE)
                .push(") latest GROUP BY reason ORDER BY count DESC, reason");
            Ok(sql.build_query_as().fetch_all(pool).await?)
        }

        /// Deletes rows past `retention` at `now`; returns how many.
        pub(super) async fn retain(
            pool: &Pool<$db>,
            retention: Retention,
            now: SystemTime,
        ) -> Result<u64, StoreError> {
            let mut deleted = 0;
            if let Some(age) = retention.max_age {
                let cutoff = now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
                let done = sqlx::query("DELETE FROM keygate_audit WHERE at < $1")
                    .bind(Timestamp(cutoff))
                    .execute(pool)
                    .await?;
                deleted += done.rows_affected();
            }
            // Minute buckets serve the last hours; hours and days last as long as events.
            let minutes = now
                .checked_sub(Duration::from_secs(MINUTE_BUCKETS_KEPT_SECS))
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let mut cutoffs = vec![("minute", minutes)];
            if let Some(age) = retention.max_age {
                let cutoff = now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
                cutoffs.push(("hour", cutoff));
                cutoffs.push(("day", cutoff));
            }
            for (granularity, cutoff) in cutoffs {
                sqlx::query("DELETE FROM keygate_usage WHERE granularity = $1 AND bucket < $2")
                    .bind(granularity)
                    .bind(Timestamp(cutoff))
                    .execute(pool)
                    .await?;
            }
            if let Some(rows) = retention.max_rows {
                // Ids grow with time: keep the `rows` largest.
                let done = sqlx::query(
                    "DELETE FROM keygate_audit WHERE id <= \
                     (SELECT id FROM keygate_audit ORDER BY id DESC LIMIT 1 OFFSET $1)",
                )
                .bind(i64::try_from(rows).unwrap_or(i64::MAX))
                .execute(pool)
                .await?;
                deleted += done.rows_affected();
            }
            Ok(deleted)
        }
    };
}

#[cfg(feature = "sqlite")]
mod sqlite {
    trail_queries!(sqlx::Sqlite);
}

#[cfg(feature = "postgres")]
mod postgres {
    trail_queries!(sqlx::Postgres);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_text_is_kept() {
        assert_eq!(escape_controls("space-1"), "space-1");
        assert_eq!(escape_controls("a\n\u{1b}\0é"), "a\\u{a}\\u{1b}\\u{0}é");
    }
}
