//! The quickstart: the whole system. A demo API behind `ApiKeyLayer`, keygate's
//! management API at `/keys` for keys holding `keys:write`, the settings page at
//! `/settings/api-keys` behind a demo login, and one admin key issued at start. Keys
//! persist in an embedded SQLite file.
//!
//! ```sh
//! cargo run --example quickstart
//! # open the printed URL and sign in with the printed password, or paste the printed
//! # `export API_KEY=...` into another shell, then:
//! curl -i localhost:3000/health
//! curl -i localhost:3000/me -H "Authorization: Bearer $API_KEY"
//! curl -i localhost:3000/me -H "X-API-Key: $API_KEY"
//! curl -i localhost:3000/keys -H "X-API-Key: $API_KEY" \
//!      -H 'content-type: application/json' -d '{"name":"space one","space":"one"}'
//! ```
//!
//! Environment:
//! - `KEYGATE_ADDR`: where to listen (default `127.0.0.1:3000`);
//! - `DATABASE_URL`: where keys live. Unset: the SQLite file `keygate-quickstart.db` in
//!   the working directory (restart: keys remain). `sqlite://other.db`, `memory:` (gone
//!   when the process stops), or `postgres://…` (with `--features postgres`): several
//!   instances share keys, behind a cache, and a revocation on one reaches the others in
//!   milliseconds;
//! - `QUICKSTART_PASSWORD`: the demo login's password (default: drawn at start, printed);
//! - `RUST_LOG`: the audit trail on stderr (default `keygate=debug`).

mod app;

use std::error::Error;
use std::sync::Arc;

use keygate::{
    KeyFormat, KeyManager, KeyStoreWrite, Keygate, ManageError, MemoryStore, NewKey, Scopes,
};
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
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
    let Opened {
        store,
        keep: _keep,
        trail,
    } = open_store(&database).await?;
    let mut keygate = Keygate::new(store).with_format(KeyFormat::with_prefix("kg_live")?);
    if let Some(trail) = &trail {
        // Every decision goes to stderr, as without a database, and to the SQL trail.
        keygate = keygate.with_audit_sink((keygate::TracingSink, trail.clone()), 8_192);
    }

    // The admin key: user-wide and allowed to manage keys. Its plaintext is printed once
    // and never kept; the store holds only its hash. The one of a previous run is
    // deleted, since its plaintext is gone with that run's terminal.
    let admin = fresh_admin_key(&keygate.manager()).await?;

    let password = std::env::var("QUICKSTART_PASSWORD")
        .ok()
        .filter(|password| !password.is_empty())
        .unwrap_or_else(app::draw_password);
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let local = listener.local_addr()?;
    let base = format!("http://{local}");
    let options = app::Options {
        trail: trail.map(app::as_trail),
        password: Some(password.clone()),
        hosts: own_hosts(local),
    };
    let (router, keygate) = app::build(&keygate, options)?;
    println!(
        "keygate quickstart listening on {base} (keys in {})",
        database.split('@').next_back().unwrap_or(&database)
    );
    println!();
    println!("Settings page: {base}{}", app::SETTINGS);
    let people: Vec<_> = app::PEOPLE.iter().map(|person| person.name).collect();
    println!(
        "  sign in as {} with password {password}",
        people.join(" or ")
    );
    println!("  then try a key it shows you: curl -i {base}/me -H \"Authorization: Bearer <key>\"");
    println!(
        "OpenAPI document of /keys: curl -s {base}/keys/openapi.json -H \"X-API-Key: $API_KEY\""
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

/// The `Host` values a server on the loopback interface answers: its own names. A server
/// on another address answers any (put it behind a proxy that checks).
fn own_hosts(local: std::net::SocketAddr) -> Option<Vec<String>> {
    let port = local.port();
    local.ip().is_loopback().then(|| {
        vec![
            local.to_string(),
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ]
    })
}

/// Where keys live when `DATABASE_URL` is unset: a file beside the working directory.
const DEFAULT_DATABASE: &str = "sqlite://keygate-quickstart.db";

/// The name of the admin key the quickstart issues at each start.
const ADMIN_KEY_NAME: &str = "quickstart admin";

/// Deletes the admin keys of earlier runs and issues a new one.
async fn fresh_admin_key(manager: &KeyManager) -> Result<keygate::CreatedKey, ManageError> {
    for record in manager.list_by_user("admin").await? {
        if record.identity.name() == ADMIN_KEY_NAME {
            manager.delete(&record.id()).await?;
        }
    }
    let scopes = Scopes::new([app::KEYS_WRITE]).map_err(|_| ManageError::Invalid("scope"))?;
    manager
        .create(NewKey::new("admin", ADMIN_KEY_NAME).with_scopes(scopes))
        .await
}

/// How long the quickstart keeps its audit trail: 30 days, and at most a million rows, so
/// that a flood of forged keys cannot fill the disk.
const RETENTION: keygate::Retention = keygate::Retention {
    max_age: Some(std::time::Duration::from_secs(30 * 86_400)),
    max_rows: Some(1_000_000),
};

/// The SQL audit trail beside the keys, with a database; nothing in memory.
type Trail = keygate::SqlAuditSink;

/// The store, what keeps it serving, and the audit trail beside it.
struct Opened {
    store: Arc<dyn KeyStoreWrite>,
    keep: Keep,
    trail: Option<Trail>,
}

/// The store `DATABASE_URL` names, behind a cache when it is a database, with an audit
/// trail (30 days) in the same database.
async fn open_store(url: &str) -> Result<Opened, Box<dyn Error>> {
    if url == "memory:" {
        return Ok(Opened {
            store: Arc::new(MemoryStore::new()),
            keep: None,
            trail: None,
        });
    }
    if url.starts_with("sqlite:") {
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
    Err(
        format!("DATABASE_URL must start with sqlite: or postgres:, or be memory:, not {url:?}")
            .into(),
    )
}
