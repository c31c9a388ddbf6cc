//! Per-user keys for an ERP module: header `X-API-Key`, one key per user, revocable per
//! user, and every request auditable per key.
//!
//! An ERP admin's key manages keys under `/keys` (keygate's management router) as an app
//! admin: it revokes every key of a user at once, and any one key by id.
//!
//! ```sh
//! cargo run --example user_keys
//! # paste the printed exports, then:
//! curl -i localhost:3003/orders -H "X-API-Key: $ALICE_KEY"          # alice's orders
//! curl -i localhost:3003/orders -H "X-API-Key: $BOB_KEY"            # bob's orders
//! curl -i -X POST localhost:3003/keys/users/bob/revoke -H "X-API-Key: $ADMIN_KEY"   # {"revoked":1}
//! curl -i localhost:3003/orders -H "X-API-Key: $BOB_KEY"            # 401: revoked
//! curl -i localhost:3003/keys -H "X-API-Key: $ALICE_KEY"            # 403: admins only
//! curl -s localhost:3003/audit -H "X-API-Key: $ADMIN_KEY"           # the trail, per key
//! ```
//!
//! `KEYGATE_ADDR` sets the address (default `127.0.0.1:3003`).

use std::collections::VecDeque;
use std::error::Error;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use keygate::{
    Actor, AuditEvent, AuditSink, Authenticated, Identity, KeySource, Keygate, MemoryStore, NewKey,
    Outcome, Scopes, manage_from_fn,
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
        .with_sources([KeySource::header("x-api-key")?])?
        .with_audit_sink(trail.clone(), 4096)
        .layer();
    let admin_only = auth.require_scope(ADMIN)?;
    // `KeyWithScope` would act only as the key's own user; an ERP admin's key acts as an
    // app admin, to revoke any user's keys. The guard in front answers other keys with 403
    // before this runs.
    let admins = manage_from_fn(|parts| {
        let identity = parts.extensions.get::<Authenticated>()?.identity();
        identity
            .scopes()
            .contains(ADMIN)
            .then(|| Actor::key(identity).app_admin())
    });
    let app = Router::new()
        .route("/audit", get(audit).route_layer(admin_only.clone()))
        .route("/orders", get(orders))
        .with_state(trail)
        .nest("/keys", manager.management(admins).route_layer(admin_only))
        .layer(auth);

    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("ERP module on http://{}", listener.local_addr()?);
    println!("export ADMIN_KEY={}", admin.key.expose_secret());
    println!("export ALICE_KEY={}", alice.key.expose_secret());
    println!("export BOB_KEY={}", bob.key.expose_secret());
    // The plaintexts are not kept while serving.
    drop((admin, alice, bob));
    axum::serve(listener, app).await?;
    Ok(())
}

async fn orders(identity: Identity) -> Json<Value> {
    Json(json!({ "user": identity.user(), "orders": [format!("{}-0001", identity.user())] }))
}

async fn audit(State(trail): State<Trail>) -> Json<Value> {
    let events = trail
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
