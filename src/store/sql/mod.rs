//! SQL stores (sqlx): the row they share, its conversions, and embedded migrations.
//!
//! Both dialects keep one table, `keygate_keys`, keyed by the key id, with indexes on the
//! owner and the space. Times are PostgreSQL's `TIMESTAMPTZ`, and integer microseconds
//! since the Unix epoch in SQLite, which has no time type ([`Timestamp`](types::Timestamp));
//! scopes a space-separated string (scope tokens hold no spaces). Every query is
//! parameterized. The same types ([`KeyRow`](row::KeyRow) and the sqlx impls of `types`)
//! are public, so a store of your own reads and binds keygate's values directly.
//!
//! Migrations are versioned in a table of their own, `keygate_migrations`, rather than
//! sqlx's `_sqlx_migrations`, so they never collide with the migrations of the
//! application that shares the database.

pub(crate) mod edit;
pub(crate) mod queries;
pub(crate) mod row;
pub(crate) mod statements;
pub(crate) mod types;

#[cfg(feature = "postgres")]
pub(crate) mod listen;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
