//! The store of `examples/custom_store`, over an application's own schema with integer user
//! ids and a foreign key, passes keygate's conformance suite.

#[path = "../examples/custom_store/store.rs"]
mod store;

use keygate::sqlx::{self, SqlitePool};
use keygate::testkit::Fixture;
use store::AppKeys;

/// A fresh in-memory database with the application's schema; users are rows of its
/// `users` table, so a key can only be made for one that exists.
struct AppDatabase;

impl Fixture for AppDatabase {
    type Store = AppKeys;

    async fn store(&self) -> AppKeys {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        sqlx::raw_sql(include_str!("../examples/custom_store/schema.sql"))
            .execute(&pool)
            .await
            .unwrap();
        AppKeys(pool)
    }

    async fn user(&self, store: &AppKeys) -> String {
        let id: i64 =
            sqlx::query_scalar("INSERT INTO users (email) VALUES ('a@example.com') RETURNING id")
                .fetch_one(&store.0)
                .await
                .unwrap();
        id.to_string()
    }
}

keygate::store_conformance!(fixture = AppDatabase);

#[test]
fn a_key_for_a_user_the_application_does_not_have_is_refused() {
    keygate::testkit::run(async {
        let store = AppDatabase.store().await;
        let manager = keygate::Keygate::new(store).manager();
        let result = manager.create(keygate::NewKey::new("999", "k")).await;
        assert!(
            result.is_err(),
            "the foreign key must refuse an unknown user"
        );
    });
}
