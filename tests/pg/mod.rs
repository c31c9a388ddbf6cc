//! PostgreSQL fixtures: every store lives in a schema of its own, so tests run in
//! parallel on one database without seeing each other.
//!
//! The server is `KEYGATE_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`).

#![allow(dead_code)] // each test binary uses a different subset

pub mod proxy;

use std::str::FromStr;

use keygate::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use keygate::{KeyGenerator, PgStore};

pub fn url() -> String {
    std::env::var("KEYGATE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A name no other test uses: `kg_t_` and 16 random lowercase characters.
pub fn unique_name() -> String {
    let id = KeyGenerator::default().generate().unwrap().id();
    format!("kg_t_{}", id.as_str().to_lowercase())
}

/// A migrated store in a fresh schema, notifying on a channel of its own.
pub async fn fresh_store() -> PgStore {
    let schema = unique_name();
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url())
        .await
        .expect("PostgreSQL at KEYGATE_TEST_PG (see .ci/run)");
    keygate::sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    store_in(&schema).await
}

/// Another store (its own pool) on the same schema and channel: a second instance.
pub async fn store_in(schema: &str) -> PgStore {
    let options = PgConnectOptions::from_str(&url())
        .unwrap()
        .options([("search_path", schema)])
        .application_name(schema);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap();
    let store = PgStore::from_pool(pool).with_channel(schema).unwrap();
    store.migrate().await.unwrap();
    store
}

/// The schema (and channel) of a store made by this module.
pub fn schema_of(store: &PgStore) -> String {
    store.channel().to_owned()
}

/// Cuts every connection of a store made by this module, as a server restart would.
pub async fn cut_connections(store: &PgStore) -> u64 {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url())
        .await
        .unwrap();
    let cut: Vec<bool> = keygate::sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(schema_of(store))
    .fetch_all(&admin)
    .await
    .unwrap();
    admin.close().await;
    cut.len() as u64
}

/// The server's address, from `KEYGATE_TEST_PG`.
pub fn server_address() -> std::net::SocketAddr {
    let options = PgConnectOptions::from_str(&url()).unwrap();
    let host = match options.get_host() {
        "localhost" => "127.0.0.1",
        host => host,
    };
    format!("{host}:{}", options.get_port()).parse().unwrap()
}

/// A store on `schema` whose every connection goes through `proxy`, with a pool of at
/// most `max_connections`.
pub async fn store_via(schema: &str, proxy: std::net::SocketAddr, max_connections: u32) -> PgStore {
    let options = PgConnectOptions::from_str(&url())
        .unwrap()
        .host(&proxy.ip().to_string())
        .port(proxy.port())
        .options([("search_path", schema)])
        .application_name(schema);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(2))
        .connect_with(options)
        .await
        .unwrap();
    let store = PgStore::from_pool(pool).with_channel(schema).unwrap();
    store.migrate().await.unwrap();
    store
}
