//! The layer's contract, driven through an axum Router: one behaviour per test.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use common::{FailingStore, Fixture, Reply, issue, send};
use http::StatusCode;
use keygate::{Identity, KeyGenerator, KeyHash, Keygate, ManualClock, Rejection, StoredKey};

const INVALID_CHALLENGE: &str = r#"Bearer realm="api", error="invalid_token""#;

fn bearer(key: &str) -> Vec<u8> {
    format!("Bearer {key}").into_bytes()
}

fn assert_invalid_token(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header("www-authenticate"), Some(INVALID_CHALLENGE));
}

#[tokio::test]
async fn bearer_key_reaches_the_handler_with_its_identity() {
    let fx = Fixture::new();
    let reply = send(
        fx.app(fx.layer()),
        &[("authorization", &bearer(fx.secret()))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.starts_with("alice|"));
}

#[tokio::test]
async fn x_api_key_reaches_the_handler_with_its_identity() {
    let fx = Fixture::new();
    let reply = send(fx.app(fx.layer()), &[("x-api-key", fx.secret().as_bytes())]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.starts_with("alice|"));
}

#[tokio::test]
async fn lowercase_bearer_scheme_is_accepted() {
    let fx = Fixture::new();
    let value = format!("bearer {}", fx.secret());
    let reply = send(fx.app(fx.layer()), &[("authorization", value.as_bytes())]).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn product_specific_header_is_a_source() {
    let store = keygate::MemoryStore::new();
    let key = issue(&store, "space-owner", |identity| identity);
    let layer = Keygate::read_only(store)
        .with_sources([keygate::KeySource::header("x-undb-api-token").unwrap()])
        .unwrap()
        .layer();
    let app = Router::new()
        .route(
            "/me",
            get(|identity: Identity| async move { identity.user().to_owned() }),
        )
        .layer(layer);
    let reply = send(app, &[("x-undb-api-token", key.expose_secret().as_bytes())]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "space-owner");
}

#[tokio::test]
async fn missing_key_gets_401_with_a_challenge_without_error() {
    let fx = Fixture::new();
    let reply = send(fx.app(fx.layer()), &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="api""#)
    );
    assert_eq!(fx.handled(), 0);
}

#[tokio::test]
async fn other_authorization_scheme_counts_as_missing() {
    let fx = Fixture::new();
    let reply = send(
        fx.app(fx.layer()),
        &[("authorization", b"Basic dXNlcjpwYXNz")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="api""#)
    );
}

#[tokio::test]
async fn random_well_formed_key_gets_401_invalid_token() {
    let fx = Fixture::new();
    let stranger = KeyGenerator::default().generate().unwrap();
    let reply = send(
        fx.app(fx.layer()),
        &[("authorization", &bearer(stranger.expose_secret()))],
    )
    .await;
    assert_invalid_token(&reply);
    assert_eq!(fx.store.finds(), 1);
    assert_eq!(fx.handled(), 0);
}

#[tokio::test]
async fn mistyped_key_gets_401_without_a_store_call() {
    let fx = Fixture::new();
    let mut typo = fx.secret().to_owned();
    let position = typo.len() / 2;
    let replacement = if &typo[position..=position] == "a" {
        "b"
    } else {
        "a"
    };
    typo.replace_range(position..=position, replacement);
    let reply = send(fx.app(fx.layer()), &[("x-api-key", typo.as_bytes())]).await;
    assert_invalid_token(&reply);
    assert_eq!(fx.store.finds(), 0);
}

#[tokio::test]
async fn truncated_key_gets_401_without_a_store_call() {
    let fx = Fixture::new();
    let truncated = &fx.secret()[..fx.secret().len() - 3];
    let reply = send(fx.app(fx.layer()), &[("x-api-key", truncated.as_bytes())]).await;
    assert_invalid_token(&reply);
    assert_eq!(fx.store.finds(), 0);
}

#[tokio::test]
async fn key_with_another_prefix_gets_401_without_a_store_call() {
    let fx = Fixture::new();
    let other = KeyGenerator::new(keygate::KeyFormat::with_prefix("other").unwrap())
        .generate()
        .unwrap();
    let reply = send(
        fx.app(fx.layer()),
        &[("x-api-key", other.expose_secret().as_bytes())],
    )
    .await;
    assert_invalid_token(&reply);
    assert_eq!(fx.store.finds(), 0);
}

#[tokio::test]
async fn wrong_secret_for_a_known_id_gets_401_invalid_token() {
    let fx = Fixture::new();
    let identity = fx.store.inner.get(&fx.key.id()).unwrap().identity;
    fx.store
        .inner
        .update(StoredKey::new(KeyHash::from_bytes([0; 32]), identity))
        .unwrap();
    let reply = send(fx.app(fx.layer()), &[("x-api-key", fx.secret().as_bytes())]).await;
    assert_invalid_token(&reply);
    assert_eq!(fx.handled(), 0);
}

#[tokio::test]
async fn revoked_key_gets_401_invalid_token() {
    let fx = Fixture::new();
    let stored = fx.store.inner.get(&fx.key.id()).unwrap();
    fx.store.inner.update(stored.with_revoked(true)).unwrap();
    let reply = send(fx.app(fx.layer()), &[("x-api-key", fx.secret().as_bytes())]).await;
    assert_invalid_token(&reply);
    assert_eq!(fx.handled(), 0);
}

#[tokio::test]
async fn disabled_key_gets_401_invalid_token_and_works_again_once_enabled() {
    let fx = Fixture::new();
    let stored = fx.store.inner.get(&fx.key.id()).unwrap();
    fx.store
        .inner
        .update(stored.clone().with_disabled(true))
        .unwrap();
    let header = [("x-api-key", fx.secret().as_bytes())];
    assert_invalid_token(&send(fx.app(fx.layer()), &header).await);
    assert_eq!(fx.handled(), 0);
    fx.store.inner.update(stored).unwrap();
    assert_eq!(
        send(fx.app(fx.layer()), &header).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn key_expires_when_the_clock_reaches_its_deadline() {
    let fx = Fixture::new();
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let clock = ManualClock::new(start);
    let stored = fx.store.inner.get(&fx.key.id()).unwrap();
    let deadline = start + Duration::from_secs(3600);
    fx.store
        .inner
        .update(stored.with_expires_at(deadline))
        .unwrap();
    let app = fx.app(fx.keygate().with_clock(clock.clone()).layer());
    let header = [("x-api-key", fx.secret().as_bytes())];

    assert_eq!(send(app.clone(), &header).await.status, StatusCode::OK);
    clock.advance(Duration::from_secs(3600));
    assert_invalid_token(&send(app, &header).await);
}

#[tokio::test]
async fn every_invalid_key_gets_one_identical_response() {
    let fx = Fixture::new();
    let revoked = issue(&fx.store.inner, "bob", |identity| identity);
    let stored = fx.store.inner.get(&revoked.id()).unwrap();
    fx.store.inner.update(stored.with_revoked(true)).unwrap();
    let expired = issue(&fx.store.inner, "carol", |identity| identity);
    let stored = fx.store.inner.get(&expired.id()).unwrap();
    fx.store
        .inner
        .update(stored.with_expires_at(UNIX_EPOCH))
        .unwrap();
    let disabled = issue(&fx.store.inner, "dave", |identity| identity);
    let stored = fx.store.inner.get(&disabled.id()).unwrap();
    fx.store.inner.update(stored.with_disabled(true)).unwrap();
    let unknown = KeyGenerator::default().generate().unwrap();

    let presented = [
        "kg_malformed".to_owned(),
        unknown.expose_secret().to_owned(),
        revoked.expose_secret().to_owned(),
        expired.expose_secret().to_owned(),
        disabled.expose_secret().to_owned(),
    ];
    let mut replies = Vec::new();
    for key in &presented {
        replies.push(send(fx.app(fx.layer()), &[("x-api-key", key.as_bytes())]).await);
    }
    for reply in &replies {
        assert_invalid_token(reply);
        assert_eq!(reply, &replies[0]);
    }
}

#[tokio::test]
async fn no_rejection_body_echoes_the_key() {
    let fx = Fixture::new();
    let stored = fx.store.inner.get(&fx.key.id()).unwrap();
    fx.store.inner.update(stored.with_revoked(true)).unwrap();
    let reply = send(fx.app(fx.layer()), &[("x-api-key", fx.secret().as_bytes())]).await;
    assert!(!reply.body.contains(fx.key.id().as_str()));
    assert!(!reply.body.contains(fx.secret()));
    for value in reply.headers.values() {
        assert!(!value.to_str().unwrap().contains(fx.key.id().as_str()));
    }
}

#[tokio::test]
async fn bearer_and_x_api_key_together_get_400_invalid_request() {
    let fx = Fixture::new();
    let reply = send(
        fx.app(fx.layer()),
        &[
            ("authorization", &bearer(fx.secret())),
            ("x-api-key", fx.secret().as_bytes()),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="api", error="invalid_request""#)
    );
    assert_eq!(fx.store.finds(), 0);
}

#[tokio::test]
async fn repeated_x_api_key_header_gets_400_invalid_request() {
    let fx = Fixture::new();
    let reply = send(
        fx.app(fx.layer()),
        &[
            ("x-api-key", fx.secret().as_bytes()),
            ("x-api-key", fx.secret().as_bytes()),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn repeated_authorization_header_gets_400_invalid_request() {
    let fx = Fixture::new();
    let reply = send(
        fx.app(fx.layer()),
        &[
            ("authorization", &bearer(fx.secret())),
            ("authorization", &bearer(fx.secret())),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn store_error_gets_503_with_retry_after_and_skips_the_handler() {
    let fx = Fixture::new();
    let layer = Keygate::read_only(FailingStore)
        .with_retry_after(Duration::from_secs(5))
        .layer();
    let reply = send(fx.app(layer), &[("authorization", &bearer(fx.secret()))]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("retry-after"), Some("5"));
    assert_eq!(fx.handled(), 0);
}

#[tokio::test]
async fn credential_header_is_removed_before_the_handler() {
    let fx = Fixture::new();
    let reply = send(fx.app(fx.layer()), &[("x-api-key", fx.secret().as_bytes())]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.body.contains("x-api-key"));
}

#[tokio::test]
async fn credential_header_is_kept_when_stripping_is_off() {
    let fx = Fixture::new();
    let layer = fx.keygate().with_strip_credential(false).layer();
    let reply = send(fx.app(layer), &[("x-api-key", fx.secret().as_bytes())]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.contains("x-api-key"));
}

#[tokio::test]
async fn configured_realm_is_named_in_challenges() {
    let fx = Fixture::new();
    let layer = fx.keygate().with_realm("billing").unwrap().layer();
    let reply = send(fx.app(layer), &[]).await;
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="billing""#)
    );
}

#[tokio::test]
async fn rejection_hook_shapes_the_response() {
    let fx = Fixture::new();
    let layer = fx
        .keygate()
        .with_rejection_response(|rejection, mut response| {
            if matches!(rejection, Rejection::Missing) {
                *response.body_mut() = Bytes::from_static(b"see https://example.com/docs/auth");
            }
            response
        })
        .layer();
    let reply = send(fx.app(layer), &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, "see https://example.com/docs/auth");
}

fn anonymous_app(fx: &Fixture) -> Router {
    Router::new()
        .route(
            "/maybe",
            get(|identity: Option<Identity>| async move {
                identity.map_or("anonymous".to_owned(), |i| i.user().to_owned())
            }),
        )
        .route(
            "/me",
            get(|identity: Identity| async move { identity.user().to_owned() }),
        )
        .layer(
            fx.keygate()
                .with_anonymous(true)
                .with_realm("public")
                .unwrap()
                .layer(),
        )
}

#[tokio::test]
async fn anonymous_mode_lets_a_caller_without_key_reach_optional_identity() {
    let fx = Fixture::new();
    let reply = common::send_to(anonymous_app(&fx), "/maybe", &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "anonymous");
}

#[tokio::test]
async fn anonymous_mode_still_identifies_a_caller_with_a_key() {
    let fx = Fixture::new();
    let header = [("x-api-key", fx.secret().as_bytes())];
    let reply = common::send_to(anonymous_app(&fx), "/maybe", &header).await;
    assert_eq!(reply.body, "alice");
}

#[tokio::test]
async fn anonymous_mode_still_refuses_an_invalid_key() {
    let fx = Fixture::new();
    let reply = common::send_to(anonymous_app(&fx), "/maybe", &[("x-api-key", b"kg_bad")]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn identity_extractor_answers_anonymous_caller_with_the_layers_challenge() {
    let fx = Fixture::new();
    let reply = common::send_to(anonymous_app(&fx), "/me", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="public""#)
    );
}

#[tokio::test]
async fn layer_wraps_a_plain_tower_service_with_its_own_body_type() {
    use http_body_util::Full;
    use tower::{ServiceBuilder, ServiceExt};

    let fx = Fixture::new();
    let service = ServiceBuilder::new().layer(fx.layer()).service_fn(
        |request: http::Request<()>| async move {
            let user = request
                .extensions()
                .get::<keygate::Authenticated>()
                .map(|found| found.identity().user().to_owned());
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(
                user.unwrap_or_default(),
            ))))
        },
    );
    let request = http::Request::get("/")
        .header("x-api-key", fx.secret())
        .body(())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn hung_store_gets_503_after_the_store_timeout() {
    let fx = Fixture::new();
    let layer = Keygate::read_only(common::HangingStore)
        .with_store_timeout(Duration::from_millis(250))
        .layer();
    let started = tokio::time::Instant::now();
    let reply = send(fx.app(layer), &[("authorization", &bearer(fx.secret()))]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.header("retry-after").is_some());
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    assert_eq!(fx.handled(), 0);
}

#[tokio::test]
async fn panicking_store_gets_503_and_the_service_keeps_serving() {
    let fx = Fixture::new();
    let app = fx.app(Keygate::read_only(common::PanickingStore).layer());
    for _ in 0..2 {
        let reply = send(app.clone(), &[("authorization", &bearer(fx.secret()))]).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(fx.handled(), 0);
}

#[tokio::test]
async fn kept_credential_header_is_marked_sensitive() {
    let fx = Fixture::new();
    let layer = fx.keygate().with_strip_credential(false).layer();
    let app = Router::new()
        .route(
            "/me",
            get(|headers: http::HeaderMap| async move {
                headers["x-api-key"].is_sensitive().to_string()
            }),
        )
        .layer(layer);
    let reply = send(app, &[("x-api-key", fx.secret().as_bytes())]).await;
    assert_eq!(reply.body, "true");
}

#[tokio::test]
async fn identity_extractor_outside_the_layer_is_a_500() {
    let app = Router::new().route(
        "/me",
        get(|identity: Identity| async move { identity.user().to_owned() }),
    );
    let reply = send(app, &[]).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
}
