//! The settings page (feature `page`): server-rendered from askama templates, served by
//! a nestable axum [`Router`], working without JavaScript. Every action goes through the
//! `*_as` methods of [`KeyManager`] for the actor the app's [`ActorResolver`] names, so
//! the page has exactly the rules of the JSON API and no power of its own.
//!
//! | route | shows or does |
//! |---|---|
//! | `GET /` | the actor's keys, **+ Add a key** (name, expiry, space, scopes) |
//! | `POST /create` | creates the key and shows it once |
//! | `GET`, `POST /{id}/regenerate` | asks, then shows the new key once |
//! | `GET`, `POST /{id}/revoke` | asks, then revokes |
//! | `GET /spaces/{space}` | a space's API tokens (for its admins), and a form for one |
//! | `POST /spaces/{space}/create` | creates a token for that space only, shown once |
//!
//! Forms carry a CSRF token and must come from the page's own origin (`csrf.rs`). Every
//! page is `no-store` and carries a Content-Security-Policy that allows only the page's
//! own stylesheet and script, no framing (`frame-ancestors 'none'`) and no form target
//! but itself.

// An `Err` here is the page to answer with, built at most once per request: boxing it
// would buy nothing.
#![allow(clippy::result_large_err)]

mod csrf;
mod form;
mod view;

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, OriginalUri, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY, SET_COOKIE,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;

use crate::key::id::KeyId;
use crate::manage::actor::Actor;
use crate::manage::error::ManageError;
use crate::manage::manager::{DEFAULT_MAX_KEYS_PER_OWNER, KeyManager};
use crate::manage::new_key::NewKey;
use crate::manage::problem::Problem;
use crate::manage::resolver::ActorResolver;
use crate::record::KeyRecord;
use crate::scopes::Scopes;
use crate::store::page::Page;
pub use csrf::is_same_origin;
use csrf::{CsrfKey, Refusal};
use form::{Form, FormError};
use view::{Confirm, ErrorPage, Keys, Row, Shown, SpaceLink, segment};

/// What every page of the settings allows: its own stylesheet and script, nothing else;
/// no framing, no `<base>`, forms posting only to itself.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The largest form body read: a name, a few scopes and a token.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// What the routes share.
struct Shared {
    manager: KeyManager,
    resolver: Box<dyn ActorResolver>,
    /// `None` when the system's randomness failed at start: every page then fails closed.
    csrf: Option<CsrfKey>,
}

type AppState = Arc<Shared>;

impl KeyManager {
    /// The settings page over this manager, for the actors `resolver` names (typically
    /// your app's session). Nest it where your settings live:
    /// `.nest("/settings/api-keys", manager.settings_page(…))`.
    ///
    /// Its forms' CSRF tokens are made with a key drawn at random here, so a page
    /// rendered before a restart, or by another instance, asks to be reloaded; use
    /// [`KeyManager::settings_page_with_secret`] behind a load balancer.
    ///
    /// ```
    /// use axum::Router;
    /// use keygate::{Actor, Keygate, MemoryStore, Scopes, manage_from_fn};
    ///
    /// let keygate = Keygate::new(MemoryStore::new());
    /// // Your session layer says who is signed in; here, a stand-in extension.
    /// #[derive(Clone)]
    /// struct SignedIn(String);
    /// let page = keygate.manager().settings_page(manage_from_fn(|parts| {
    ///     let user = parts.extensions.get::<SignedIn>()?;
    ///     Some(Actor::person(user.0.clone(), Scopes::default()))
    /// }));
    /// let app: Router = Router::new().nest("/settings/api-keys", page);
    /// # let _ = app;
    /// ```
    pub fn settings_page(&self, resolver: impl ActorResolver) -> Router {
        self.page_router(Box::new(resolver), CsrfKey::random())
    }

    /// [`KeyManager::settings_page`] with CSRF tokens made under `secret`: give every
    /// instance of a fleet the same secret (32 random bytes, kept like a password).
    pub fn settings_page_with_secret(&self, resolver: impl ActorResolver, secret: &[u8]) -> Router {
        self.page_router(Box::new(resolver), Some(CsrfKey::new(secret)))
    }

