//! The quickstart: an axum app behind `ApiKeyLayer`, with one admin key issued at start.
//!
//! ```sh
//! cargo run --example quickstart
//! # it prints `export API_KEY=...`; paste that line into another shell, then:
//! curl -i localhost:3000/health
//! curl -i localhost:3000/me -H "Authorization: Bearer $API_KEY"
//! curl -i localhost:3000/me -H "X-API-Key: $API_KEY"
//! curl -i localhost:3000/me                                   # 401, bare challenge
//! ```
//!
//! Environment: `KEYGATE_ADDR` (default `127.0.0.1:3000`). Keys live in memory and are
//! gone when the process stops.

use std::error::Error;

use axum::routing::get;
use axum::{Json, Router};
use keygate::{
    ApiKeyLayer, Identity, KeyFormat, KeyGenerator, KeyHasher, KeySource, MemoryStore, Scopes,
    StoredKey,
};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let address = std::env::var("KEYGATE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());

    let format = KeyFormat::with_prefix("kg_live")?;
    let hasher = KeyHasher::sha256();
    let store = MemoryStore::new();

    // Issue the admin key. Its plaintext is printed once and never kept: the store holds
    // only its hash.
    let admin = KeyGenerator::new(format.clone()).generate()?;
    let identity = Identity::new(admin.id(), "admin")
        .with_name("quickstart admin")
        .with_scopes(Scopes::new(["keys:write"])?);
    store.insert(StoredKey::new(hasher.hash(&admin), identity))?;

    let auth = ApiKeyLayer::new(store)
        .with_format(format)
        .with_hasher(hasher)
        .with_sources([KeySource::bearer(), KeySource::header("x-api-key")?])?;

    let app = Router::new()
        .route("/me", get(me))
        .layer(auth)
        .merge(Router::new().route("/health", get(health)));

    let listener = tokio::net::TcpListener::bind(&address).await?;
    let base = format!("http://{}", listener.local_addr()?);
    println!("keygate quickstart listening on {base}");
    println!();
    println!("export API_KEY={}", admin.expose_secret());
    drop(admin);
    println!();
    println!("curl -i {base}/health");
    println!("curl -i {base}/me -H \"Authorization: Bearer $API_KEY\"");
    println!("curl -i {base}/me -H \"X-API-Key: $API_KEY\"");
    println!("curl -i {base}/me                                    # 401: no key");

    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // If the signal handler cannot be installed, run until killed instead.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await?;
    Ok(())
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn me(identity: Identity) -> Json<Value> {
    Json(json!({
        "key_id": identity.key_id().as_str(),
        "user": identity.user(),
        "space": identity.space(),
        "scopes": identity.scopes().iter().collect::<Vec<_>>(),
        "name": identity.name(),
    }))
}
