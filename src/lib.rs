//! API-key authentication for tower and axum services.
//!
//! Build one [`Keygate`] over a key store. It gives you a layer for your
//! [`Router`](https://docs.rs/axum/latest/axum/struct.Router.html) (or any tower `Service`
//! over [`http::Request`]) and a [`KeyManager`] that creates, lists, regenerates and
//! revokes keys, and the two always agree on key format, hasher and clock. Each request
//! then has to carry one API key, in `Authorization: Bearer …` or a header you name; the
//! layer checks its format, looks it up by its non-secret id, compares hashes in constant
//! time, and hands the verified [`Identity`] to your handlers.
//!
//! ```
//! use axum::{Router, routing::get};
//! use keygate::{Identity, KeySource, Keygate, MemoryStore, NewKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keygate = Keygate::new(MemoryStore::new())
//!     .with_sources([KeySource::bearer(), KeySource::header("x-api-key")?])?;
//!
//! async fn me(identity: Identity) -> String {
//!     format!("hello, {}", identity.user())
//! }
//! let app: Router = Router::new().route("/me", get(me)).layer(keygate.layer());
//!
//! // Issue a key: the plaintext goes to the client once, the store keeps its hash.
//! let created = keygate.manager().create(NewKey::new("alice", "laptop")).await?;
//!
//! # use tower::ServiceExt;
//! let request = http::Request::get("/me")
//!     .header("x-api-key", created.key.expose_secret())
//!     .body(axum::body::Body::empty())?;
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! # What a request goes through
//!
//! 1. [`KeySource`]s find the one credential (two are refused with 400).
//! 2. [`KeyFormat::check`] tests prefix, length, charset and CRC32 checksum, so a
//!    mistyped or random key never costs a store call.
//! 3. [`KeyStore::find`] looks the key up by its [`KeyId`].
//! 4. The [`KeyHash`] of the presented key is compared in constant time, then revocation
//!    and expiry are checked.
//! 5. The [`Identity`] is inserted into the request extensions and the credential header
//!    removed; the inner service runs.
//!
//! Any failure becomes a [`Rejection`] with an RFC 6750 response; all invalid keys get
//! the same one.
//!
//! # Around the request
//!
//! - [`KeyManager`] creates (plaintext once), lists, regenerates and revokes keys over a
//!   [`KeyStoreWrite`]; its `*_as` methods act for an [`Actor`] without gaining power.
//! - [`SpaceResolver`] confines space-bound keys to their space;
//!   [`Keygate::require_scope`] and [`RequireScope`] guard routes by scope.
//! - Every decision is an [`AuditEvent`] for an [`AuditSink`]; last use is tracked and
//!   written in batches.
//!
//! # Features
//!
//! - `axum` (default): extractors for [`Identity`], `Option<Identity>` and
//!   [`RequireScope`], and `IntoResponse` for [`Rejection`], through `axum-core`.
//! - `tokio` (default): store-lookup timeouts and the background flush of usage data.
//! - `cache`, `sqlite`, `postgres`: `CachedStore`, `SqliteStore`, `PgStore` and its
//!   invalidation listener.
//! - `testkit`: the conformance suite for your own store.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod audit;
mod clock;
mod config;
mod context;
mod error;
#[cfg(feature = "axum")]
mod extract;
mod identity;
mod key;
mod layer;
mod limit;
mod manage;
#[cfg(feature = "openapi")]
mod openapi;
mod policy;
mod record;
mod reject;
mod scopes;
mod source;
mod store;
#[cfg(any(test, feature = "testkit"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
mod text;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use audit::{
    AUDIT_BATCH, AuditQuery, DEFAULT_AUDIT_QUEUE, DENIAL_SAMPLE, Granularity, ReasonCount,
    Retention, SqlAuditSink, SqlAuditStats, StoredEvent, UsageBucket, UsageOf,
};
pub use audit::{AuditEvent, AuditSink, AuditStats, NoAudit, Outcome, Reason, TracingSink};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{DEFAULT_STORE_TIMEOUT, Keygate};
pub use context::Authenticated;
pub use error::ConfigError;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::{IdentityRejection, RequireScope, ScopeName};
pub use identity::Identity;
pub use key::{
    ApiKey, GenerateError, InvalidKeyHash, InvalidKeyId, KeyFormat, KeyGenerator, KeyHash,
    KeyHasher, KeyId, MIN_PEPPER_LEN, MalformedKey,
};
pub use layer::{ApiKeyLayer, ApiKeyService, LayerStats, ResponseFuture};
pub use limit::{Quota, RateLimit, Refill};
#[cfg(feature = "page")]
pub use manage::is_same_origin;
pub use manage::{
    Actor, CreatedKey, DEFAULT_MAX_KEYS_PER_OWNER, KeyManager, MAX_GRACE, ManageError, NewKey,
};
#[cfg(feature = "router")]
#[cfg_attr(docsrs, doc(cfg(feature = "router")))]
pub use manage::{ActorResolver, FromFn, KeyWithScope, Problem, manage_from_fn};
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use manage::{
    CreateKeyRequest, CreatedKeyJson, EditKeyRequest, KeyPageJson, KeyRecordJson,
    RegenerateRequest, RevokedJson,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use policy::{DEFAULT_REDIS_TIMEOUT, OnRedisError, RedisLimiter};
pub use policy::{
    LimitCheck, LimitError, LimitFuture, LimitKind, LimitRefusal, LimitRequest, LimitStatus,
    LimitVerdict, Limiter, LocalLimiter, Policy, RateLimits, RequireScopeFuture, RequireScopeLayer,
    RequireScopeService, SWEEP_EVERY, SpaceResolver,
};
pub use record::KeyRecord;
pub use reject::{Insufficient, InvalidKey, Rejection};
pub use scopes::{InvalidScope, Scopes};
pub use source::KeySource;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::SqliteStore;
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use store::{CacheConfig, CachedStore};
pub use store::{
    Cursor, KeyEdit, KeyStore, KeyStoreWrite, MemoryStore, Page, PreviousSecret, StoreError,
    StoredKey, UsageUpdate,
};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::{DEFAULT_CHANNEL, Heartbeat, InvalidationListener, PgStore};

/// One key as a SQL query returns it, and the time type SQL stores use.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use store::sql::{
    edit::{KEY_EDIT_SET, bind_key_edit},
    row::KeyRow,
    types::Timestamp,
};

/// The `#[async_trait]` attribute the store traits are written with, so that implementing
/// them needs no dependency of your own.
pub use async_trait::async_trait;

/// The sqlx this crate was built with, for building pools and options of the same
/// version as [`SqliteStore`] and [`PgStore`] expect.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sqlx;

/// The README's examples, compiled and run as doctests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