    fn page_router(&self, resolver: Box<dyn ActorResolver>, csrf: Option<CsrfKey>) -> Router {
        let shared = Arc::new(Shared {
            manager: self.clone(),
            resolver,
            csrf,
        });
        Router::new()
            .route("/", get(keys_page))
            .route("/create", axum::routing::post(create))
            .route("/{id}/regenerate", get(confirm_regenerate).post(regenerate))
            .route("/{id}/revoke", get(confirm_revoke).post(revoke))
            .route("/spaces/{space}", get(space_page))
            .route(
                "/spaces/{space}/create",
                axum::routing::post(create_in_space),
            )
            .route("/assets/keygate.css", get(stylesheet))
            .route("/assets/keygate.js", get(script))
            .method_not_allowed_fallback(|visit: Base| async move {
                visit.error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Not allowed here",
                    "This page does not take that method.",
                )
            })
            .fallback(|visit: Base| async move {
                visit.error(
                    StatusCode::NOT_FOUND,
                    "No such page",
                    "There is no settings page here.",
                )
            })
            .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
            .with_state(shared)
    }
}

/// Where the router is nested, as a path prefix without a trailing slash.
struct Base(String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let inner = parts.uri.path();
        let original = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(inner, |original| original.path());
        let base = if inner == "/" {
            original.trim_end_matches('/')
        } else {
            original.strip_suffix(inner).unwrap_or("")
        };
        Ok(Self(base.to_owned()))
    }
}

/// A refusal or failure as a page of the router at `base`.
fn error_page(
    base: &str,
    status: StatusCode,
    title: &str,
    detail: &str,
    set_cookie: Option<&str>,
) -> Response {
    let page = ErrorPage {
        base,
        title,
        detail,
        back: home(base),
    };
    html(status, page.render(), set_cookie)
}

impl Base {
    fn error(&self, status: StatusCode, title: &str, detail: &str) -> Response {
        error_page(&self.0, status, title, detail, None)
    }

    fn problem(&self, problem: &Problem) -> Response {
        self.error(problem.status(), problem.title, &problem.detail)
    }
}

/// A page request: where the router sits, who is acting, and the form nonce.
struct Visit {
    base: String,
    actor: Actor,
    headers: HeaderMap,
    csrf: CsrfKey,
    nonce: String,
    /// Set when the nonce is new to this browser.
    set_cookie: Option<String>,
    /// The manager's clock, read once.
    now: std::time::SystemTime,
}

impl FromRequestParts<AppState> for Visit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(Base(base)) = Base::from_request_parts(parts, state).await;
        let failed = |status, title, detail| Base(base.clone()).error(status, title, detail);
        let Some(csrf) = state.csrf.clone() else {
            return Err(failed(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The settings page could not start: the system's randomness failed.",
            ));
        };
        let actor = match state.resolver.resolve(parts).await {
            Ok(actor) => actor,
            Err(problem) => return Err(Base(base).problem(&problem)),
        };
        let (nonce, set_cookie) = match csrf::nonce_of(&parts.headers) {
            Some(nonce) => (nonce.to_owned(), None),
            None => {
                let Some(nonce) = csrf::new_nonce() else {
                    return Err(failed(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Unavailable",
                        "The system's randomness failed; try again.",
                    ));
                };
                let secure = parts
                    .headers
                    .get("x-forwarded-proto")
                    .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"))
                    || parts.uri.scheme_str() == Some("https");
                let cookie = csrf::set_cookie(&nonce, secure);
                (nonce, Some(cookie))
            }
        };
        Ok(Self {
            base,
            actor,
            headers: parts.headers.clone(),
            csrf,
            nonce,
            set_cookie,
            now: state.manager.now(),
        })
    }
}

impl Visit {
    /// The token this person's forms carry.
    fn token(&self) -> String {
        self.csrf.token(&self.nonce, self.actor.user(), self.now)
    }

    fn page(&self, status: StatusCode, rendered: Result<String, askama::Error>) -> Response {
        html(status, rendered, self.set_cookie.as_deref())
    }

