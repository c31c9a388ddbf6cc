//! The settings page over HTTP: keys shown once, forms refused from other sites or
//! without their token, strict security headers, the space variant for its admins only.

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use keygate::{Actor, KeyManager, Keygate, MemoryStore, NewKey, Scopes, manage_from_fn};
use tower::ServiceExt;

const BASE: &str = "/settings/api-keys";

/// A page nested under [`BASE`]; the `x-user` header stands in for the app's session:
/// alice administers space `one`, bob nothing.
fn app() -> (Router, KeyManager) {
    let keygate = Keygate::new(MemoryStore::new());
    let manager = keygate.manager();
    let page = manager.settings_page(manage_from_fn(|parts| {
        let user = parts.headers.get("x-user")?.to_str().ok()?;
        let scopes = Scopes::new(["items:read", "items:write"]).ok()?;
        let person = Actor::person(user, scopes);
        Some(match user {
            "alice" => person.administering(["one"]),
            _ => person,
        })
    }));
    let api = Router::new()
        .route("/probe", axum::routing::get(|| async { "ok" }))
        .layer(keygate.layer());
    (Router::new().nest(BASE, page).merge(api), manager)
}

/// What the API answers to `key`.
async fn probe(app: &Router, key: &str) -> StatusCode {
    let bearer = format!("Bearer {key}");
    send(app, Method::GET, "/probe", &[("authorization", &bearer)])
        .await
        .status
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of the form's hidden CSRF field.
    fn token(&self) -> String {
        value_after(&self.body, "name=\"csrf\" value=\"")
    }

    /// The key shown once.
    fn shown_key(&self) -> String {
        value_after(
            &self.body,
            "id=\"new-key\" class=\"secret\" readonly value=\"",
        )
    }
}

fn value_after(body: &str, marker: &str) -> String {
    let start = body.find(marker).expect("marker in page") + marker.len();
    body[start..].split('"').next().unwrap().to_owned()
}

async fn send(app: &Router, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
    send_body(app, method, path, headers, "").await
}

