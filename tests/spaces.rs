//! Space policy: without a resolver space keys are refused; strict resolvers fail closed;
//! nesting is handled by resolving relative to the layer.

mod common;

use axum::Router;
use axum::routing::get;
use common::send_to;
use http::StatusCode;
use keygate::{Identity, KeyManager, KeySource, Keygate, MemoryStore, NewKey, SpaceResolver};

async fn space_key(manager: &KeyManager, space: &str) -> String {
    let created = manager
        .create(NewKey::new("alice", "k").with_space(space))
        .await
        .unwrap();
    created.key.expose_secret().to_owned()
}

fn routes() -> Router {
    Router::new()
        .route(
            "/me",
            get(|identity: Identity| async move { identity.user().to_owned() }),
        )
        .route("/spaces/{space}/items", get(|| async { "items" }))
}

fn app(keygate: &Keygate<MemoryStore>, resolver: Option<SpaceResolver>) -> Router {
    let mut keygate = keygate
        .clone()
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap();
    if let Some(resolver) = resolver {
        keygate = keygate.with_space_resolver(resolver);
    }
    routes().layer(keygate.layer())
}

async fn status(app: Router, path: &str, key: &str) -> StatusCode {
    send_to(app, path, &[("x-api-key", key.as_bytes())])
        .await
        .status
}

#[tokio::test]
async fn space_key_is_refused_when_the_layer_has_no_space_policy() {
    let keygate = Keygate::new(MemoryStore::new());
    let manager = keygate.manager();
    let key = space_key(&manager, "one").await;
    assert_eq!(
        status(app(&keygate, None), "/spaces/one/items", &key).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn user_wide_key_needs_no_space_policy() {
    let keygate = Keygate::new(MemoryStore::new());
    let manager = keygate.manager();
    let key = manager.create(NewKey::new("alice", "k")).await.unwrap();
    let key = key.key.expose_secret();
    assert_eq!(
        status(app(&keygate, None), "/me", key).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn in_handlers_policy_lets_space_keys_through_to_the_handlers() {
    let keygate = Keygate::new(MemoryStore::new());
    let manager = keygate.manager();
    let key = space_key(&manager, "one").await;
    let app = app(&keygate, Some(SpaceResolver::in_handlers()));
    assert_eq!(status(app, "/spaces/two/items", &key).await, StatusCode::OK);
}

#[tokio::test]
async fn lenient_resolver_lets_space_keys_reach_routes_without_a_space() {
    let keygate = Keygate::new(MemoryStore::new());
    let manager = keygate.manager();
    let key = space_key(&manager, "one").await;
    let resolver = SpaceResolver::path_prefix("/spaces/").unwrap();
    assert_eq!(
        status(app(&keygate, Some(resolver)), "/me", &key).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn strict_resolver_refuses_space_keys_on_routes_without_a_space() {
    let keygate = Keygate::new(MemoryStore::new());
    let manager = keygate.manager();
    let key = space_key(&manager, "one").await;
    let strict = || SpaceResolver::path_prefix("/spaces/").unwrap().strict();
    assert_eq!(
        status(app(&keygate, Some(strict())), "/me", &key).await,
        StatusCode::FORBIDDEN
    );
    let own = status(app(&keygate, Some(strict())), "/spaces/one/items", &key).await;
    assert_eq!(own, StatusCode::OK);
}

#[tokio::test]
async fn resolver_inside_a_nest_sees_the_path_relative_to_the_nest() {
    let keygate = Keygate::new(MemoryStore::new());
    let manager = keygate.manager();
    let key = space_key(&manager, "one").await;
    let inner = app(
        &keygate,
        Some(SpaceResolver::path_prefix("/spaces/").unwrap()),
    );
    let nested = Router::new().nest("/api", inner);
    assert_eq!(
        status(nested.clone(), "/api/spaces/two/items", &key).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(nested, "/api/spaces/one/items", &key).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn strict_resolver_with_a_mismatched_prefix_fails_closed() {
    let keygate = Keygate::new(MemoryStore::new());
    let manager = keygate.manager();
    let key = space_key(&manager, "one").await;
    // Written as if the layer saw the full path, but it sits inside the nest.
    let wrong = SpaceResolver::path_prefix("/api/spaces/").unwrap().strict();
    let nested = Router::new().nest("/api", app(&keygate, Some(wrong)));
    assert_eq!(
        status(nested, "/api/spaces/two/items", &key).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn scope_guard_uses_the_configuration_of_the_layer_in_front_of_it() {
    let keygate = Keygate::new(MemoryStore::new());
    let manager = keygate.manager();
    let key = manager.create(NewKey::new("alice", "k")).await.unwrap();
    let configured = keygate
        .clone()
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap();
    let guard = configured.require_scope("admin").unwrap();
    let auth = configured.with_realm("later").unwrap().layer();
    let app = Router::new()
        .route("/admin", get(|| async { "admin" }).route_layer(guard))
        .layer(auth);
    let reply = send_to(
        app,
        "/admin",
        &[("x-api-key", key.key.expose_secret().as_bytes())],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply
            .header("www-authenticate")
            .unwrap()
            .contains(r#"realm="later""#)
    );
}