    fn error(&self, status: StatusCode, title: &str, detail: &str) -> Response {
        error_page(
            &self.base,
            status,
            title,
            detail,
            self.set_cookie.as_deref(),
        )
    }

    fn failed(&self, error: ManageError) -> Response {
        let problem = Problem::from(error);
        self.error(problem.status(), problem.title, &problem.detail)
    }

    /// The form of a post, once it has shown it comes from this person's page.
    fn form(&self, body: &Bytes) -> Result<Form, Response> {
        let form = Form::parse(&self.headers, body).map_err(|error| match error {
            FormError::NotAForm => self.error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Not a form",
                "Send the page's form.",
            ),
            FormError::Field(field) => self.error(
                StatusCode::BAD_REQUEST,
                "Invalid form",
                &format!("The form has no single field {field:?}."),
            ),
        })?;
        match self.csrf.check(
            &self.headers,
            self.actor.user(),
            form.csrf.as_deref(),
            self.now,
        ) {
            Ok(()) => Ok(form),
            Err(Refusal::CrossOrigin) => Err(self.error(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form was sent from another site. Open the settings page and try again.",
            )),
            Err(Refusal::BadToken) => Err(self.error(
                StatusCode::FORBIDDEN,
                "This form has expired",
                "Reload the settings page and try again.",
            )),
        }
    }

    /// Whether this actor administers `space` (or the whole app).
    fn administers(&self, space: &str) -> bool {
        self.actor.is_app_admin() || self.actor.administers(space)
    }

    /// Where to return to from `record`: its space's page for that space's admins.
    fn back_from(&self, record: &KeyRecord) -> String {
        match record.identity.space() {
            Some(space) if self.administers(space) => {
                format!("{}/spaces/{}", self.base, segment(space))
            }
            _ => home(&self.base),
        }
    }
}

/// The list page's address: the nest itself (axum routes `/settings` to a router nested
/// there, not `/settings/`), or `/` when not nested.
fn home(base: &str) -> String {
    if base.is_empty() {
        "/".to_owned()
    } else {
        base.to_owned()
    }
}

/// An HTML answer with the page's security headers; `no-store`, since pages list keys
/// and some show one.
fn html(
    status: StatusCode,
    rendered: Result<String, askama::Error>,
    set_cookie: Option<&str>,
) -> Response {
    let Ok(body) = rendered else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page failed to render",
        )
            .into_response();
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(headers);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = set_cookie.and_then(|cookie| HeaderValue::from_str(cookie).ok()) {
        headers.insert(SET_COOKIE, cookie);
    }
    response
}

fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: under it a browser sends `Origin: null` with the page's own form
    // posts, which the CSRF check refuses. No key is ever in a URL.
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// A 303 to `location` after a post, so that reloading does not post again.
fn see_other(visit: &Visit, location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = visit
        .set_cookie
        .as_deref()
        .and_then(|cookie| HeaderValue::from_str(cookie).ok())
    {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

/// A key id from the path; one that cannot name a key is an unknown one.
fn key_id(visit: &Visit, id: &str) -> Result<KeyId, Response> {
    KeyId::parse(id).map_err(|_| visit.failed(ManageError::NotFound))
}

/// What a page answers: the page, or the page saying why not (both are HTML).
type Answer = Result<Response, Response>;

/// A form body as axum hands it over.
type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

#[derive(Deserialize)]
struct Notice {
    done: Option<String>,
}

fn notice_text(notice: Option<&Notice>) -> Option<&'static str> {
    match notice?.done.as_deref()? {
        "revoked" => Some("Key revoked: requests with it are refused from now on."),
        _ => None,
    }
}

/// The table of `records`, newest first.
fn rows(visit: &Visit, records: &[KeyRecord], now: std::time::SystemTime) -> Vec<Row> {
    records
        .iter()
        .rev()
        .map(|record| Row::new(record, now, visit.actor.owns(record)))
        .collect()
}

async fn keys_page(
    State(state): State<AppState>,
    visit: Visit,
    notice: Result<Query<Notice>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let records = state
        .manager
        .list_as(&visit.actor)
        .await
        .map_err(|error| visit.failed(error))?;
    let token = visit.token();
    let spaces: Vec<&str> = visit
        .actor
        .administered_spaces()
        .iter()
        .map(String::as_str)
        .collect();
    let page = Keys {
        base: &visit.base,
        heading: "API keys",
        intro: "Personal API keys authenticate your requests to the API as you. Treat them \
                like passwords.",
        add_label: "+ Add a key",
        list_heading: "Personal API Keys",
        empty: "You have no API keys yet.",
        notice: notice_text(notice.as_ref().ok().map(|Query(notice)| notice)),
        open_form: false,
        create_action: format!("{}/create", visit.base),
        csrf: &token,
        fixed_space: None,
        spaces: spaces.clone(),
        scopes: visit.actor.scopes().iter().collect(),
        rows: rows(&visit, &records, visit.now),
        admin_spaces: spaces.iter().map(|space| SpaceLink::new(space)).collect(),
        back: None,
    };
    Ok(visit.page(StatusCode::OK, page.render()))
}

async fn space_page(
    State(state): State<AppState>,
    visit: Visit,
    Path(space): Path<String>,
    notice: Result<Query<Notice>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    if !visit.administers(&space) {
        return Err(visit.failed(ManageError::NotSpaceAdmin));
    }
    let first = Page::first(DEFAULT_MAX_KEYS_PER_OWNER);
    let records = state
        .manager
        .list_space_as(&visit.actor, &space, first)
        .await
        .map_err(|error| visit.failed(error))?;
    let token = visit.token();
    let heading = format!("API Token: {space}");
    let page = Keys {
        base: &visit.base,
        heading: &heading,
        intro: "A space token opens this space only, whoever holds it.",
        add_label: "+ Create a token",
        list_heading: "Tokens of this space",
        empty: "This space has no tokens yet.",
        notice: notice_text(notice.as_ref().ok().map(|Query(notice)| notice)),
        open_form: false,
        create_action: format!("{}/spaces/{}/create", visit.base, segment(&space)),
        csrf: &token,
        fixed_space: Some(&space),
        spaces: Vec::new(),
        scopes: visit.actor.scopes().iter().collect(),
        rows: rows(&visit, &records, visit.now),
        admin_spaces: Vec::new(),
        back: Some(home(&visit.base)),
    };
    Ok(visit.page(StatusCode::OK, page.render()))
}

async fn create(State(state): State<AppState>, visit: Visit, body: Body) -> Answer {
    create_key(&state, visit, body, None).await
}

async fn create_in_space(
    State(state): State<AppState>,
    visit: Visit,
    Path(space): Path<String>,
    body: Body,
) -> Answer {
    create_key(&state, visit, body, Some(space)).await
}

/// The body of a post, or the page saying why it could not be read.
fn read_form(visit: &Visit, body: Body) -> Result<Form, Response> {
    let body = body.map_err(|rejection| {
        visit.error(
            rejection.status(),
            "Invalid form",
            "The form could not be read.",
        )
    })?;
    visit.form(&body)
}

/// A refusal of the form, as a 400 page saying `why`.
fn invalid(visit: &Visit, why: &str) -> Response {
    visit.error(StatusCode::BAD_REQUEST, "Invalid form", why)
}

async fn create_key(
    state: &AppState,
    visit: Visit,
    body: Body,
    fixed_space: Option<String>,
) -> Answer {
    let form = read_form(&visit, body)?;
    let space = match (&fixed_space, form.space.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                &visit,
                "This form binds the token to its space; it takes no other.",
            ));
        }
        (Some(space), None) => Some(space.clone()),
        (None, Some("") | None) => None,
        (None, Some(space)) => Some(space.to_owned()),
    };
    if let Some(space) = &space {
        // The page offers only spaces the actor administers; the rules refuse others for
        // a person, and the page does the same for a key acting here.
        if !visit.administers(space) {
            return Err(visit.failed(ManageError::NotSpaceAdmin));
        }
    }
    let scopes = Scopes::new(&form.scopes).map_err(|error| invalid(&visit, &error.to_string()))?;
    let name = form.name.unwrap_or_default();
    let mut new = NewKey::new(visit.actor.user(), name).with_scopes(scopes);
    if let Some(space) = space {
        new = new.with_space(space);
    }
    match form.expires_in.as_deref() {
        None | Some("") => {}
        Some(seconds) => match seconds.parse::<u64>() {
            Ok(seconds) if seconds > 0 => new = new.expires_in(Duration::from_secs(seconds)),
            _ => {
                return Err(invalid(
                    &visit,
                    "Choose when the key expires from the list.",
                ));
            }
        },
    }
    let made = state
        .manager
        .create_as(&visit.actor, new)
        .await
        .map_err(|error| visit.failed(error))?;
    let back = match fixed_space {
        Some(space) => format!("{}/spaces/{}", visit.base, segment(&space)),
        None => visit.back_from(&made.record),
    };
    let page = Shown {
        base: &visit.base,
        heading: "Your new key",
        name: made.record.identity.name(),
        key: made.key.expose_secret(),
        note: None,
        back,
    };
    Ok(visit.page(StatusCode::CREATED, page.render()))
}

