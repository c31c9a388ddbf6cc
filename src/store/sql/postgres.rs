//! [`PgStore`]: keys in PostgreSQL, for fleets of instances.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::error::ConfigError;
use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::record::KeyRecord;
use crate::store::cached::CachedStore;
use crate::store::edit::KeyEdit;
use crate::store::error::StoreError;
use crate::store::key_store::KeyStore;
use crate::store::page::Page;
use crate::store::sql::edit::bind_key_edit;
use crate::store::sql::listen::{Heartbeat, InvalidationListener};
use crate::store::sql::queries::Queries;
use crate::store::sql::row::{KeyRow, count};
use crate::store::sql::statements as sql;
use crate::store::sql::types::Timestamp;
use crate::store::stored::StoredKey;
use crate::store::write::{KeyStoreWrite, UsageUpdate};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/postgres_0001_keys.sql")),
    (2, include_str!("migrations/postgres_0002_timestamptz.sql")),
    (3, include_str!("migrations/postgres_0003_edits.sql")),
];

/// Serializes concurrent migrations of instances starting together ("kgate" in ASCII).
const MIGRATION_LOCK: i64 = 0x006b_6761_7465;

/// The default LISTEN/NOTIFY channel for invalidations.
pub const DEFAULT_CHANNEL: &str = "keygate_invalidate";

/// Keys in PostgreSQL.
///
/// Every write that changes what a key can do (regenerate, revoke) also sends
/// `NOTIFY <channel>, '<key id>'` in the same transaction, so the notification goes out
/// exactly when the change commits. Instances that cache keys apply it with
/// [`PgStore::spawn_invalidation_listener`].
///
/// ```no_run
/// use keygate::{CachedStore, Keygate, PgStore};
///
/// # async fn run() -> Result<(), keygate::StoreError> {
/// let store = PgStore::connect("postgres://postgres@127.0.0.1/app").await?;
/// let cached = CachedStore::new(store.clone());
/// // Keep the handle: dropping it stops the listener (and turns the cache off).
/// let _listener = store.spawn_invalidation_listener(&cached);
/// let keygate = Keygate::new(cached);
/// let layer = keygate.layer();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    channel: Arc<str>,
    heartbeat: Heartbeat,
    /// Where the listener connects, when not where the pool does.
    listener_options: Option<PgConnectOptions>,
}

impl PgStore {
    /// Connects a pool to `url` and applies pending migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the server cannot be reached or a migration fails.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(2))
            .connect(url)
            .await
            .map_err(StoreError::backend)?;
        let store = Self::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// A store over an existing pool; call [`PgStore::migrate`] before use. The pool
    /// reconnects by itself after a server restart; lookups fail (503) until it has.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            channel: DEFAULT_CHANNEL.into(),
            heartbeat: Heartbeat::default(),
            listener_options: None,
        }
    }

    /// How often the invalidation listener proves its connection alive, and how long it
    /// waits for the proof (default every 250 ms, within 500 ms). A revocation on another
    /// instance is seen, or the cache bypassed, at most `every + within` after it commits.
    /// Raise `within` above the round trip to a distant database.
    pub fn with_heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Where the invalidation listener connects (default: where the pool does). Point it
    /// past a pooler that does not keep sessions (PgBouncer in transaction mode), since
    /// `LISTEN` needs a session of its own.
    pub fn with_listener_options(mut self, options: PgConnectOptions) -> Self {
        self.listener_options = Some(options);
        self
    }

    /// The LISTEN/NOTIFY channel for invalidations (default `keygate_invalidate`). All
    /// instances sharing the keys must use the same one.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidChannel`] unless it is 1 to 63 lowercase ASCII letters,
    /// digits or `_`, starting with a letter or `_`.
    pub fn with_channel(mut self, channel: &str) -> Result<Self, ConfigError> {
        let valid = (1..=63).contains(&channel.len())
            && channel
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
            && channel
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(ConfigError::InvalidChannel);
        }
        self.channel = channel.into();
        Ok(self)
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The invalidation channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Applies the migrations not yet applied, in one transaction under an advisory lock,
    /// so instances starting together migrate once.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when a migration fails; nothing of it is applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::backend)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        sqlx::raw_sql(sql::MIGRATIONS_TABLE)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::backend)?;
        for (version, migration) in MIGRATIONS {
            let applied: Option<i64> = sqlx::query_scalar(sql::MIGRATION_APPLIED)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::backend)?;
            if applied.is_none() {
                sqlx::raw_sql(migration)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::backend)?;
                sqlx::query(sql::MIGRATION_DONE)
                    .bind(version)
                    .bind(Timestamp(SystemTime::now()).micros())
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::backend)?;
            }
        }
        tx.commit().await.map_err(StoreError::backend)
    }

    /// Starts a task that applies this store's invalidations, from every instance, to
    /// `cache`.
    ///
    /// The listener holds a connection of its own, outside the pool, and proves it alive
    /// with a heartbeat sent through the database every 250 ms ([`PgStore::with_heartbeat`]).
    /// Until it is subscribed and its first heartbeat is back, and whenever a heartbeat is
    /// late or the connection fails, the cache is bypassed (every lookup reads the
    /// database); once it is back, the cache starts empty. So a key revoked on any instance
    /// fails on this one within `every + within` of the commit (750 ms by default), whether
    /// the listener's connection is healthy, closed or silently stalled; with a healthy
    /// connection, within the notification's delivery time (milliseconds).
    ///
    /// The task stops when the returned handle is dropped, and the cache is then bypassed
    /// for good: keep the handle for as long as the cache serves.
    pub fn spawn_invalidation_listener<S: KeyStore>(
        &self,
        cache: &CachedStore<S>,
    ) -> InvalidationListener {
        let options = self
            .listener_options
            .clone()
            .unwrap_or_else(|| (*self.pool.connect_options()).clone());
        InvalidationListener::spawn(options, self.channel.clone(), self.heartbeat, cache.clone())
    }

    /// Runs one `UPDATE` (or `DELETE`) of key `id` and, if it touched the key, notifies the
    /// channel in the same transaction.
    async fn update_and_notify<'q>(
        &self,
        id: &KeyId,
        update: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        let done = update.execute(&mut *tx).await.map_err(StoreError::from)?;
        StoreError::one_row(done.rows_affected())?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(&*self.channel)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        tx.commit().await.map_err(StoreError::from)
    }
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("channel", &self.channel)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyStore for PgStore {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        let row = Queries(&self.pool).find(id).await?;
        Ok(row.map(KeyRow::into_stored))
    }
}

