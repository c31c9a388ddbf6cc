//! The quickstart: an axum app behind `ApiKeyLayer`, with key management endpoints and
//! one admin key issued at start.
//!
//! ```sh
//! cargo run --example quickstart
//! # it prints `export API_KEY=...`; paste that line into another shell, then:
//! curl -i localhost:3000/health
//! curl -i localhost:3000/me -H "Authorization: Bearer $API_KEY"
//! curl -i localhost:3000/me -H "X-API-Key: $API_KEY"
//! curl -i localhost:3000/keys -H "X-API-Key: $API_KEY" \
//!      -H 'content-type: application/json' -d '{"name":"space one","space":"one"}'
//! ```
//!
//! Environment:
//! - `KEYGATE_ADDR`: where to listen (default `127.0.0.1:3000`);
//! - `DATABASE_URL`: where keys live. Unset: in memory, gone when the process stops.
//!   `sqlite://keys.db` (with `--features sqlite`) or `postgres://…` (with
//!   `--features postgres`): persistent, behind a cache; with PostgreSQL, several
//!   instances share keys and a revocation on one reaches the others in milliseconds;
//! - `RUST_LOG`: the audit trail on stderr (default `keygate=debug`).

mod app;

use std::error::Error;
use std::sync::Arc;

use keygate::{KeyFormat, KeyStoreWrite, Keygate, MemoryStore, NewKey, Scopes};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("keygate=debug")),
        )
        .with_writer(std::io::stderr)
        .init();
    let address = std::env::var("KEYGATE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());

    let database = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let Opened {
        store,
        keep: _keep,
        trail,
    } = open_store(database.as_deref()).await?;
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(unused_mut))]
    let mut keygate = Keygate::new(store).with_format(KeyFormat::with_prefix("kg_live")?);
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    if let Some(trail) = &trail {
        // Every decision goes to stderr, as without a database, and to the SQL trail.
        keygate = keygate.with_audit_sink((keygate::TracingSink, trail.clone()), 8_192);
    }

    // The admin key: user-wide and allowed to manage keys. Its plaintext is printed once
    // and never kept; the store holds only its hash.
    let admin = keygate
        .manager()
        .create(
            NewKey::new("admin", "quickstart admin").with_scopes(Scopes::new([app::KEYS_WRITE])?),
        )
        .await?;

    let (router, keygate) = app::router_with_trail(&keygate, trail.map(app::as_trail))?;
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!(
        "keygate quickstart listening on {base} (keys {})",
        match &database {
            Some(url) => format!("in {}", url.split('@').next_back().unwrap_or(url)),
            None => "in memory".to_owned(),
        }
    );
    println!();
    println!("export API_KEY={}", admin.key.expose_secret());
    drop(admin);
    println!();
    println!("curl -i {base}/health");
    println!("curl -i {base}/me -H \"Authorization: Bearer $API_KEY\"");
    println!("curl -i {base}/me -H \"X-API-Key: $API_KEY\"");
    println!("curl -i {base}/me                                    # 401: no key");
    println!(
        "curl -i {base}/keys -H \"X-API-Key: $API_KEY\" -H 'content-type: application/json' -d '{{\"name\":\"space one\",\"space\":\"one\"}}'"
    );
    println!("curl -i {base}/keys -H \"X-API-Key: $API_KEY\"");
    println!("curl -i {base}/spaces/one/items -H \"X-API-Key: $SPACE_KEY\"     # 200");
    println!("curl -i {base}/spaces/two/items -H \"X-API-Key: $SPACE_KEY\"     # 403");
    println!("curl -i -X POST {base}/keys/$KEY_ID/regenerate -H \"X-API-Key: $API_KEY\"");
    println!(
        "curl -i -X PATCH {base}/keys/$KEY_ID -H \"X-API-Key: $API_KEY\" -H 'content-type: application/json' -d '{{\"disabled\":true}}'"
    );
    println!("curl -i -X DELETE {base}/keys/$KEY_ID -H \"X-API-Key: $API_KEY\"");

    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            // If the signal handler cannot be installed, run until killed instead.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await?;
    // Write the last uses before leaving.
    keygate.flush_usage().await?;
    Ok(())
}

/// What must stay alive while the store serves (the PostgreSQL invalidation listener).
type Keep = Option<Box<dyn std::any::Any + Send>>;

/// How long the quickstart keeps its audit trail: 30 days, and at most a million rows, so
/// that a flood of forged keys cannot fill the disk.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
const RETENTION: keygate::Retention = keygate::Retention {
    max_age: Some(std::time::Duration::from_secs(30 * 86_400)),
    max_rows: Some(1_000_000),
};

/// The SQL audit trail, with a database; nothing without one.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
type Trail = keygate::SqlAuditSink;
#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
type Trail = std::convert::Infallible;

/// The store, what keeps it serving, and the audit trail beside it.
struct Opened {
    store: Arc<dyn KeyStoreWrite>,
    keep: Keep,
    trail: Option<Trail>,
}

/// The store `DATABASE_URL` names, behind a cache when it is a database, with an audit
/// trail (30 days) in the same database.
async fn open_store(url: Option<&str>) -> Result<Opened, Box<dyn Error>> {
    let Some(url) = url else {
        return Ok(Opened {
            store: Arc::new(MemoryStore::new()),
            keep: None,
            trail: None,
        });
    };
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        {
            let store = keygate::SqliteStore::connect(url).await?;
            let trail = keygate::SqlAuditSink::sqlite(store.pool().clone(), RETENTION).await?;
            // Behind a cache when the `cache` feature is on; SQLite is fast enough alone.
            #[cfg(feature = "cache")]
            let store = keygate::CachedStore::new(store);
            return Ok(Opened {
                store: Arc::new(store),
                keep: None,
                trail: Some(trail),
            });
        }
        #[cfg(not(feature = "sqlite"))]
        return Err("DATABASE_URL names SQLite: run with `--features sqlite`".into());
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        #[cfg(feature = "postgres")]
        {
            let store = keygate::PgStore::connect(url).await?;
            let trail = keygate::SqlAuditSink::postgres(store.pool().clone(), RETENTION).await?;
            let cached = keygate::CachedStore::new(store.clone());
            let listener = store.spawn_invalidation_listener(&cached);
            return Ok(Opened {
                store: Arc::new(cached),
                keep: Some(Box::new(listener)),
                trail: Some(trail),
            });
        }
        #[cfg(not(feature = "postgres"))]
        return Err("DATABASE_URL names PostgreSQL: run with `--features postgres`".into());
    }
    Err(format!("DATABASE_URL must start with sqlite: or postgres:, not {url:?}").into())
}
