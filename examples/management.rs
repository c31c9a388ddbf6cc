//! The management API nested in an app: keys holding `keys:write` manage keys under
//! `/api-keys` (list, create, get, edit, regenerate, revoke), through the same rules as
//! `KeyManager`'s `*_as` methods.
//!
//! ```sh
//! cargo run --example management --features router
//! # it prints `export API_KEY=...`; then:
//! curl -s localhost:3000/api-keys -H "X-API-Key: $API_KEY"
//! curl -s localhost:3000/api-keys -H "X-API-Key: $API_KEY" \
//!      -H 'content-type: application/json' -d '{"name":"ci"}'
//! ```

use std::error::Error;

use axum::Router;
use axum::routing::get;
use keygate::{
    Identity, KeySource, KeyWithScope, Keygate, MemoryStore, NewKey, Scopes, SpaceResolver,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let keygate = Keygate::new(MemoryStore::new())
        .with_sources([KeySource::bearer(), KeySource::header("x-api-key")?])?
        .with_space_resolver(SpaceResolver::path_prefix("/spaces/")?);
    let manager = keygate.manager();
    let admin = manager
        .create(NewKey::new("admin", "admin").with_scopes(Scopes::new(["keys:write"])?))
        .await?;
    let app = Router::new()
        .nest(
            "/api-keys",
            manager.management(KeyWithScope::new("keys:write")),
        )
        .route(
            "/me",
            get(|identity: Identity| async move { identity.user().to_owned() }),
        )
        .route("/spaces/{space}/items", get(|| async { "items" }))
        .layer(keygate.layer());
    let address = std::env::var("KEYGATE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!("export API_KEY={}", admin.key.expose_secret());
    drop(admin);
    axum::serve(listener, app).await?;
    Ok(())
}
