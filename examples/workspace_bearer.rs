//! Workspace API keys, Xata-style: `Authorization: Bearer <key>`, named keys listed on an
//! account page, and "regenerate" that kills the old key at once.
//!
//! The account page's keys are keygate's management router, nested at `/account/keys` for
//! keys holding `keys:write`; what is this app's own is the workspace API and who belongs
//! to which workspace.
//!
//! ```sh
//! cargo run --example workspace_bearer
//! # paste the printed `export API_KEY=...`, then:
//! curl -i localhost:3001/workspaces/acme/tables -H "Authorization: Bearer $API_KEY"   # 200
//! curl -i localhost:3001/workspaces/other/tables -H "Authorization: Bearer $API_KEY"  # 404: not a member
//! curl -i localhost:3001/account/keys -H "Authorization: Bearer $API_KEY"             # {"keys": [names, previews], "next"}
//! curl -i -X POST localhost:3001/account/keys -H "Authorization: Bearer $API_KEY" \
//!      -H 'content-type: application/json' -d '{"name":"ci"}'                        # 201 {"key", "record": {"id", ...}}, once
//! curl -i -X POST localhost:3001/account/keys/$KEY_ID/regenerate -H "Authorization: Bearer $API_KEY"
//! #   201 with the new key; the old one is refused (401) from now on
//! curl -i -X DELETE localhost:3001/account/keys/$KEY_ID -H "Authorization: Bearer $API_KEY"  # 204: revoked
//! ```
//!
//! A key made by `POST` holds no scope unless asked (`"scopes": ["keys:write"]`): it reads
//! workspaces but manages no keys.
//!
//! `KEYGATE_ADDR` sets the address (default `127.0.0.1:3001`).

use std::error::Error;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use keygate::{Identity, KeyFormat, KeyWithScope, Keygate, MemoryStore, NewKey, Scopes};
use serde_json::{Value, json};

const KEYS_WRITE: &str = "keys:write";

/// Which user belongs to which workspace: the app's own data, not keygate's.
const MEMBERS: &[(&str, &str)] = &[("alice", "acme"), ("alice", "beta")];

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let address = std::env::var("KEYGATE_ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let keygate = Keygate::new(MemoryStore::new()).with_format(KeyFormat::with_prefix("xau")?);
    let manager = keygate.manager();
    let first = manager
        .create(NewKey::new("alice", "laptop").with_scopes(Scopes::new([KEYS_WRITE])?))
        .await?;

    // Bearer is the layer's default source.
    let app = Router::new()
        .route("/workspaces/{workspace}/tables", get(tables))
        .nest(
            "/account/keys",
            manager.management(KeyWithScope::new(KEYS_WRITE)),
        )
        .layer(keygate.layer());

    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("workspace API on http://{}", listener.local_addr()?);
    println!("export API_KEY={}", first.key.expose_secret());
    // The plaintext is not kept while serving.
    drop(first);
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
