//! Space tokens, undb-style: header `x-undb-api-token`, one token per space, shown once at
//! creation; a token never opens another space.
//!
//! ```sh
//! cargo run --example space_tokens
//! # paste the printed exports, then:
//! curl -i localhost:3002/spaces/alpha/records -H "x-undb-api-token: $ALPHA_TOKEN"   # 200
//! curl -i localhost:3002/spaces/beta/records  -H "x-undb-api-token: $ALPHA_TOKEN"   # 403
//! curl -i -X POST localhost:3002/spaces/beta/tokens -H "x-undb-api-token: $OWNER_KEY" # a beta token, once
//! ```
//!
//! `KEYGATE_ADDR` sets the address (default `127.0.0.1:3002`).

use std::error::Error;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keygate::{
    Actor, Identity, KeyFormat, KeyManager, KeySource, Keygate, MemoryStore, NewKey, Scopes,
    SpaceResolver,
};
use serde::Serialize;
use serde_json::{Value, json};

const TOKENS_WRITE: &str = "tokens:write";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let address = std::env::var("KEYGATE_ADDR").unwrap_or_else(|_| "127.0.0.1:3002".into());
    let keygate = Keygate::new(MemoryStore::new()).with_format(KeyFormat::with_prefix("undb")?);
    let manager = keygate.manager();
    let owner = manager
        .create(NewKey::new("owner", "owner key").with_scopes(Scopes::new([TOKENS_WRITE])?))
        .await?;
    let alpha = manager
        .create(NewKey::new("owner", "alpha token").with_space("alpha"))
        .await?;

    let auth = keygate
        .clone()
        .with_sources([KeySource::header("x-undb-api-token")?])?
        .with_space_resolver(SpaceResolver::path_prefix("/spaces/")?)
        .layer();
    let app = Router::new()
        .route("/spaces/{space}/records", get(records))
        .route(
            "/spaces/{space}/tokens",
            post(create_token).route_layer(auth.require_scope(TOKENS_WRITE)?),
        )
        .layer(auth)
        .with_state(manager);

    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("space API on http://{}", listener.local_addr()?);
    println!("export OWNER_KEY={}", owner.key.expose_secret());
    println!("export ALPHA_TOKEN={}", alpha.key.expose_secret());
    axum::serve(listener, app).await?;
    Ok(())
}

/// The layer already refused tokens of other spaces; a token reaching here is this
/// space's, or the owner's user-wide key.
async fn records(identity: Identity, Path(space): Path<String>) -> Json<Value> {
    Json(json!({ "space": space, "records": [1, 2, 3], "token": identity.name() }))
}

/// A token shown once: serialized straight from the key, never cached.
#[derive(Serialize)]
struct Shown<'a> {
    token: &'a str,
    note: &'static str,
}

async fn create_token(
    State(manager): State<KeyManager>,
    identity: Identity,
    Path(space): Path<String>,
) -> Response {
    let new = NewKey::new("", format!("{space} token")).with_space(space);
    match manager.create_as(&Actor::key(&identity), new).await {
        Ok(created) => {
            let body = Shown {
                token: created.key.expose_secret(),
                note: "shown once: store it now",
            };
            (
                StatusCode::CREATED,
                [(CACHE_CONTROL, "no-store")],
                Json(body),
            )
                .into_response()
        }
        Err(error) => (
            StatusCode::FORBIDDEN,
            Json(json!({ "error": error.to_string() })),
        )
            .into_response(),
    }
}
