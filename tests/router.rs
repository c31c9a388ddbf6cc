//! The management router: the `*_as` rules over HTTP, problem+json errors, keys shown once.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use keygate::{
    Actor, KeyManager, KeySource, KeyWithScope, Keygate, MemoryStore, NewKey, Scopes,
    manage_from_fn,
};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    cache_control: Option<String>,
    body: Value,
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (status, content_type, cache_control) = (
        response.status(),
        header("content-type"),
        header("cache-control"),
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        content_type,
        cache_control,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// An app with the router nested at `/api-keys` for keys holding `keys:write`.
fn keyed() -> (Router, KeyManager) {
    let keygate = Keygate::new(MemoryStore::new())
        .with_sources([KeySource::header("x-api-key").unwrap()])
        .unwrap();
    let manager = keygate.manager();
    let app = Router::new()
        .nest(
            "/api-keys",
            manager.management(KeyWithScope::new("keys:write")),
        )
        .route("/me", get(|| async { "ok" }))
        .layer(keygate.layer());
    (app, manager)
}

async fn admin(manager: &KeyManager) -> String {
    let created = manager
        .create(NewKey::new("alice", "admin").with_scopes(Scopes::new(["keys:write"]).unwrap()))
        .await
        .unwrap();
    created.key.expose_secret().to_owned()
}

#[tokio::test]
async fn a_key_is_created_shown_once_listed_regenerated_and_revoked() {
    let (app, manager) = keyed();
    let admin = admin(&manager).await;
    let auth = [("x-api-key", admin.as_str())];
    let made = call(
        &app,
        Method::POST,
        "/api-keys",
        &auth,
        Some(json!({"name": "ci"})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED);
    assert_eq!(made.cache_control.as_deref(), Some("no-store"));
    let key = made.body["key"].as_str().unwrap().to_owned();
    let id = made.body["record"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        call(&app, Method::GET, "/me", &[("x-api-key", &key)], None)
            .await
            .status,
        StatusCode::OK
    );

    let listed = call(&app, Method::GET, "/api-keys", &auth, None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(
        !listed.body.to_string().contains(&key[key.len() - 20..]),
        "a secret in a listing"
    );
    assert_eq!(listed.body["keys"].as_array().unwrap().len(), 2);

    let path = format!("/api-keys/{id}/regenerate");
    let rotated = call(&app, Method::POST, &path, &auth, None).await;
    assert_eq!(rotated.status, StatusCode::CREATED);
    assert_eq!(rotated.cache_control.as_deref(), Some("no-store"));
    let new_key = rotated.body["key"].as_str().unwrap().to_owned();
    assert_eq!(
        call(&app, Method::GET, "/me", &[("x-api-key", &key)], None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&app, Method::GET, "/me", &[("x-api-key", &new_key)], None)
            .await
            .status,
        StatusCode::OK
    );

    let revoked = call(
        &app,
        Method::DELETE,
        &format!("/api-keys/{id}"),
        &auth,
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        call(&app, Method::GET, "/me", &[("x-api-key", &new_key)], None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_key_without_the_management_scope_gets_a_403_problem() {
    let (app, manager) = keyed();
    let plain = manager.create(NewKey::new("alice", "plain")).await.unwrap();
    let auth = [("x-api-key", plain.key.expose_secret())];
    let refused = call(&app, Method::GET, "/api-keys", &auth, None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.content_type.as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(refused.body["type"], "urn:keygate:problem:forbidden");
}

#[tokio::test]
async fn a_scope_the_actor_lacks_cannot_be_granted() {
    let (app, manager) = keyed();
    let admin = admin(&manager).await;
    let body = json!({"name": "wider", "scopes": ["admin"]});
    let refused = call(
        &app,
        Method::POST,
        "/api-keys",
        &[("x-api-key", &admin)],
        Some(body),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.get("key").is_none());
}

#[tokio::test]
async fn malformed_ids_answer_as_unknown_ones_and_bodies_must_be_json() {
    let (app, manager) = keyed();
    let admin = admin(&manager).await;
    let auth = [("x-api-key", admin.as_str())];
    for path in ["/api-keys/nope", "/api-keys/AAAAAAAAAAAAAAAA"] {
        let reply = call(&app, Method::GET, path, &auth, None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.body["type"], "urn:keygate:problem:not-found");
    }
    let request = Request::post("/api-keys")
        .header("x-api-key", &admin)
        .body(Body::from(r#"{"name":"k"}"#))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let unknown = call(
        &app,
        Method::POST,
        "/api-keys",
        &auth,
        Some(json!({"name": "k", "scope": []})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

/// An app whose session says who the person is (a demo header stands in for a cookie).
fn by_session() -> (Router, KeyManager) {
    let manager = Keygate::new(MemoryStore::new()).manager();
    let resolver = manage_from_fn(|parts| {
        let user = parts.headers.get("x-demo-user")?.to_str().ok()?;
        let actor = Actor::person(user, Scopes::new(["keys:write"]).unwrap());
        Some(if user == "root" {
            actor.app_admin()
        } else {
            actor
        })
    });
    let app = Router::new().nest("/settings/api-keys", manager.management(resolver));
    (app, manager)
}

#[tokio::test]
async fn a_person_manages_their_own_keys_and_only_an_app_admin_revokes_all_of_a_user() {
    let (app, manager) = by_session();
    let alice = [("x-demo-user", "alice")];
    let made = call(
        &app,
        Method::POST,
        "/settings/api-keys",
        &alice,
        Some(json!({"name": "k"})),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED);
    assert_eq!(made.body["record"]["user"], "alice");
    let id = made.body["record"]["id"].as_str().unwrap().to_owned();
    // Bob cannot see or touch it.
    let bob = [("x-demo-user", "bob")];
    let path = format!("/settings/api-keys/{id}");
    assert_eq!(
        call(&app, Method::GET, &path, &bob, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, Method::DELETE, &path, &bob, None).await.status,
        StatusCode::NOT_FOUND
    );
    // Nobody signed in: 401.
    assert_eq!(
        call(&app, Method::GET, "/settings/api-keys", &[], None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Revoking all of a user's keys is an app admin's.
    let all = "/settings/api-keys/users/alice/revoke";
    assert_eq!(
        call(&app, Method::POST, all, &alice, None).await.status,
        StatusCode::FORBIDDEN
    );
    let done = call(&app, Method::POST, all, &[("x-demo-user", "root")], None).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.body["revoked"], 1);
    assert!(
        manager
            .get(&keygate::KeyId::parse(&id).unwrap())
            .await
            .unwrap()
            .revoked_at
            .is_some()
    );
}

/// Five keys of alice behind the session router, and the first page of two of them.
async fn five_keys_and_a_first_page_of_two() -> (Router, KeyManager, Reply) {
    let (app, manager) = by_session();
    for n in 0..5 {
        manager
            .create(NewKey::new("alice", format!("k{n}")))
            .await
            .unwrap();
    }
    let alice = [("x-demo-user", "alice")];
    let first = call(
        &app,
        Method::GET,
        "/settings/api-keys?limit=2",
        &alice,
        None,
    )
    .await;
    (app, manager, first)
}

#[tokio::test]
async fn listings_page_after_a_key_id() {
    let (app, _, first) = five_keys_and_a_first_page_of_two().await;
    let alice = [("x-demo-user", "alice")];
    assert_eq!(first.body["keys"].as_array().unwrap().len(), 2);
    let next = first.body["next"].as_str().unwrap().to_owned();
    let rest = call(
        &app,
        Method::GET,
        &format!("/settings/api-keys?limit=10&after={next}"),
        &alice,
        None,
    )
    .await;
    assert_eq!(rest.body["keys"].as_array().unwrap().len(), 3);
    assert!(rest.body["next"].is_null());
}

#[tokio::test]
async fn a_page_resumes_after_its_cursor_even_when_that_key_is_gone() {
    let (app, manager, first) = five_keys_and_a_first_page_of_two().await;
    let alice = [("x-demo-user", "alice")];
    let last_id = first.body["keys"][1]["id"].as_str().unwrap().to_owned();
    manager
        .delete(&keygate::KeyId::parse(&last_id).unwrap())
        .await
        .unwrap();
    let next = first.body["next"].as_str().unwrap().to_owned();
    let rest = call(
        &app,
        Method::GET,
        &format!("/settings/api-keys?after={next}"),
        &alice,
        None,
    )
    .await;
    assert_eq!(
        rest.body["keys"].as_array().unwrap().len(),
        3,
        "{}",
        rest.body
    );
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused() {
    let (app, _) = by_session();
    let alice = [("x-demo-user", "alice")];
    let array = call(
        &app,
        Method::POST,
        "/settings/api-keys",
        &alice,
        Some(json!(["k", "s9", ["keys:write"], 3600])),
    )
    .await;
    assert_eq!(array.status, StatusCode::BAD_REQUEST);
    assert_eq!(array.body["type"], "urn:keygate:problem:invalid-request");
}

#[tokio::test]
async fn the_routers_own_errors_are_problems() {
    let (app, _) = by_session();
    let alice = [("x-demo-user", "alice")];
    let wrong_method = call(&app, Method::PUT, "/settings/api-keys", &alice, None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        wrong_method.content_type.as_deref(),
        Some("application/problem+json")
    );
    let bad_user = call(
        &app,
        Method::POST,
        "/settings/api-keys/users/%FF/revoke",
        &alice,
        None,
    )
    .await;
    assert_eq!(bad_user.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_user.content_type.as_deref(),
        Some("application/problem+json")
    );
    let zero = call(
        &app,
        Method::GET,
        "/settings/api-keys?limit=0",
        &alice,
        None,
    )
    .await;
    assert_eq!(zero.status, StatusCode::BAD_REQUEST);
    let listed = call(&app, Method::GET, "/settings/api-keys", &alice, None).await;
    assert_eq!(listed.cache_control.as_deref(), Some("no-store"));
}

#[tokio::test]
async fn revoke_all_works_under_a_nest_with_parameters_of_its_own() {
    let keygate = Keygate::new(MemoryStore::new());
    let manager = keygate.manager();
    manager.create(NewKey::new("alice", "k")).await.unwrap();
    let admin = manage_from_fn(|_| Some(Actor::person("root", Scopes::default()).app_admin()));
    let app = Router::new().nest("/spaces/{space}/keys", manager.management(admin));
    let reply = call(
        &app,
        Method::POST,
        "/spaces/acme/keys/users/alice/revoke",
        &[],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["revoked"], 1);
}

#[tokio::test]
async fn scope_denial_inside_a_nest_is_audited_with_the_full_path() {
    use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

    struct Paths(UnboundedSender<(bool, String)>);
    impl keygate::AuditSink for Paths {
        fn record(&self, event: &keygate::AuditEvent) {
            let denied = matches!(event.outcome, keygate::Outcome::Denied(_));
            let _ = self.0.send((denied, event.path().to_owned()));
        }
    }
    let (sender, mut events) = unbounded_channel();
    let keygate = Keygate::new(MemoryStore::new()).with_audit_sink(Paths(sender), 64);
    let key = keygate
        .manager()
        .create(NewKey::new("alice", "no scope"))
        .await
        .unwrap();
    let inner = Router::new()
        .route("/guarded", get(|| async { "ok" }))
        .route_layer(keygate.require_scope("keys:write").unwrap());
    let app = Router::new().nest("/keys", inner).layer(keygate.layer());
    let bearer = format!("Bearer {}", key.key.expose_secret());
    let reply = call(
        &app,
        Method::GET,
        "/keys/guarded",
        &[("authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    loop {
        let (denied, path) =
            tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
                .await
                .expect("the denial is audited")
                .unwrap();
        assert_eq!(path, "/keys/guarded");
        if denied {
            break;
        }
    }
}

/// A router whose actor the `x-actor` header names: `root` is an app admin, `sam`
/// administers space `acme`, anyone else is a plain person.
fn people_app(manager: &KeyManager) -> Router {
    manager.management(manage_from_fn(|parts| {
        let name = parts.headers.get("x-actor")?.to_str().ok()?;
        let person = Actor::person(name, Scopes::default());
        Some(match name {
            "root" => person.app_admin(),
            "sam" => person.administering(["acme"]),
            _ => person,
        })
    }))
}

#[tokio::test]
async fn app_admin_lists_any_users_keys_a_person_only_their_own() {
    let manager = Keygate::new(MemoryStore::new()).manager();
    manager.create(NewKey::new("alice", "a")).await.unwrap();
    let app = people_app(&manager);
    let by = |actor: &'static str| [("x-actor", actor)];
    let root = call(&app, Method::GET, "/users/alice", &by("root"), None).await;
    assert_eq!(root.status, StatusCode::OK, "{}", root.body);
    assert_eq!(root.body["keys"].as_array().unwrap().len(), 1);
    let own = call(&app, Method::GET, "/users/alice", &by("alice"), None).await;
    assert_eq!(own.body["keys"].as_array().unwrap().len(), 1);
    let other = call(&app, Method::GET, "/users/alice", &by("bob"), None).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn space_admin_lists_every_token_of_the_space_others_only_their_own() {
    let manager = Keygate::new(MemoryStore::new()).manager();
    manager
        .create(NewKey::new("alice", "a").with_space("acme"))
        .await
        .unwrap();
    manager
        .create(NewKey::new("bob", "b").with_space("acme"))
        .await
        .unwrap();
    let app = people_app(&manager);
    let count = |reply: &Reply| reply.body["keys"].as_array().unwrap().len();
    let sam = call(
        &app,
        Method::GET,
        "/spaces/acme",
        &[("x-actor", "sam")],
        None,
    )
    .await;
    assert_eq!(count(&sam), 2);
    let bob = call(
        &app,
        Method::GET,
        "/spaces/acme",
        &[("x-actor", "bob")],
        None,
    )
    .await;
    assert_eq!(count(&bob), 1);
}

#[tokio::test]
async fn a_users_keys_page_through_next_without_repeats() {
    let manager = Keygate::new(MemoryStore::new()).manager();
    for n in 0..5 {
        manager
            .create(NewKey::new("alice", format!("k{n}")))
            .await
            .unwrap();
    }
    let app = people_app(&manager);
    let mut seen = Vec::new();
    let mut path = "/users/alice?limit=2".to_owned();
    loop {
        let page = call(&app, Method::GET, &path, &[("x-actor", "root")], None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for key in page.body["keys"].as_array().unwrap() {
            seen.push(key["id"].as_str().unwrap().to_owned());
        }
        match page.body["next"].as_str() {
            Some(next) => path = format!("/users/alice?limit=2&after={next}"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (5, 5));
}

#[tokio::test]
async fn a_page_is_short_only_at_the_end_even_among_keys_of_others() {
    let manager = Keygate::new(MemoryStore::new()).manager();
    for user in ["alice", "bob", "alice", "alice", "bob", "alice", "bob"] {
        manager
            .create(NewKey::new(user, "k").with_space("acme"))
            .await
            .unwrap();
    }
    let app = people_app(&manager);
    let mut pages = Vec::new();
    let mut path = "/spaces/acme?limit=1".to_owned();
    loop {
        let page = call(&app, Method::GET, &path, &[("x-actor", "bob")], None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        pages.push(page.body["keys"].as_array().unwrap().len());
        match page.body["next"].as_str() {
            Some(next) => path = format!("/spaces/acme?limit=1&after={next}"),
            None => break,
        }
    }
    assert_eq!(pages, [1, 1, 1], "bob's three keys, one a page");
}
