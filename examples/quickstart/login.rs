//! The quickstart's people: a minimal login on tower-sessions, and the settings page for
//! whoever is signed in. A real app has its own accounts; what keygate needs from it is
//! the `ActorResolver` below, which names the signed-in person.

use std::num::NonZeroU32;
use std::sync::Arc;

use askama::Template;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use keygate::{Actor, ActorResolver, KeyFormat, KeyGenerator, KeyManager, Problem, Scopes};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tower_sessions::cookie::SameSite;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

/// Where the settings page is nested.
pub const SETTINGS: &str = "/settings/api-keys";

/// The session field holding the signed-in person's name.
const SIGNED_IN: &str = "user";

/// A demo account: its name and the space it administers.
#[derive(Debug, Clone, Copy)]
pub struct Person {
    /// The user name keys belong to.
    pub name: &'static str,
    /// The one space this person administers (its tokens are on `/settings/api-keys/spaces/…`).
    pub space: &'static str,
}

/// The demo's people; all share the password printed at start.
pub const PEOPLE: [Person; 2] = [
    Person {
        name: "alice",
        space: "one",
    },
    Person {
        name: "bob",
        space: "two",
    },
];

/// The scopes a person may give their keys.
const PERSON_SCOPES: [&str; 2] = ["items:read", "items:write"];

/// Whether `user` administers `space` (the demo's whole membership table).
pub fn administers(user: &str, space: &str) -> bool {
    Person::named(user).is_some_and(|person| person.space == space)
}

impl Person {
    fn named(name: &str) -> Option<Self> {
        PEOPLE.into_iter().find(|person| person.name == name)
    }

    fn actor(self) -> Option<Actor> {
        let scopes = Scopes::new(PERSON_SCOPES).ok()?;
        Some(Actor::person(self.name, scopes).administering([self.space]))
    }
}

/// The password, and the throttle on guessing it, shared by the handlers.
#[derive(Clone)]
struct Password {
    password: Arc<str>,
    /// At most 10 attempts a minute per user name: guessing takes ages.
    attempts: Arc<DefaultKeyedRateLimiter<String>>,
}

/// `/login`, `/logout` and the settings page, in one session layer.
pub fn routes(manager: &KeyManager, password: Option<String>) -> Router {
    // Without a password given, one nobody knows: no one signs in.
    let password = password.unwrap_or_else(draw_password);
    let page = manager
        .settings_page(SignedInPerson)
        .route_layer(middleware::from_fn(require_login));
    let sessions = SessionManagerLayer::new(MemoryStore::default())
        .with_name("quickstart_session")
        .with_same_site(SameSite::Strict)
        .with_http_only(true)
        // The quickstart serves plain HTTP on 127.0.0.1; behind TLS, set this.
        .with_secure(false);
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .with_state(Password {
            password: password.into(),
            attempts: Arc::new(RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            ))),
        })
        .nest(SETTINGS, page)
        .layer(sessions)
}

/// A fresh random password (empty if the system's randomness fails: then no one signs
/// in, since an empty password never matches).
pub fn draw_password() -> String {
    KeyGenerator::new(KeyFormat::default())
        .generate()
        .ok()
        .and_then(|key| {
            let secret = key.expose_secret().rsplit('_').next()?;
            Some(secret.chars().take(16).collect())
        })
        .unwrap_or_default()
}

/// The settings page's actor: the person this session signed in.
struct SignedInPerson;

#[keygate::async_trait]
impl ActorResolver for SignedInPerson {
    async fn resolve(&self, parts: &mut Parts) -> Result<Actor, Problem> {
        signed_in(parts)
            .await
            .and_then(Person::actor)
            .ok_or_else(|| Problem::unauthorized("sign in to manage keys"))
    }
}

async fn signed_in(parts: &mut Parts) -> Option<Person> {
    let session = Session::from_request_parts(parts, &()).await.ok()?;
    let name: String = session.get(SIGNED_IN).await.ok()??;
    Person::named(&name)
}

/// Sends a visitor who is not signed in to the login form (the page's stylesheet and
/// script are public: the login form uses the stylesheet too).
async fn require_login(request: axum::extract::Request, next: Next) -> Response {
    if request.uri().path().starts_with("/assets/") {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    if signed_in(&mut parts).await.is_none() {
        return Redirect::to("/login").into_response();
    }
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

async fn login_page() -> Response {
    page(StatusCode::OK, "")
}

#[derive(Deserialize)]
struct Credentials {
    user: String,
    password: String,
}

async fn login(
    State(Password { password, attempts }): State<Password>,
    session: Session,
    headers: HeaderMap,
    Form(credentials): Form<Credentials>,
) -> Response {
    if !keygate::is_same_origin(&headers) {
        return page(StatusCode::FORBIDDEN, "This form came from another site.");
    }
    let Some(person) = Person::named(&credentials.user) else {
        return page(StatusCode::UNAUTHORIZED, "Wrong user or password.");
    };
    if attempts.check_key(&person.name.to_owned()).is_err() {
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts; wait a minute and try again.",
        );
    }
    let matches: bool = credentials
        .password
        .as_bytes()
        .ct_eq(password.as_bytes())
        .into();
    if !matches || password.is_empty() {
        return page(StatusCode::UNAUTHORIZED, "Wrong user or password.");
    }
    // A new session id at sign-in, so that an id planted before cannot ride on it.
    if session.cycle_id().await.is_err() || session.insert(SIGNED_IN, person.name).await.is_err() {
        return page(StatusCode::SERVICE_UNAVAILABLE, "Sessions are unavailable.");
    }
    Redirect::to(SETTINGS).into_response()
}

async fn logout(session: Session, headers: HeaderMap) -> Response {
    if !keygate::is_same_origin(&headers) {
        return page(StatusCode::FORBIDDEN, "This form came from another site.");
    }
    // Nothing is left to sign out of if the store fails.
    let _ = session.flush().await;
    Redirect::to("/login").into_response()
}

/// The login form, with `message` above it.
#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · keygate quickstart</title>
<link rel="stylesheet" href="{{ settings }}/assets/keygate.css"></head>
<body><main><h1>Sign in</h1>
{% if !message.is_empty() %}<p role="alert"><strong>{{ message }}</strong></p>{% endif %}
<p class="lead">The quickstart printed the password when it started.</p>
<form method="post" action="/login" class="add-form">
<p class="field"><label for="user">User</label>
<select id="user" name="user">{% for person in people %}<option value="{{ person.name }}">{{ person.name }} (admin of space {{ person.space }})</option>{% endfor %}</select></p>
<p class="field"><label for="password">Password</label>
<input id="password" name="password" type="password" required autocomplete="current-password"></p>
<p><button type="submit" class="primary">Sign in</button></p>
</form></main></body></html>"#
)]
struct LoginPage<'a> {
    settings: &'a str,
    message: &'a str,
    people: &'a [Person],
}

fn page(status: StatusCode, message: &str) -> Response {
    let rendered = LoginPage {
        settings: SETTINGS,
        message,
        people: &PEOPLE,
    }
    .render();
    let Ok(body) = rendered else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
