//! The key lifecycle, spaces and scopes, through the quickstart app itself over HTTP.

#[path = "../examples/quickstart/app.rs"]
mod app;

use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use keygate::{KeyFormat, KeyManager, Keygate, ManualClock, MemoryStore, NewKey, Scopes};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Demo {
    app: Router,
    clock: ManualClock,
    manager: KeyManager,
    admin: String,
    admin_id: String,
}

async fn demo() -> Demo {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let keygate = Keygate::new(MemoryStore::new())
        .with_format(KeyFormat::with_prefix("kg_live").unwrap())
        .with_clock(clock.clone());
    let manager = keygate.manager();
    let admin = manager
        .create(NewKey::new("admin", "admin").with_scopes(Scopes::new([app::KEYS_WRITE]).unwrap()))
        .await
        .unwrap();
    let (app, _keygate) = app::router(&keygate).unwrap();
    Demo {
        app,
        clock,
        manager,
        admin: admin.key.expose_secret().to_owned(),
        admin_id: admin.record.id().as_str().to_owned(),
    }
}

impl Demo {
    async fn call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("x-api-key", key);
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    async fn get(&self, path: &str, key: &str) -> StatusCode {
        self.call(Method::GET, path, key, None).await.0
    }

    /// Creates a key as `creator`; returns (plaintext, id).
    async fn create(&self, creator: &str, body: Value) -> (String, String) {
        let (status, created) = self.call(Method::POST, "/keys", creator, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let key = created["key"].as_str().unwrap().to_owned();
        let id = created["record"]["id"].as_str().unwrap().to_owned();
        (key, id)
    }

    /// The full response to `method path` as `key`, headers included.
    async fn response(&self, method: Method, path: &str, key: &str, body: Value) -> Response {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("x-api-key", key)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.app.clone().oneshot(request).await.unwrap()
    }

    /// A key of the admin's user holding `keys:write`, expiring in 60 s.
    async fn short_lived_writer(&self) -> String {
        let body = json!({"name": "60 s", "scopes": [app::KEYS_WRITE], "expires_in": 60});
        self.create(&self.admin, body).await.0
    }

    async fn regenerate(&self, id: &str, body: Option<Value>) -> String {
        let path = format!("/keys/{id}/regenerate");
        let (status, created) = self.call(Method::POST, &path, &self.admin, body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["key"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn created_key_is_returned_once_and_works() {
    let demo = demo().await;
    let (key, _) = demo.create(&demo.admin, json!({"name": "ci"})).await;
    assert!(key.starts_with("kg_live_"));
    assert_eq!(demo.get("/me", &key).await, StatusCode::OK);
}

#[tokio::test]
async fn listing_shows_previews_and_never_a_secret() {
    let demo = demo().await;
    let (key, id) = demo.create(&demo.admin, json!({"name": "ci"})).await;
    let (status, listing) = demo.call(Method::GET, "/keys", &demo.admin, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = listing.to_string();
    assert!(!text.contains(&key));
    assert!(!text.contains(&demo.admin));
    assert!(
        !text.contains(&key[20..]),
        "a fragment of the secret leaked"
    );
    let listed = listing["keys"].as_array().unwrap();
    let entry = listed.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(entry["name"], "ci");
    assert_eq!(
        entry["preview"],
        format!("kg_live_...{}", &key[key.len() - 4..])
    );
    for field in ["created_at", "expires_at", "last_used_at"] {
        assert!(entry.get(field).is_some(), "{field} missing");
    }
}

#[tokio::test]
async fn regenerate_kills_the_old_key_on_the_next_request() {
    let demo = demo().await;
    let (old, id) = demo.create(&demo.admin, json!({"name": "rotating"})).await;
    let new = demo.regenerate(&id, None).await;
    assert_eq!(demo.get("/me", &old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(demo.get("/me", &new).await, StatusCode::OK);
}

#[tokio::test]
async fn regenerate_keeps_name_space_and_id() {
    let demo = demo().await;
    let (_, id) = demo
        .create(&demo.admin, json!({"name": "kept", "space": "s1"}))
        .await;
    let new = demo.regenerate(&id, None).await;
    let (_, me) = demo.call(Method::GET, "/me", &new, None).await;
    assert_eq!(me["key_id"], id.as_str());
    assert_eq!(me["name"], "kept");
    assert_eq!(me["space"], "s1");
}

#[tokio::test]
async fn grace_period_keeps_the_old_key_until_the_deadline() {
    let demo = demo().await;
    let (old, id) = demo.create(&demo.admin, json!({"name": "rolling"})).await;
    demo.regenerate(&id, Some(json!({"grace": 300}))).await;
    assert_eq!(demo.get("/me", &old).await, StatusCode::OK);
    demo.clock.advance(Duration::from_secs(299));
    assert_eq!(demo.get("/me", &old).await, StatusCode::OK);
    demo.clock.advance(Duration::from_secs(1));
    assert_eq!(demo.get("/me", &old).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoked_key_gets_401_at_once() {
    let demo = demo().await;
    let (key, id) = demo.create(&demo.admin, json!({"name": "doomed"})).await;
    assert_eq!(demo.get("/me", &key).await, StatusCode::OK);
    let (status, _) = demo
        .call(Method::DELETE, &format!("/keys/{id}"), &demo.admin, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(demo.get("/me", &key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoke_of_another_users_key_is_not_found() {
    let demo = demo().await;
    let (status, _) = demo
        .call(Method::DELETE, "/keys/AAAAAAAAAAAAAAAA", &demo.admin, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn key_expires_after_expires_in_by_the_injected_clock() {
    let demo = demo().await;
    let (key, _) = demo
        .create(&demo.admin, json!({"name": "short", "expires_in": 60}))
        .await;
    demo.clock.advance(Duration::from_secs(59));
    assert_eq!(demo.get("/me", &key).await, StatusCode::OK);
    demo.clock.advance(Duration::from_secs(1));
    assert_eq!(demo.get("/me", &key).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn space_key_opens_its_own_space() {
    let demo = demo().await;
    let (key, _) = demo
        .create(&demo.admin, json!({"name": "one", "space": "one"}))
        .await;
    assert_eq!(demo.get("/spaces/one/items", &key).await, StatusCode::OK);
}

#[tokio::test]
async fn spaces_are_isolated_both_ways() {
    let demo = demo().await;
    let (one, _) = demo
        .create(&demo.admin, json!({"name": "one", "space": "one"}))
        .await;
    let (two, _) = demo
        .create(&demo.admin, json!({"name": "two", "space": "two"}))
        .await;
    assert_eq!(
        demo.get("/spaces/two/items", &one).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        demo.get("/spaces/one/items", &two).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(demo.get("/spaces/two/items", &two).await, StatusCode::OK);
}

#[tokio::test]
async fn encoded_space_segment_cannot_escape_the_space() {
    let demo = demo().await;
    let (one, _) = demo
        .create(&demo.admin, json!({"name": "one", "space": "one"}))
        .await;
    assert_eq!(
        demo.get("/spaces/%74wo/items", &one).await,
        StatusCode::FORBIDDEN
    );
    // No route answers a doubled slash: refused either by the layer or as unknown.
    let doubled = demo.get("//spaces/two/items", &one).await;
    assert!(
        matches!(doubled, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
        "{doubled}"
    );
}

#[tokio::test]
async fn user_wide_admin_key_reaches_every_space() {
    let demo = demo().await;
    assert_eq!(
        demo.get("/spaces/one/items", &demo.admin).await,
        StatusCode::OK
    );
    assert_eq!(
        demo.get("/spaces/two/items", &demo.admin).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn missing_scope_gets_403_naming_the_scope() {
    let demo = demo().await;
    let (plain, _) = demo.create(&demo.admin, json!({"name": "no scopes"})).await;
    let (status, body) = demo.call(Method::GET, "/keys", &plain, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(app::KEYS_WRITE), "{detail}");
}

#[tokio::test]
async fn key_cannot_grant_a_scope_it_lacks() {
    let demo = demo().await;
    let body = json!({"name": "greedy", "scopes": ["keys:write", "billing:admin"]});
    let (status, _) = demo
        .call(Method::POST, "/keys", &demo.admin, Some(body))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn space_key_cannot_mint_keys_for_another_space() {
    let demo = demo().await;
    let body = json!({"name": "space admin", "space": "one", "scopes": ["keys:write"]});
    let (space_admin, _) = demo.create(&demo.admin, body).await;
    let (status, _) = demo
        .call(
            Method::POST,
            "/keys",
            &space_admin,
            Some(json!({"name": "x", "space": "two"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = demo
        .call(
            Method::POST,
            "/keys",
            &space_admin,
            Some(json!({"name": "x", "space": "one"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn health_needs_no_key() {
    let demo = demo().await;
    let request = Request::get("/health").body(Body::empty()).unwrap();
    let response = demo.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

// Management on behalf of a key gains no power (shared/DESIGN.md, contract 6). Each of
// these was reproduced over HTTP against the quickstart before the rules were tightened.

#[tokio::test]
async fn short_lived_key_cannot_regenerate_the_admin_key() {
    let demo = demo().await;
    let writer = demo.short_lived_writer().await;
    let path = format!("/keys/{}/regenerate", demo.admin_id);
    let (status, body) = demo.call(Method::POST, &path, &writer, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.get("key").is_none(), "a secret was handed out: {body}");
    assert_eq!(demo.get("/me", &demo.admin).await, StatusCode::OK);
}

#[tokio::test]
async fn short_lived_key_cannot_regenerate_a_permanent_sibling() {
    let demo = demo().await;
    let (sibling, id) = demo.create(&demo.admin, json!({"name": "forever"})).await;
    let writer = demo.short_lived_writer().await;
    let path = format!("/keys/{id}/regenerate");
    let (status, body) = demo.call(Method::POST, &path, &writer, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(demo.get("/me", &sibling).await, StatusCode::OK);
}

#[tokio::test]
async fn short_lived_key_cannot_revoke_the_admin_key() {
    let demo = demo().await;
    let writer = demo.short_lived_writer().await;
    let path = format!("/keys/{}", demo.admin_id);
    let (status, _) = demo.call(Method::DELETE, &path, &writer, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(demo.get("/me", &demo.admin).await, StatusCode::OK);
}

#[tokio::test]
async fn short_lived_key_cannot_revoke_a_permanent_sibling() {
    let demo = demo().await;
    let (sibling, id) = demo.create(&demo.admin, json!({"name": "forever"})).await;
    let writer = demo.short_lived_writer().await;
    let (status, _) = demo
        .call(Method::DELETE, &format!("/keys/{id}"), &writer, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(demo.get("/me", &sibling).await, StatusCode::OK);
}

#[tokio::test]
async fn key_lacking_a_scope_of_the_target_cannot_revoke_it() {
    let demo = demo().await;
    let scopes = Scopes::new([app::KEYS_WRITE, "billing:admin"]).unwrap();
    let strong = demo
        .manager
        .create(NewKey::new("admin", "strong").with_scopes(scopes))
        .await
        .unwrap();
    let (writer, _) = demo
        .create(
            &demo.admin,
            json!({"name": "w", "scopes": [app::KEYS_WRITE]}),
        )
        .await;
    let path = format!("/keys/{}", strong.record.id());
    let (status, _) = demo.call(Method::DELETE, &path, &writer, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        demo.get("/me", strong.key.expose_secret()).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn grace_secret_cannot_create_keys() {
    let demo = demo().await;
    let path = format!("/keys/{}/regenerate", demo.admin_id);
    let (status, _) = demo
        .call(Method::POST, &path, &demo.admin, Some(json!({"grace": 5})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // The old admin secret still authenticates, but manages nothing.
    assert_eq!(demo.get("/me", &demo.admin).await, StatusCode::OK);
    let body = json!({"name": "backdoor", "scopes": [app::KEYS_WRITE]});
    let (status, body) = demo
        .call(Method::POST, "/keys", &demo.admin, Some(body))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.get("key").is_none(), "a secret was handed out: {body}");
}

#[tokio::test]
async fn grace_secret_cannot_regenerate_its_successor() {
    let demo = demo().await;
    let path = format!("/keys/{}/regenerate", demo.admin_id);
    let (_, rotated) = demo
        .call(Method::POST, &path, &demo.admin, Some(json!({"grace": 5})))
        .await;
    let successor = rotated["key"].as_str().unwrap().to_owned();
    let (status, _) = demo.call(Method::POST, &path, &demo.admin, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = demo
        .call(
            Method::DELETE,
            &format!("/keys/{}", demo.admin_id),
            &demo.admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(demo.get("/me", &successor).await, StatusCode::OK);
}

#[tokio::test]
async fn every_response_that_carries_a_key_is_no_store() {
    let demo = demo().await;
    let created = demo
        .response(Method::POST, "/keys", &demo.admin, json!({"name": "k"}))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let bytes = created.into_body().collect().await.unwrap().to_bytes();
    let id = serde_json::from_slice::<Value>(&bytes).unwrap()["record"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/keys/{id}/regenerate");
    let rotated = demo
        .response(Method::POST, &path, &demo.admin, json!({}))
        .await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    assert_eq!(rotated.headers()["cache-control"], "no-store");
}

/// `POST path` as the admin with a raw body and optional content type: (status, JSON body).
async fn raw_post(
    demo: &Demo,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("x-api-key", &demo.admin);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let request = request.body(Body::from(body.to_owned())).unwrap();
    let response = demo.app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_grace_sent_without_a_json_content_type_is_refused_not_dropped() {
    let demo = demo().await;
    let path = format!("/keys/{}/regenerate", demo.admin_id);
    let (status, body) = raw_post(&demo, &path, None, r#"{"grace":600}"#).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(body["type"].is_string(), "a problem+json error: {body}");
    assert_eq!(
        demo.get("/me", &demo.admin).await,
        StatusCode::OK,
        "not regenerated"
    );
}

#[tokio::test]
async fn a_misspelt_field_is_refused_not_ignored() {
    let demo = demo().await;
    let path = format!("/keys/{}/regenerate", demo.admin_id);
    let json = Some("application/json");
    let (status, body) = raw_post(&demo, &path, json, r#"{"grase":600}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = raw_post(&demo, "/keys", json, r#"{"name":"k","scope":["a"]}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        demo.get("/me", &demo.admin).await,
        StatusCode::OK,
        "not regenerated"
    );
}

#[tokio::test]
async fn a_malformed_body_gets_a_json_error() {
    let demo = demo().await;
    let json = Some("application/json");
    for body in [r#"{"name":"#, r#"{"name":"k","expires_in":-1}"#, ""] {
        let (status, error) = raw_post(&demo, "/keys", json, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
        assert!(error["type"].is_string(), "{body:?} gave {error}");
    }
}

#[tokio::test]
async fn a_regenerate_without_a_body_has_no_grace() {
    let demo = demo().await;
    let path = format!("/keys/{}/regenerate", demo.admin_id);
    let (status, created) = raw_post(&demo, &path, None, "").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(demo.get("/me", &demo.admin).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_can_be_renamed_and_paused_then_resumed() {
    let demo = demo().await;
    let (key, id) = demo.create(&demo.admin, json!({"name": "k"})).await;
    let path = format!("/keys/{id}");
    let body = json!({"name": "renamed", "disabled": true});
    let (status, record) = demo
        .call(Method::PATCH, &path, &demo.admin, Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["name"], "renamed");
    assert_eq!(record["disabled"], true);
    assert_eq!(demo.get("/me", &key).await, StatusCode::UNAUTHORIZED);
    let body = json!({"disabled": false});
    let (status, _) = demo
        .call(Method::PATCH, &path, &demo.admin, Some(body))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(demo.get("/me", &key).await, StatusCode::OK);
}

#[tokio::test]
async fn a_short_lived_key_cannot_make_a_key_permanent_by_editing_it() {
    let demo = demo().await;
    let writer = demo.short_lived_writer().await;
    let (_, id) = demo
        .create(
            &writer,
            json!({"name": "child", "scopes": [app::KEYS_WRITE]}),
        )
        .await;
    let path = format!("/keys/{id}");
    let body = json!({"expires_in": null});
    let (status, _) = demo.call(Method::PATCH, &path, &writer, Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let body = json!({"expires_in": 86_400});
    let (status, _) = demo.call(Method::PATCH, &path, &writer, Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_edit_cannot_widen_scopes() {
    let demo = demo().await;
    let (_, id) = demo.create(&demo.admin, json!({"name": "narrow"})).await;
    let path = format!("/keys/{id}");
    let body = json!({"scopes": [app::KEYS_WRITE]});
    let (status, _) = demo
        .call(Method::PATCH, &path, &demo.admin, Some(body))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Sends `method path` as `key` with headers now and the JSON body only once `release`
/// fires, as a client that holds its body back would.
async fn late_body(
    demo: &Demo,
    method: Method,
    path: &str,
    key: &str,
    body: Value,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<StatusCode>,
) {
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let bytes = body.to_string();
    let stream = futures_util::stream::once(async move {
        let _ = released.await;
        Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(bytes))
    });
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap();
    let app = demo.app.clone();
    let response = tokio::spawn(async move { app.oneshot(request).await.unwrap().status() });
    // Let the layer verify the headers before anything else happens.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    (release, response)
}

#[tokio::test]
async fn a_body_held_back_past_a_rotation_cannot_mint_a_key() {
    let demo = demo().await;
    let (leaked, id) = demo
        .create(
            &demo.admin,
            json!({"name": "leaked", "scopes": [app::KEYS_WRITE]}),
        )
        .await;
    let body = json!({"name": "persist", "scopes": [app::KEYS_WRITE]});
    let (release, minted) = late_body(&demo, Method::POST, "/keys", &leaked, body).await;
    demo.regenerate(&id, None).await;
    release.send(()).unwrap();
    assert_eq!(minted.await.unwrap(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_body_held_back_past_a_narrowing_cannot_use_the_old_scopes() {
    let demo = demo().await;
    let (key, id) = demo
        .create(
            &demo.admin,
            json!({"name": "k", "scopes": [app::KEYS_WRITE]}),
        )
        .await;
    let body = json!({"name": "minted", "scopes": [app::KEYS_WRITE]});
    let (release, minted) = late_body(&demo, Method::POST, "/keys", &key, body).await;
    let path = format!("/keys/{id}");
    let (status, _) = demo
        .call(
            Method::PATCH,
            &path,
            &demo.admin,
            Some(json!({"scopes": []})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    release.send(()).unwrap();
    assert_eq!(minted.await.unwrap(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_null_edit_field_is_refused_not_skipped() {
    let demo = demo().await;
    let (_, id) = demo.create(&demo.admin, json!({"name": "k"})).await;
    let path = format!("/keys/{id}");
    for body in [
        json!({"disabled": null}),
        json!({"name": null}),
        json!({"scopes": null}),
    ] {
        let (status, error) = demo
            .call(Method::PATCH, &path, &demo.admin, Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    }
}

#[tokio::test]
async fn usage_without_a_sql_trail_says_how_to_get_one() {
    let demo = demo().await;
    let path = format!("/keys/{}/usage", demo.admin_id);
    let (status, body) = demo.call(Method::GET, &path, &demo.admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["detail"].as_str().unwrap().contains("DATABASE_URL"),
        "{body}"
    );
}

/// The quickstart on SQLite with its audit trail: a key's usage and recent denials.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_usage_and_recent_denials_come_from_the_sql_trail() {
    let store = keygate::SqliteStore::connect("sqlite::memory:")
        .await
        .unwrap();
    let trail = keygate::SqlAuditSink::sqlite(store.pool().clone(), keygate::Retention::days(30))
        .await
        .unwrap();
    let keygate = Keygate::new(store)
        .with_format(KeyFormat::with_prefix("kg_live").unwrap())
        .with_audit_sink(trail.clone(), 1_024);
    let admin = keygate
        .manager()
        .create(NewKey::new("admin", "admin").with_scopes(Scopes::new([app::KEYS_WRITE]).unwrap()))
        .await
        .unwrap();
    let (app, _keygate) =
        app::router_with_trail(&keygate, Some(app::as_trail(trail.clone()))).unwrap();
    let key = admin.key.expose_secret().to_owned();
    let forged = keygate::KeyGenerator::new(KeyFormat::with_prefix("kg_live").unwrap())
        .generate_for(admin.key.id())
        .unwrap();
    let get = |key: String, path: String| {
        let app = app.clone();
        async move {
            let request = Request::get(path)
                .header("x-api-key", key)
                .body(Body::empty())
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    assert_eq!(get(key.clone(), "/me".into()).await.0, StatusCode::OK);
    assert_eq!(
        get(forged.expose_secret().to_owned(), "/me".into()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let path = format!("/keys/{}/usage", admin.record.id().as_str());
    let mut usage = Value::Null;
    for _ in 0..500 {
        trail.flush().await;
        let (status, body) = get(key.clone(), path.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["recent_denials"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
            // The three reads of one answer may straddle a batch: wait for one that has
            // the denial in every part.
            && body["days"][0]["denied"] == 1
        {
            usage = body;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        usage["recent_denials"][0]["reason"], "wrong_secret",
        "{usage}"
    );
    assert_eq!(usage["denials_by_reason"][0]["count"], 1);
    let today = &usage["days"][0];
    assert!(today["allowed"].as_i64().unwrap() >= 1, "{usage}");
    assert_eq!(today["denied"], 1);
}

#[tokio::test]
async fn user_wide_key_without_items_read_cannot_read_a_space() {
    let demo = demo().await;
    let (plain, _) = demo.create(&demo.admin, json!({"name": "no scopes"})).await;
    assert_eq!(
        demo.get("/spaces/one/items", &plain).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn items_read_opens_only_the_spaces_its_person_administers() {
    let demo = demo().await;
    let scopes = Scopes::new([app::ITEMS_READ]).unwrap();
    let alice = demo
        .manager
        .create(NewKey::new("alice", "reader").with_scopes(scopes))
        .await
        .unwrap();
    let key = alice.key.expose_secret();
    assert_eq!(demo.get("/spaces/one/items", key).await, StatusCode::OK);
    assert_eq!(
        demo.get("/spaces/two/items", key).await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn login_posted_from_a_foreign_origin_is_refused() {
    let demo = demo().await;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header("host", "127.0.0.1:3000")
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("user=alice&password=guess"))
        .unwrap();
    let response = demo.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_host_the_server_does_not_own_is_refused() {
    let keygate = Keygate::new(MemoryStore::new());
    let options = app::Options {
        hosts: Some(vec!["127.0.0.1:3000".to_owned()]),
        ..app::Options::default()
    };
    let (app, _) = app::build(&keygate, options).unwrap();
    let status = |host: &'static str| {
        let app = app.clone();
        async move {
            let request = Request::builder()
                .uri("/health")
                .header("host", host)
                .body(Body::empty())
                .unwrap();
            app.oneshot(request).await.unwrap().status()
        }
    };
    assert_eq!(status("127.0.0.1:3000").await, StatusCode::OK);
    assert_eq!(
        status("rebound.example").await,
        StatusCode::MISDIRECTED_REQUEST
    );
}

#[tokio::test]
async fn password_guessing_is_throttled_per_user() {
    let demo = demo().await;
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("user=bob&password=guess"))
            .unwrap();
        statuses.push(demo.app.clone().oneshot(request).await.unwrap().status());
    }
    assert!(
        statuses[..10]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(statuses[10], StatusCode::TOO_MANY_REQUESTS);
}
