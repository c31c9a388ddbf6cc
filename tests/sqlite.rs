//! SqliteStore on a file: keys and their usage survive a restart.

mod common;

use axum::Router;
use axum::routing::get;
use common::send;
use http::StatusCode;
use keygate::{KeyManager, KeySource, NewKey, SqliteStore};

fn app(manager: &KeyManager) -> (Router, keygate::ApiKeyLayer) {
    let auth = manager
        .layer()
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap();
    let app = Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(auth.clone());
    (app, auth)
}

#[tokio::test]
async fn keys_and_usage_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());

    let first = KeyManager::new(SqliteStore::connect(&url).await.unwrap());
    let created = first.create(NewKey::new("alice", "k")).await.unwrap();
    let header = [("x-api-key", created.key.expose_secret().as_bytes())];
    let (app_one, auth_one) = app(&first);
    assert_eq!(send(app_one, &header).await.status, StatusCode::OK);
    auth_one.flush_usage().await.unwrap();
    drop((first, auth_one));

    let second = KeyManager::new(SqliteStore::connect(&url).await.unwrap());
    let (app_two, _) = app(&second);
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
