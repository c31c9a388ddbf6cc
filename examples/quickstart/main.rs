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
//! Environment: `KEYGATE_ADDR` (default `127.0.0.1:3000`); `RUST_LOG` for the audit
//! trail (default `keygate=debug`). Keys live in memory and are gone when the process
//! stops.

mod app;

use std::error::Error;

use keygate::{KeyFormat, KeyManager, MemoryStore, NewKey, Scopes};
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

    let manager =
        KeyManager::new(MemoryStore::new()).with_format(KeyFormat::with_prefix("kg_live")?);

    // The admin key: user-wide and allowed to manage keys. Its plaintext is printed once
    // and never kept; the store holds only its hash.
    let admin = manager
        .create(
            NewKey::new("admin", "quickstart admin").with_scopes(Scopes::new([app::KEYS_WRITE])?),
        )
        .await?;

    let (router, auth) = app::router(manager)?;
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("keygate quickstart listening on {base}");
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
    auth.flush_usage().await?;
    Ok(())
}
