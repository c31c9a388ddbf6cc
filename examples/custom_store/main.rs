//! keygate over an application's own tables: keys of the rows of its `users` table.
//!
//! ```sh
//! cargo run --example custom_store --features sqlite
//! ```
//!
//! It creates the schema in memory, adds a user, issues them a key with keygate's manager,
//! and checks it through the layer, as a request would.

mod store;

use std::error::Error;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use keygate::sqlx::{self, SqlitePool};
use keygate::{Identity, KeySource, Keygate, NewKey};
use tower::ServiceExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let pool = SqlitePool::connect("sqlite::memory:").await?;
    sqlx::raw_sql(include_str!("schema.sql"))
        .execute(&pool)
        .await?;
    let user: i64 = sqlx::query_scalar("INSERT INTO users (email) VALUES ($1) RETURNING id")
        .bind("ada@example.com")
        .fetch_one(&pool)
        .await?;

    let keygate =
        Keygate::new(store::AppKeys(pool)).with_sources([KeySource::header("x-api-key")?])?;
    let created = keygate
        .manager()
        .create(NewKey::new(user.to_string(), "laptop"))
        .await?;
    println!("user {user} got key {}", created.record.preview);

    let app: Router = Router::new()
        .route(
            "/me",
            get(|me: Identity| async move { format!("user {}", me.user()) }),
        )
        .layer(keygate.layer());
    let request = http::Request::get("/me")
        .header("x-api-key", created.key.expose_secret())
        .body(Body::empty())?;
    let response = app.oneshot(request).await?;
    println!("GET /me with it: {}", response.status());
    Ok(())
}