async fn confirm_regenerate(
    State(state): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
) -> Answer {
    confirm(
        &state,
        visit,
        &id,
        "regenerate",
        "Regenerate",
        "A new key replaces this one. The current key stops working immediately: update \
         every place that uses it.",
    )
    .await
}

async fn confirm_revoke(
    State(state): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
) -> Answer {
    confirm(
        &state,
        visit,
        &id,
        "revoke",
        "Revoke",
        "Requests with this key are refused from now on. This cannot be undone.",
    )
    .await
}

async fn confirm(
    state: &AppState,
    visit: Visit,
    id: &str,
    action: &str,
    verb: &str,
    consequence: &str,
) -> Answer {
    let id = key_id(&visit, id)?;
    let record = state
        .manager
        .get_as(&visit.actor, &id)
        .await
        .map_err(|error| visit.failed(error))?;
    if action == "regenerate" && !visit.actor.owns(&record) {
        // As `regenerate_as` answers: someone else's key is not the actor's to replace.
        return Err(visit.failed(ManageError::NotFound));
    }
    let token = visit.token();
    let page = Confirm {
        base: &visit.base,
        question: format!("{verb} “{}”?", record.identity.name()),
        consequence,
        verb,
        action: format!("{}/{}/{action}", visit.base, id.as_str()),
        csrf: &token,
        back: visit.back_from(&record),
    };
    Ok(visit.page(StatusCode::OK, page.render()))
}

/// The key a confirmation form acts on: the form must be this person's, and carry no
/// key fields (regenerate and revoke take none).
fn confirmed(visit: &Visit, body: Body, id: &str) -> Result<KeyId, Response> {
    let form = read_form(visit, body)?;
    if form.name.is_some()
        || form.expires_in.is_some()
        || form.space.is_some()
        || !form.scopes.is_empty()
    {
        return Err(invalid(visit, "This form takes no fields."));
    }
    key_id(visit, id)
}

async fn regenerate(
    State(state): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
    body: Body,
) -> Answer {
    let id = confirmed(&visit, body, &id)?;
    let made = state
        .manager
        .regenerate_as(&visit.actor, &id, None)
        .await
        .map_err(|error| visit.failed(error))?;
    let page = Shown {
        base: &visit.base,
        heading: "Key regenerated",
        name: made.record.identity.name(),
        key: made.key.expose_secret(),
        note: Some("The previous key no longer works."),
        back: visit.back_from(&made.record),
    };
    Ok(visit.page(StatusCode::CREATED, page.render()))
}

async fn revoke(
    State(state): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
    body: Body,
) -> Answer {
    let id = confirmed(&visit, body, &id)?;
    let failed = |error| visit.failed(error);
    let record = state
        .manager
        .get_as(&visit.actor, &id)
        .await
        .map_err(failed)?;
    state
        .manager
        .revoke_as(&visit.actor, &id)
        .await
        .map_err(failed)?;
    let back = visit.back_from(&record);
    Ok(see_other(&visit, &format!("{back}?done=revoked")))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    secure_headers(headers);
    response
}

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/keygate.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/keygate.js"),
    )
}
