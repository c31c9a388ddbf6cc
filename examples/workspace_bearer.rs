//! Workspace API keys, Xata-style: `Authorization: Bearer <key>`, named keys listed on an
//! account page, and "regenerate" that kills the old key at once.
//!
//! ```sh
//! cargo run --example workspace_bearer
//! # paste the printed `export API_KEY=...`, then:
//! curl -i localhost:3001/workspaces/acme/tables -H "Authorization: Bearer $API_KEY"   # 200
//! curl -i localhost:3001/workspaces/other/tables -H "Authorization: Bearer $API_KEY"  # 404: not a member
//! curl -i localhost:3001/account/keys -H "Authorization: Bearer $API_KEY"             # names, previews
//! curl -i -X POST localhost:3001/account/keys -H "Authorization: Bearer $API_KEY" \
//!      -H 'content-type: application/json' -d '{"name":"ci"}'
//! curl -i -X POST localhost:3001/account/keys/$KEY_ID/regenerate -H "Authorization: Bearer $API_KEY"
//! ```
//!
//! `KEYGATE_ADDR` sets the address (default `127.0.0.1:3001`).

use std::error::Error;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keygate::{
    Actor, CreatedKey, Identity, KeyFormat, KeyId, KeyManager, Keygate, MemoryStore, NewKey,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Which user belongs to which workspace: the app's own data, not keygate's.
const MEMBERS: &[(&str, &str)] = &[("alice", "acme"), ("alice", "beta")];

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let address = std::env::var("KEYGATE_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let keygate = Keygate::new(MemoryStore::new()).with_format(KeyFormat::with_prefix("xau")?);
    let manager = keygate.manager();
    let first = manager.create(NewKey::new("alice", "laptop")).await?;

    // Bearer is the layer's default source.
    let app = Router::new()
        .route("/workspaces/{workspace}/tables", get(tables))
        .route("/account/keys", get(list_keys).post(create_key))
        .route("/account/keys/{id}/regenerate", post(regenerate_key))
        .layer(keygate.layer())
        .with_state(manager);

    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("workspace API on http://{}", listener.local_addr()?);
    println!("export API_KEY={}", first.key.expose_secret());
    axum::serve(listener, app).await?;
    Ok(())
}

async fn tables(identity: Identity, Path(workspace): Path<String>) -> (StatusCode, Json<Value>) {
    // A user-wide key acts as its user: membership is the app's check.
    if !MEMBERS.contains(&(identity.user(), workspace.as_str())) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such workspace" })),
        );
    }
    let body = json!({ "workspace": workspace, "tables": ["users", "invoices"] });
    (StatusCode::OK, Json(body))
}

async fn list_keys(State(manager): State<KeyManager>, identity: Identity) -> Json<Value> {
    let keys = manager
        .list_as(&Actor::key(&identity))
        .await
        .unwrap_or_default();
    let keys: Vec<Value> = keys
        .iter()
        .map(|record| {
            json!({
                "id": record.id().as_str(),
                "name": record.identity.name(),
                "preview": record.preview,
                "revoked": record.revoked_at.is_some(),
            })
        })
        .collect();
    Json(json!({ "keys": keys }))
}

#[derive(Deserialize)]
struct Create {
    name: String,
}

/// A key shown once: serialized straight from the key, never cached.
#[derive(Serialize)]
struct Shown<'a> {
    id: &'a str,
    key: &'a str,
}

fn shown(created: &CreatedKey) -> Response {
    let id = created.record.id();
    let body = Shown {
        id: id.as_str(),
        key: created.key.expose_secret(),
    };
    (
        StatusCode::CREATED,
        [(CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response()
}

async fn create_key(
    State(manager): State<KeyManager>,
    identity: Identity,
    Json(body): Json<Create>,
) -> Response {
    match manager
        .create_as(&Actor::key(&identity), NewKey::new("", body.name))
        .await
    {
        Ok(created) => shown(&created),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": error.to_string() })),
        )
            .into_response(),
    }
}

async fn regenerate_key(
    State(manager): State<KeyManager>,
    identity: Identity,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = KeyId::parse(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such key" })),
        )
            .into_response();
    };
    match manager
        .regenerate_as(&Actor::key(&identity), &id, None)
        .await
    {
        Ok(created) => shown(&created),
        Err(error) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": error.to_string() })),
        )
            .into_response(),
    }
}
