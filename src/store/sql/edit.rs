//! A [`KeyEdit`] as one SQL `UPDATE`: the `SET` clause and the binds that go with it, shared
//! by both dialects and public for stores of your own.

use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

use crate::key::id::KeyId;
use crate::scopes::Scopes;
use crate::store::edit::KeyEdit;
use crate::store::sql::statements::key_edit_set;
use crate::store::sql::types::Timestamp;

/// The `SET` clause of an edit over keygate's column names, for
/// `UPDATE <table> SET {KEY_EDIT_SET} WHERE id = $1`; [`bind_key_edit`] binds `$1` to
/// `$13`. A field the edit leaves alone keeps its column: `COALESCE` for values that cannot
/// be taken away, a flag and `CASE` for those that can (expiry, rate limit, quota).
pub const KEY_EDIT_SET: &str = key_edit_set!();

/// Binds key `id` and `edit` to a query over [`KEY_EDIT_SET`].
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use keygate::sqlx::{self, Sqlite};
/// use keygate::{KEY_EDIT_SET, KeyEdit, KeyId, bind_key_edit};
///
/// let sql = format!("UPDATE api_keys SET {KEY_EDIT_SET} WHERE id = $1");
/// let edit = KeyEdit::new().rename("ci deploy").disable();
/// let id = KeyId::parse("AbCdEfGh12345678")?;
/// let query = bind_key_edit(sqlx::query::<Sqlite>(&sql), &id, &edit);
/// # drop(query);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn bind_key_edit<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    id: &KeyId,
    edit: &'q KeyEdit,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    KeyId: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
    Option<bool>: Encode<'q, DB> + Type<DB>,
    Option<Timestamp>: Encode<'q, DB> + Type<DB>,
    Option<Scopes>: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
{
    let rate = edit.rate_limit.flatten().map(|limit| limit.to_parts());
    let quota = edit.quota.flatten().map(|quota| quota.to_parts());
    query
        .bind(*id)
        .bind(edit.name.as_deref())
        .bind(edit.expires_at.is_some())
        .bind(edit.expires_at.flatten().map(Timestamp))
        .bind(edit.scopes.clone())
        .bind(edit.disabled)
        .bind(edit.rate_limit.is_some())
        .bind(rate.map(|(count, _, _)| count))
        .bind(rate.map(|(_, period, _)| period))
        .bind(rate.map(|(_, _, burst)| burst))
        .bind(edit.quota.is_some())
        .bind(quota.map(|(limit, _)| limit))
        .bind(quota.map(|(_, refill)| refill))
}
