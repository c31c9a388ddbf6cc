//! [`Queries`]: the queries both dialects run the same way, over a pool of either.

use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::record::KeyRecord;
use crate::scopes::Scopes;
use crate::store::error::StoreError;
use crate::store::page::Page;
use crate::store::sql::row::{KeyRow, count};
use crate::store::sql::statements;
use crate::store::sql::types::Timestamp;

/// The queries both dialects run the same way, over a pool of either.
pub(crate) struct Queries<'p, DB: sqlx::Database>(pub(crate) &'p sqlx::Pool<DB>);

impl<DB> Queries<'_, DB>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'r> KeyRow: sqlx::FromRow<'r, DB::Row>,
    for<'q> KeyId: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> KeyHash: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Scopes: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Timestamp: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<Timestamp>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    /// The row of key `id`.
    pub(crate) async fn find(&self, id: &KeyId) -> Result<Option<KeyRow>, StoreError> {
        sqlx::query_as(statements::FIND)
            .bind(*id)
            .fetch_optional(self.0)
            .await
            .map_err(StoreError::from)
    }

    /// Inserts a new key.
    pub(crate) async fn insert(&self, record: &KeyRecord, hash: KeyHash) -> Result<(), StoreError> {
        let identity = &record.identity;
        let rate = record.rate_limit.map(|limit| limit.to_parts());
        let quota = record.quota.map(|quota| quota.to_parts());
        sqlx::query(statements::INSERT)
            .bind(identity.key_id())
            .bind(hash)
            .bind(identity.user())
            .bind(identity.space())
            .bind(identity.name())
            .bind(identity.scopes().clone())
            .bind(record.preview.as_str())
            .bind(Timestamp(record.created_at))
            .bind(record.expires_at.map(Timestamp))
            .bind(record.revoked_at.map(Timestamp))
            .bind(record.last_used_at.map(Timestamp))
            .bind(count(record.use_count))
            .bind(record.disabled)
            .bind(rate.map(|(count, _, _)| count))
            .bind(rate.map(|(_, period, _)| period))
            .bind(rate.map(|(_, _, burst)| burst))
            .bind(quota.map(|(limit, _)| limit))
            .bind(quota.map(|(_, refill)| refill))
            .execute(self.0)
            .await
            .map_err(StoreError::from)?;
        Ok(())
    }

    /// The page of records a listing query returns for `value`.
    pub(crate) async fn list(
        &self,
        query: &'static str,
        value: &str,
        page: Page,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let (after_time, after_id) = page.start();
        let rows: Vec<KeyRow> = sqlx::query_as(query)
            .bind(value)
            .bind(Timestamp(after_time))
            .bind(after_id)
            .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
            .fetch_all(self.0)
            .await
            .map_err(StoreError::from)?;
        Ok(rows.into_iter().map(KeyRow::into_record).collect())
    }
}
