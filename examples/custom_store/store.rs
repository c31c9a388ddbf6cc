//! A key store over an application's own SQLite schema (`schema.sql`): keys belong to rows
//! of its `users` table, by integer id and foreign key. `tests/custom_store.rs` runs
//! keygate's conformance suite against it.

use std::time::SystemTime;

use keygate::sqlx::{SqlitePool, query, query_as};
use keygate::{
    KEY_EDIT_SET, KeyEdit, StoreError, StoredKey, Timestamp, UsageUpdate, async_trait,
    bind_key_edit,
};
use keygate::{KeyHash, KeyId, KeyRecord, KeyRow, KeyStore, KeyStoreWrite, Page, Quota, RateLimit};

const INSERT: &str = "INSERT INTO api_keys (id, hash, user_id, space_id, name, scopes, preview,
    created_at, expires_at, revoked_at, disabled, rate_count, rate_period_ms, rate_burst,
    quota_limit, quota_refill) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
    $14, $15, $16)";
const REPLACE: &str = "UPDATE api_keys SET hash = $3, preview = $4, previous_valid_until = $2,
    previous_hash = CASE WHEN $2 IS NULL THEN NULL ELSE hash END WHERE id = $1";
const REVOKE: &str = "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2),
    previous_hash = NULL, previous_valid_until = NULL WHERE id = $1";
const USAGE: &str = "UPDATE api_keys SET use_count = use_count + $3,
    last_used_at = MAX(COALESCE(last_used_at, $2), $2) WHERE id = $1";
const PAGE: &str = "(created_at > $2 OR (created_at = $2 AND id > $3)) ORDER BY created_at, id";

#[derive(Clone, Debug)]
pub struct AppKeys(pub SqlitePool);

impl AppKeys {
    async fn list(&self, by: &str, owner: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!("SELECT * FROM api_keys WHERE {by} = $1 AND {PAGE} LIMIT $4");
        let (time, id) = page.start();
        let query = query_as(&sql).bind(owner).bind(Timestamp(time)).bind(id);
        let rows: Vec<KeyRow> = query.bind(page.limit as i64).fetch_all(&self.0).await?;
        Ok(rows.into_iter().map(KeyRow::into_record).collect())
    }

    async fn row(&self, id: &KeyId) -> Result<Option<KeyRow>, StoreError> {
        let query = query_as("SELECT * FROM api_keys WHERE id = $1").bind(id);
        Ok(query.fetch_optional(&self.0).await?)
    }
}

#[async_trait]
impl KeyStore for AppKeys {
    async fn find(&self, id: &KeyId) -> Result<Option<StoredKey>, StoreError> {
        Ok(self.row(id).await?.map(KeyRow::into_stored))
    }
}

#[async_trait]
impl KeyStoreWrite for AppKeys {
    async fn insert(&self, record: &KeyRecord, hash: KeyHash) -> Result<(), StoreError> {
        let key = &record.identity;
        let user: i64 = key.user().parse().map_err(StoreError::backend)?;
        let q = query(INSERT).bind(key.key_id()).bind(hash).bind(user);
        let q = q.bind(key.space()).bind(key.name()).bind(key.scopes());
        let q = q.bind(&record.preview).bind(Timestamp(record.created_at));
        let q = q.bind(record.expires_at.map(Timestamp));
        let q = q
            .bind(record.revoked_at.map(Timestamp))
            .bind(record.disabled);
        let rate = record.rate_limit.map(RateLimit::to_parts);
        let q = q
            .bind(rate.map(|r| r.0))
            .bind(rate.map(|r| r.1))
            .bind(rate.map(|r| r.2));
        let quota = record.quota.map(Quota::to_parts);
        let q = q.bind(quota.map(|q| q.0)).bind(quota.map(|q| q.1));
        q.execute(&self.0).await?;
        Ok(())
    }
    async fn edit(&self, id: &KeyId, edit: &KeyEdit) -> Result<(), StoreError> {
        let sql = format!("UPDATE api_keys SET {KEY_EDIT_SET} WHERE id = $1");
        let done = bind_key_edit(query(&sql), id, edit)
            .execute(&self.0)
            .await?;
        StoreError::one_row(done.rows_affected())
    }
    async fn record(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.row(id).await?.map(KeyRow::into_record))
    }
    async fn list_by_user(&self, user: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        self.list("user_id", user, page).await
    }
    async fn list_by_space(&self, space: &str, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        self.list("space_id", space, page).await
    }
    async fn replace_secret(
        &self,
        id: &KeyId,
        hash: KeyHash,
        preview: &str,
        keep: Option<SystemTime>,
    ) -> Result<(), StoreError> {
        let q = query(REPLACE).bind(id).bind(keep.map(Timestamp));
        let done = q.bind(hash).bind(preview).execute(&self.0).await?;
        StoreError::one_row(done.rows_affected())
    }
    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<(), StoreError> {
        let q = query(REVOKE).bind(id).bind(Timestamp(at));
        StoreError::one_row(q.execute(&self.0).await?.rows_affected())
    }
    async fn delete(&self, id: &KeyId) -> Result<(), StoreError> {
        let q = query("DELETE FROM api_keys WHERE id = $1").bind(id);
        StoreError::one_row(q.execute(&self.0).await?.rows_affected())
    }
    async fn record_usage(&self, updates: &[UsageUpdate]) -> Result<(), StoreError> {
        for update in updates {
            let q = query(USAGE)
                .bind(update.id)
                .bind(Timestamp(update.last_used_at));
            q.bind(update.count as i64).execute(&self.0).await?;
        }
        Ok(())
    }
}