#[async_trait]
impl KeyStoreWrite for PgStore {
    async fn insert(&self, record: &KeyRecord, hash: KeyHash) -> Result<(), StoreError> {
        Queries(&self.pool).insert(record, hash).await
    }

    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let row = Queries(&self.pool).find(id).await?;
        Ok(row.map(KeyRow::into_record))
    }

    async fn list_by_user(&self, user: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        Queries(&self.pool).list(sql::PG_BY_USER, user, page).await
    }

    async fn list_by_space(&self, space: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        Queries(&self.pool)
            .list(sql::PG_BY_SPACE, space, page)
            .await
    }

    async fn replace_secret(
        &self,
        id: &KeyId,
        hash: KeyHash,
        preview: &str,
        keep_previous_until: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        let update = sqlx::query(sql::REPLACE_SECRET)
            .bind(id.as_str())
            .bind(hash.as_bytes().to_vec())
            .bind(preview.to_owned())
            .bind(keep_previous_until.map(Timestamp));
        self.update_and_notify(id, update).await
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        let update = sqlx::query(sql::REVOKE).bind(*id).bind(Timestamp(at));
        self.update_and_notify(id, update).await
    }

    async fn edit(&self, id: &KeyId, edit: &KeyEdit) -> Result<(), StoreError> {
        let update = bind_key_edit(sqlx::query(sql::EDIT), id, edit);
        self.update_and_notify(id, update).await
    }

    async fn delete(&self, id: &KeyId) -> Result<(), StoreError> {
        self.update_and_notify(id, sqlx::query(sql::DELETE).bind(id.as_str()))
            .await
    }

    async fn record_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        // One statement for the whole batch: the arrays are zipped by UNNEST.
        let ids: Vec<&str> = updates.iter().map(|u| u.id.as_str()).collect();
        let times: Vec<Timestamp> = updates.iter().map(|u| Timestamp(u.last_used_at)).collect();
        let counts: Vec<i64> = updates.iter().map(|u| count(u.count)).collect();
        sqlx::query(
            "UPDATE keygate_keys AS k SET use_count = k.use_count + u.n, \
             last_used_at = GREATEST(COALESCE(k.last_used_at, u.at), u.at) \
             FROM UNNEST($1::text[], $2::timestamptz[], $3::bigint[]) AS u(id, at, n) \
             WHERE k.id = u.id",
        )
        .bind(ids)
        .bind(times)
        .bind(counts)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(())
    }
}
