//! SqliteStore on a file: keys and their usage survive a restart.

mod common;

use axum::Router;
use axum::routing::get;
use common::send;
use http::StatusCode;
use keygate::{KeySource, KeyStore, KeyStoreWrite, Keygate, NewKey, SqliteStore};

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
    assert_eq!(versions, [1, 2]);
}

#[tokio::test]
async fn a_table_from_the_first_migration_gains_edits_and_keeps_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    // A database as keygate's first migration left it, with one key in it.
    let old = keygate::sqlx::SqlitePool::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    keygate::sqlx::raw_sql(include_str!(
        "../src/store/sql/migrations/sqlite_0001_keys.sql"
    ))
    .execute(&old)
    .await
    .unwrap();
    keygate::sqlx::raw_sql(
        "CREATE TABLE keygate_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);
         INSERT INTO keygate_migrations VALUES (1, 0);
         INSERT INTO keygate_keys (id, hash, user_id, name, scopes, preview, created_at)
         VALUES ('AbCdEfGh12345678', x'0101010101010101010101010101010101010101010101010101010101010101',
                 'alice', 'old key', '', 'kg_...0001', 1800000000000000);",
    )
    .execute(&old)
    .await
    .unwrap();
    old.close().await;

    let store = SqliteStore::connect(&url).await.unwrap(); // applies migration 2
    let id = keygate::KeyId::parse("AbCdEfGh12345678").unwrap();
    let found = store.find(&id).await.unwrap().expect("the old key");
    assert!(!found.disabled);
    assert_eq!((found.rate_limit, found.quota), (None, None));
    store
        .edit(&id, &keygate::KeyEdit::new().disable())
        .await
        .unwrap();
    assert!(store.find(&id).await.unwrap().unwrap().disabled);
}
