//! Space tokens, undb-style: header `x-undb-api-token`, one token per space, shown once at
//! creation; a token never opens another space.
//!
//! Each space's tokens are managed under `/spaces/{space}/tokens` by keygate's management
//! router, for tokens of that space holding `tokens:write`.
//!
//! ```sh
//! cargo run --example space_tokens
//! # paste the printed exports, then:
//! curl -i localhost:3002/spaces/alpha/records -H "x-undb-api-token: $ALPHA_TOKEN"   # 200
//! curl -i localhost:3002/spaces/beta/records  -H "x-undb-api-token: $ALPHA_TOKEN"   # 403
//! curl -i -X POST localhost:3002/spaces/beta/tokens -H "x-undb-api-token: $BETA_ADMIN" \
//!      -H 'content-type: application/json' -d '{"name":"ci"}'   # 201: a beta token, once, in "key"
//! curl -i localhost:3002/spaces/beta/tokens -H "x-undb-api-token: $BETA_ADMIN"       # beta's tokens
//! curl -i -X POST localhost:3002/spaces/beta/tokens/$TOKEN_ID/regenerate -H "x-undb-api-token: $BETA_ADMIN"
//! curl -i -X DELETE localhost:3002/spaces/beta/tokens/$TOKEN_ID -H "x-undb-api-token: $BETA_ADMIN"  # 204
//! curl -i localhost:3002/spaces/alpha/tokens -H "x-undb-api-token: $BETA_ADMIN"      # 403: another space
//! ```
//!
//! `KEYGATE_ADDR` sets the address (default `127.0.0.1:3002`).

use std::error::Error;

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use keygate::{
    Identity, KeyFormat, KeySource, KeyWithScope, Keygate, MemoryStore, NewKey, Scopes,
    SpaceResolver,
};
use serde_json::{Value, json};

const TOKENS_WRITE: &str = "tokens:write";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let address = std::env::var("KEYGATE_ADDR").unwrap_or_else(|_| "127.0.0.1:3002".into());
    let keygate = Keygate::new(MemoryStore::new())
        .with_format(KeyFormat::with_prefix("undb")?)
        .with_sources([KeySource::header("x-undb-api-token")?])?
        .with_space_resolver(SpaceResolver::path_prefix("/spaces/")?);
    let manager = keygate.manager();
    // An unbound key holding `tokens:write` would make unbound tokens, which open every
    // space. So only tokens bound to a space hold it, and a bound token makes only tokens
    // bound to its own space, with no scope it lacks.
    let beta_admin = manager
        .create(
            NewKey::new("owner", "beta admin")
                .with_space("beta")
                .with_scopes(Scopes::new([TOKENS_WRITE])?),
        )
        .await?;
    let alpha = manager
        .create(NewKey::new("owner", "alpha token").with_space("alpha"))
        .await?;

    // The layer refuses `/spaces/{space}/...`, management included, to tokens of another
    // space before any handler runs.
    let app = Router::new()
        .route("/spaces/{space}/records", get(records))
        .nest(
            "/spaces/{space}/tokens",
            manager.management(KeyWithScope::new(TOKENS_WRITE)),
        )
        .layer(keygate.layer());

    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("space API on http://{}", listener.local_addr()?);
    println!("export BETA_ADMIN={}", beta_admin.key.expose_secret());
    println!("export ALPHA_TOKEN={}", alpha.key.expose_secret());
    // The plaintexts are not kept while serving.
    drop((beta_admin, alpha));
    axum::serve(listener, app).await?;
    Ok(())
}

/// The layer already refused tokens of other spaces: a token reaching here is this
/// space's.
async fn records(identity: Identity, Path(space): Path<String>) -> Json<Value> {
    Json(json!({ "space": space, "records": [1, 2, 3], "token": identity.name() }))
}
