//! SQL stores (sqlx): the row they share, its conversions, and embedded migrations.
//!
//! Both dialects keep one table, `keygate_keys`, keyed by the key id, with indexes on the
//! owner and the space. Times are microseconds since the Unix epoch (`BIGINT`), scopes a
//! space-separated string (scope tokens hold no spaces), so both dialects store the same
//! values and no date-time feature of sqlx is needed. Every query is parameterized.
//!
//! Migrations are versioned in a table of their own, `keygate_migrations`, rather than
//! sqlx's `_sqlx_migrations`, so they never collide with the migrations of the
//! application that shares the database.

pub(crate) mod queries;
pub(crate) mod row;
pub(crate) mod statements;

#[cfg(feature = "postgres")]
pub(crate) mod listen;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
