//! The server side of the end-to-end load run (`benches/e2e.sh`): one JSON route, served
//! with the quickstart's key layer (`auth`) or with no layer at all (`bare`).
//!
//! ```sh
//! cargo run --release --example load_target -- auth   # prints `export API_KEY=...`
//! cargo run --release --example load_target -- bare
//! ```
//!
//! `KEYGATE_ADDR` sets the address (default `127.0.0.1:3900`).

use std::error::Error;

use axum::routing::get;
use axum::{Json, Router};
use keygate::{Identity, KeyGenerator, KeyHasher, KeySource, Keygate, MemoryStore, StoredKey};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "auth".to_owned());
    let address = std::env::var("KEYGATE_ADDR").unwrap_or_else(|_| "127.0.0.1:3900".to_owned());
    let app = Router::new().route("/items", get(items));
    let app = match mode.as_str() {
        "bare" => app,
        "auth" => {
            let store = MemoryStore::new();
            let key = KeyGenerator::default().generate()?;
            let identity = Identity::new(key.id(), "load");
            store.insert_key(StoredKey::new(KeyHasher::sha256().hash(&key), identity))?;
            println!("export API_KEY={}", key.expose_secret());
            // The quickstart's configuration: Bearer and X-API-Key, audit to tracing.
            app.layer(
                Keygate::read_only(store)
                    .with_sources([KeySource::bearer(), KeySource::header("x-api-key")?])?
                    .layer(),
            )
        }
        other => return Err(format!("mode must be `auth` or `bare`, not {other:?}").into()),
    };
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!("serving {mode} on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn items(identity: Option<Identity>) -> Json<Value> {
    Json(json!({
        "items": ["first", "second"],
        "user": identity.as_ref().map(Identity::user),
    }))
}