async fn send_body(
    app: &Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// A signed-in browser: its CSRF cookie and the token of the page it last loaded.
struct Browser {
    user: &'static str,
    cookie: String,
    token: String,
}

impl Browser {
    async fn open(app: &Router, user: &'static str) -> Self {
        let page = send(app, Method::GET, BASE, &[("x-user", user)]).await;
        assert_eq!(page.status, StatusCode::OK);
        let cookie = page
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        Self {
            user,
            cookie,
            token: page.token(),
        }
    }

    /// Posts `fields` (and the token) as the page's form does, from the same origin.
    async fn post(&self, app: &Router, path: &str, fields: &str) -> Reply {
        self.post_with(app, path, fields, &[("sec-fetch-site", "same-origin")])
            .await
    }

    async fn post_with(
        &self,
        app: &Router,
        path: &str,
        fields: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let body = if fields.is_empty() {
            format!("csrf={}", self.token)
        } else {
            format!("csrf={}&{fields}", self.token)
        };
        let mut headers = vec![
            ("x-user", self.user),
            ("cookie", self.cookie.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        headers.extend_from_slice(extra);
        send_body(app, Method::POST, &format!("{BASE}{path}"), &headers, &body).await
    }

    async fn page(&self, app: &Router, path: &str) -> Reply {
        let headers = [("x-user", self.user), ("cookie", self.cookie.as_str())];
        send(app, Method::GET, &format!("{BASE}{path}"), &headers).await
    }
}

#[tokio::test]
async fn saved_key_is_shown_once_and_never_on_the_list() {
    let (app, _) = app();
    let browser = Browser::open(&app, "alice").await;
    let shown = browser.post(&app, "/create", "name=ci+deploys").await;
    assert_eq!(shown.status, StatusCode::CREATED);
    let key = shown.shown_key();
    assert!(key.starts_with("kg_"), "{key}");
    assert_eq!(shown.header("cache-control"), Some("no-store"));
    let list = browser.page(&app, "").await;
    assert!(list.body.contains("ci deploys"));
    assert!(!list.body.contains(&key), "the list shows no secret");
}

#[tokio::test]
async fn cross_site_form_post_is_refused_and_creates_nothing() {
    let (app, manager) = app();
    let browser = Browser::open(&app, "alice").await;
    let refused = browser
        .post_with(
            &app,
            "/create",
            "name=planted",
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(manager.list_by_user("alice").await.unwrap().is_empty());
}

#[tokio::test]
async fn post_from_a_foreign_origin_is_refused() {
    let (app, _) = app();
    let browser = Browser::open(&app, "alice").await;
    let refused = browser
        .post_with(
            &app,
            "/create",
            "name=planted",
            &[("origin", "https://evil.example"), ("host", "app.example")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn post_with_another_persons_token_is_refused() {
    let (app, manager) = app();
    let alice = Browser::open(&app, "alice").await;
    let bob = Browser::open(&app, "bob").await;
    let forged = Browser {
        user: "alice",
        cookie: alice.cookie.clone(),
        token: bob.token.clone(),
    };
    let refused = forged.post(&app, "/create", "name=planted").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(manager.list_by_user("alice").await.unwrap().is_empty());
}

#[tokio::test]
async fn post_without_token_is_refused() {
    let (app, _) = app();
    let browser = Browser::open(&app, "alice").await;
    let headers = [
        ("x-user", "alice"),
        ("cookie", browser.cookie.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let refused = send_body(
        &app,
        Method::POST,
        &format!("{BASE}/create"),
        &headers,
        "name=x",
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn pages_forbid_framing_foreign_assets_and_caching() {
    let (app, _) = app();
    let page = send(&app, Method::GET, BASE, &[("x-user", "alice")]).await;
    let csp = page.header("content-security-policy").unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let cookie = page.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
}

#[tokio::test]
async fn forms_and_assets_point_under_the_nest() {
    let (app, _) = app();
    let page = send(&app, Method::GET, BASE, &[("x-user", "alice")]).await;
    assert!(page.body.contains("action=\"/settings/api-keys/create\""));
    assert!(
        page.body
            .contains("href=\"/settings/api-keys/assets/keygate.css\"")
    );
    let css = send(
        &app,
        Method::GET,
        &format!("{BASE}/assets/keygate.css"),
        &[],
    )
    .await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
}

#[tokio::test]
async fn regenerate_asks_then_shows_a_new_key_once() {
    let (app, manager) = app();
    let browser = Browser::open(&app, "alice").await;
    let first = browser.post(&app, "/create", "name=ci").await.shown_key();
    let id = manager.list_by_user("alice").await.unwrap()[0]
        .id()
        .as_str()
        .to_owned();
    let ask = browser.page(&app, &format!("/{id}/regenerate")).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("stops working immediately"));
    let shown = browser.post(&app, &format!("/{id}/regenerate"), "").await;
    assert_eq!(shown.status, StatusCode::CREATED);
    let second = shown.shown_key();
    assert_ne!(first, second);
    assert_eq!(probe(&app, &first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(probe(&app, &second).await, StatusCode::OK);
}

#[tokio::test]
async fn revoke_asks_then_revokes_and_says_so() {
    let (app, manager) = app();
    let browser = Browser::open(&app, "alice").await;
    browser.post(&app, "/create", "name=ci").await;
    let id = manager.list_by_user("alice").await.unwrap()[0].id();
    let done = browser
        .post(&app, &format!("/{}/revoke", id.as_str()), "")
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        done.header("location"),
        Some("/settings/api-keys?done=revoked")
    );
    assert!(manager.get(&id).await.unwrap().revoked_at.is_some());
    let list = browser.page(&app, "?done=revoked").await;
    assert!(list.body.contains("Key revoked"));
}

#[tokio::test]
async fn space_admin_creates_a_token_bound_to_that_space() {
    let (app, manager) = app();
    let browser = Browser::open(&app, "alice").await;
    let shown = browser
        .post(&app, "/spaces/one/create", "name=deploy")
        .await;
    assert_eq!(shown.status, StatusCode::CREATED);
    let records = manager.list_by_user("alice").await.unwrap();
    assert_eq!(records[0].identity.space(), Some("one"));
    let page = browser.page(&app, "/spaces/one").await;
    assert!(page.body.contains("deploy"));
}

#[tokio::test]
async fn space_page_is_refused_to_a_person_not_administering_it() {
    let (app, _) = app();
    let bob = Browser::open(&app, "bob").await;
    assert_eq!(
        bob.page(&app, "/spaces/one").await.status,
        StatusCode::FORBIDDEN
    );
    let refused = bob.post(&app, "/spaces/one/create", "name=x").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = bob.post(&app, "/create", "name=x&space=one").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn nobody_signed_in_gets_401() {
    let (app, _) = app();
    let page = send(&app, Method::GET, BASE, &[]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_persons_key_cannot_be_regenerated_from_the_page() {
    let (app, manager) = app();
    let theirs = manager
        .create(NewKey::new("carol", "theirs"))
        .await
        .unwrap();
    let bob = Browser::open(&app, "bob").await;
    let id = theirs.record.id();
    let refused = bob
        .post(&app, &format!("/{}/regenerate", id.as_str()), "")
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(
        probe(&app, theirs.key.expose_secret()).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn page_escapes_what_a_key_name_holds() {
    let (app, _) = app();
    let browser = Browser::open(&app, "alice").await;
    browser
        .post(&app, "/create", "name=%3Cscript%3Ex%3C%2Fscript%3E")
        .await;
    let list = browser.page(&app, "").await;
    assert!(!list.body.contains("<script>x"));
    assert!(list.body.contains("&#60;script&#62;x") || list.body.contains("&lt;script&gt;x"));
}

#[tokio::test]
async fn space_admin_may_revoke_but_not_regenerate_another_users_token() {
    let (app, manager) = app();
    let theirs = manager
        .create(NewKey::new("carol", "carol's").with_space("one"))
        .await
        .unwrap();
    let id = theirs.record.id();
    let alice = Browser::open(&app, "alice").await;
    let page = alice.page(&app, "/spaces/one").await;
    assert!(page.body.contains(&format!("/{}/revoke", id.as_str())));
    assert!(!page.body.contains(&format!("/{}/regenerate", id.as_str())));
    let ask = alice
        .page(&app, &format!("/{}/regenerate", id.as_str()))
        .await;
    assert_eq!(ask.status, StatusCode::NOT_FOUND);
}
