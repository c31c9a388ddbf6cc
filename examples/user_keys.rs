//! Per-user keys for an ERP module: header `X-API-Key`, one key per user, revocable per
//! user, and every request auditable per key.
//!
//! ```sh
//! cargo run --example user_keys
//! # paste the printed exports, then:
//! curl -i localhost:3003/orders -H "X-API-Key: $ALICE_KEY"          # alice's orders
//! curl -i localhost:3003/orders -H "X-API-Key: $BOB_KEY"            # bob's orders
//! curl -i -X DELETE localhost:3003/users/bob/keys -H "X-API-Key: $ADMIN_KEY"
//! curl -i localhost:3003/orders -H "X-API-Key: $BOB_KEY"            # 401: revoked
//! curl -s localhost:3003/audit -H "X-API-Key: $ADMIN_KEY"           # the trail, per key
//! ```
//!
//! `KEYGATE_ADDR` sets the address (default `127.0.0.1:3003`).

use std::collections::VecDeque;
use std::error::Error;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::routing::{delete, get};
use axum::{Json, Router};
use keygate::{
    AuditEvent, AuditSink, Identity, KeyManager, KeySource, Keygate, MemoryStore, NewKey, Outcome,
    Scopes,
};
use serde_json::{Value, json};

const ADMIN: &str = "erp:admin";

/// Keeps the last 1,000 audit events in memory; a real module writes them to its database.
#[derive(Clone, Default)]
struct Trail(Arc<Mutex<VecDeque<AuditEvent>>>);

impl AuditSink for Trail {
    fn record(&self, event: &AuditEvent) {
        let mut events = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if events.len() == 1_000 {
            events.pop_front();
        }
        events.push_back(event.clone());
    }
}

#[derive(Clone)]
struct AppState {
    manager: KeyManager,
    trail: Trail,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let address = std::env::var("KEYGATE_ADDR").unwrap_or_else(|_| "127.0.0.1:3003".into());
    let keygate = Keygate::new(MemoryStore::new());
    let manager = keygate.manager();
    let admin = manager
        .create(NewKey::new("admin", "erp admin").with_scopes(Scopes::new([ADMIN])?))
        .await?;
    let alice = manager.create(NewKey::new("alice", "alice's key")).await?;
    let bob = manager.create(NewKey::new("bob", "bob's key")).await?;

    let trail = Trail::default();
    let auth = keygate
        .clone()
        .with_sources([KeySource::header("x-api-key")?])?
        .with_audit_sink(trail.clone(), 4096)
        .layer();
    let admin_only = auth.require_scope(ADMIN)?;
    let app = Router::new()
        .route(
            "/users/{user}/keys",
            delete(revoke_user).route_layer(admin_only.clone()),
        )
        .route("/audit", get(audit).route_layer(admin_only))
        .route("/orders", get(orders))
        .layer(auth)
        .with_state(AppState { manager, trail });

    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("ERP module on http://{}", listener.local_addr()?);
    println!("export ADMIN_KEY={}", admin.key.expose_secret());
    println!("export ALICE_KEY={}", alice.key.expose_secret());
    println!("export BOB_KEY={}", bob.key.expose_secret());
    axum::serve(listener, app).await?;
    Ok(())
}

async fn orders(identity: Identity) -> Json<Value> {
    Json(json!({ "user": identity.user(), "orders": [format!("{}-0001", identity.user())] }))
}

/// Revokes every key of one user, as an admin does when someone leaves.
async fn revoke_user(State(state): State<AppState>, Path(user): Path<String>) -> Json<Value> {
    let mut revoked = Vec::new();
    for record in state.manager.list_by_user(&user).await.unwrap_or_default() {
        if record.revoked_at.is_none() && state.manager.revoke(&record.id()).await.is_ok() {
            revoked.push(record.id().to_string());
        }
    }
    Json(json!({ "user": user, "revoked": revoked }))
}

async fn audit(State(state): State<AppState>) -> Json<Value> {
    let events = state
        .trail
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let rows: Vec<Value> = events
        .iter()
        .map(|event| {
            let outcome = match &event.outcome {
                Outcome::Denied(reason) => format!("denied: {reason}"),
                _ => "allowed".to_owned(),
            };
            json!({
                "key_id": event.key_id.map(|id| id.to_string()),
                "user": event.user(),
                "outcome": outcome,
                "method": event.method.as_str(),
                "path": event.path(),
            })
        })
        .collect();
    Json(json!({ "events": rows }))
}
