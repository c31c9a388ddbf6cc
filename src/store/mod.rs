//! The store traits: [`KeyStore`] (the read on the hot path) and [`KeyStoreWrite`] (what
//! [`KeyManager`](crate::KeyManager) needs), with [`StoredKey`] and [`StoreError`].
//!
//! Implement them for your own database, or use [`MemoryStore`].

pub(crate) mod edit;
pub(crate) mod error;
pub(crate) mod key_store;
pub(crate) mod stored;
pub(crate) mod write;

#[cfg(feature = "cache")]
pub(crate) mod cached;
#[cfg(feature = "cache")]
pub(crate) mod invalidations;
pub(crate) mod memory;
pub(crate) mod page;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod sql;
pub(crate) mod table;

#[cfg(feature = "cache")]
pub use cached::{CacheConfig, CachedStore};
pub use edit::KeyEdit;
pub use error::StoreError;
pub use key_store::KeyStore;
pub use memory::MemoryStore;
pub use page::{Cursor, Page};
#[cfg(feature = "postgres")]
pub use sql::listen::{Heartbeat, InvalidationListener};
#[cfg(feature = "postgres")]
pub use sql::postgres::{DEFAULT_CHANNEL, PgStore};
#[cfg(feature = "sqlite")]
pub use sql::sqlite::SqliteStore;
pub use stored::{PreviousSecret, StoredKey};
pub use write::{KeyStoreWrite, UsageUpdate};
