//! [`SqliteStore`]: the persistent embedded store.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::record::KeyRecord;
use crate::store::edit::KeyEdit;
use crate::store::error::StoreError;
use crate::store::key_store::KeyStore;
use crate::store::page::Page;
use crate::store::sql::edit::bind_key_edit;
use crate::store::sql::queries::Queries;
use crate::store::sql::row::{KeyRow, count};
use crate::store::sql::statements as sql;
use crate::store::sql::types::Timestamp;
use crate::store::stored::StoredKey;
use crate::store::write::{KeyStoreWrite, UsageUpdate};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite_0001_keys.sql")),
    (2, include_str!("migrations/sqlite_0002_edits.sql")),
];

/// Keys in a SQLite database: one file, no server, survives restarts.
///
/// ```no_run
/// use keygate::{Keygate, SqliteStore};
///
/// # async fn run() -> Result<(), keygate::StoreError> {
/// let store = SqliteStore::connect("sqlite://keys.db").await?; // creates and migrates
/// let keygate = Keygate::new(store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path`, or
    /// `sqlite::memory:`), in WAL mode, and applies pending migrations.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL is invalid, the file cannot be opened, or a
    /// migration fails.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::backend)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        // An in-memory database lives only as long as its one connection.
        let max = if url.contains(":memory:") { 1 } else { 8 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(options)
            .await
            .map_err(StoreError::backend)?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// A store over an existing pool; call [`SqliteStore::migrate`] before use.
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Applies the migrations not yet applied, in one immediate transaction.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when a migration fails; nothing of it is applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::backend)?;
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *conn)
            .await
            .map_err(StoreError::backend)?;
        let result = async {
            sqlx::raw_sql(sql::MIGRATIONS_TABLE)
                .execute(&mut *conn)
                .await?;
            for (version, sql) in MIGRATIONS {
                let applied: Option<i64> = sqlx::query_scalar(sql::MIGRATION_APPLIED)
                    .bind(version)
                    .fetch_optional(&mut *conn)
                    .await?;
                if applied.is_none() {
                    sqlx::raw_sql(sql).execute(&mut *conn).await?;
                    sqlx::query(sql::MIGRATION_DONE)
                        .bind(version)
                        .bind(Timestamp(SystemTime::now()).micros())
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = sqlx::raw_sql(end).execute(&mut *conn).await;
        result.map_err(StoreError::backend)?;
        ended.map_err(StoreError::backend)?;
        Ok(())
    }
}

impl SqliteStore {
    /// Runs an `UPDATE` (or `DELETE`) of one key by its id.
    async fn update_one<'q>(
        &self,
        update: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<(), StoreError> {
        let done = update.execute(&self.pool).await.map_err(StoreError::from)?;
        StoreError::one_row(done.rows_affected())
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        let row = Queries(&self.pool).find(id).await?;
        Ok(row.map(KeyRow::into_stored))
    }
}

#[async_trait]
impl KeyStoreWrite for SqliteStore {
    async fn insert(&self, record: &KeyRecord, hash: KeyHash) -> Result<(), StoreError> {
        Queries(&self.pool).insert(record, hash).await
    }

    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let row = Queries(&self.pool).find(id).await?;
        Ok(row.map(KeyRow::into_record))
    }

    async fn list_by_user(&self, user: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        Queries(&self.pool)
            .list(sql::SQLITE_BY_USER, user, page)
            .await
    }

    async fn list_by_space(&self, space: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        Queries(&self.pool)
            .list(sql::SQLITE_BY_SPACE, space, page)
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
            .bind(hash.as_bytes().as_slice())
            .bind(preview)
            .bind(keep_previous_until.map(Timestamp));
        self.update_one(update).await
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        let update = sqlx::query(sql::REVOKE).bind(*id).bind(Timestamp(at));
        self.update_one(update).await
    }

    async fn edit(&self, id: &KeyId, edit: &KeyEdit) -> Result<(), StoreError> {
        self.update_one(bind_key_edit(sqlx::query(sql::EDIT), id, edit))
            .await
    }

    async fn delete(&self, id: &KeyId) -> Result<(), StoreError> {
        self.update_one(sqlx::query(sql::DELETE).bind(id.as_str()))
            .await
    }

    async fn record_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        for update in updates {
            sqlx::query(sql::RECORD_USAGE)
                .bind(update.id.as_str())
                .bind(Timestamp(update.last_used_at))
                .bind(count(update.count))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from)?;
        }
        tx.commit().await.map_err(StoreError::from)
    }
}

#[cfg(test)]
mod conformance {
    crate::store_conformance!(async {
        super::SqliteStore::connect("sqlite::memory:")
            .await
            .expect("an in-memory SQLite database")
    });
}
