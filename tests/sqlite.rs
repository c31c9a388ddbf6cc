//! SqliteStore on a file: keys and their usage survive a restart.

mod common;

use axum::Router;
use axum::routing::get;
use common::send;
use http::StatusCode;
use keygate::{KeySource, Keygate, NewKey, SqliteStore};

fn app(keygate: &Keygate<SqliteStore>) -> (Router, keygate::ApiKeyLayer) {
    let auth = keygate
        .clone()
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap()
        .layer();
    let app = Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(auth.clone());
    (app, auth)
}

#[tokio::test]
async fn keys_and_usage_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());

    let keygate_first = Keygate::new(SqliteStore::connect(&url).await.unwrap());
    let first = keygate_first.manager();
    let created = first.create(NewKey::new("alice", "k")).await.unwrap();
    let header = [("x-api-key", created.key.expose_secret().as_bytes())];
    let (app_one, auth_one) = app(&keygate_first);
    assert_eq!(send(app_one, &header).await.status, StatusCode::OK);
    auth_one.flush_usage().await.unwrap();
    drop((first, auth_one, keygate_first));

    let keygate_second = Keygate::new(SqliteStore::connect(&url).await.unwrap());
    let second = keygate_second.manager();
    let (app_two, _) = app(&keygate_second);
    assert_eq!(send(app_two, &header).await.status, StatusCode::OK);
    let record = second.get(&created.record.id()).await.unwrap();
    assert_eq!(record.use_count, 1);
}

#[tokio::test]
async fn reopening_does_not_migrate_twice() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    SqliteStore::connect(&url).await.unwrap();
    let again = SqliteStore::connect(&url).await.unwrap();
    let versions: Vec<i64> = keygate::sqlx::query_scalar("SELECT version FROM keygate_migrations")
        .fetch_all(again.pool())
        .await
        .unwrap();
    assert_eq!(versions, [1]);
}
