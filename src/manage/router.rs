//! The management API as a nestable axum [`Router`] (feature `router`): every route acts
//! through the `*_as` methods of [`KeyManager`] on behalf of the actor an
//! [`ActorResolver`] names, so it has exactly their rules and no power of its own.
//!
//! | route | does |
//! |---|---|
//! | `GET /` `?limit=&after=<id>` | the actor's keys, oldest first, a page at a time |
//! | `POST /` | create: 201 with the plaintext once (`Cache-Control: no-store`) |
//! | `GET /{id}` | one key's record |
//! | `PATCH /{id}` | rename, narrow scopes, set or clear the expiry, pause or resume |
//! | `POST /{id}/regenerate` | a new secret, 201 with it once; `{"grace"?}` |
//! | `DELETE /{id}` | revoke: 204 |
//! | `GET /users/{user}` `?limit=&after=` | a user's keys: one's own, or anyone's for an app admin |
//! | `POST /users/{user}/revoke` | revoke every key of a user (app admins only): `{"revoked"}` |
//! | `GET /spaces/{space}` `?limit=&after=` | a space's keys: all for its admins, else one's own |
//!
//! Errors are `application/problem+json` ([`Problem`]).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::key::id::KeyId;
use crate::manage::actor::Actor;
use crate::manage::json::{
    CreateKeyRequest, CreatedKeyJson, EditKeyRequest, KeyPageJson, KeyRecordJson,
    RegenerateRequest, RevokedJson,
};
use crate::manage::manager::{CreatedKey, KeyManager};
use crate::manage::new_key::NewKey;
use crate::manage::problem::Problem;
use crate::manage::resolver::ActorResolver;
use crate::scopes::Scopes;
use crate::store::edit::KeyEdit;
use crate::store::page::{Cursor, Page};

/// What the routes share.
struct Shared {
    manager: KeyManager,
    resolver: Box<dyn ActorResolver>,
}

type AppState = Arc<Shared>;

impl KeyManager {
    /// The management API over this manager, for the actors `resolver` names. Nest it
    /// where your settings live: `.nest("/settings/api-keys", manager.management(…))`.
    ///
    /// ```
    /// use axum::Router;
    /// use keygate::{KeyWithScope, Keygate, MemoryStore};
    ///
    /// let keygate = Keygate::new(MemoryStore::new());
    /// let app: Router = Router::new()
    ///     .nest("/api-keys", keygate.manager().management(KeyWithScope::new("keys:write")))
    ///     .layer(keygate.layer());
    /// # let _ = app;
    /// ```
    pub fn management(&self, resolver: impl ActorResolver) -> Router {
        let shared = Arc::new(Shared {
            manager: self.clone(),
            resolver: Box::new(resolver),
        });
        let router = Router::new()
            .route("/", get(list).post(create))
            .route("/{id}", get(one).patch(edit).delete(revoke))
            .route("/{id}/regenerate", post(regenerate))
            .route("/users/{user}", get(list_user))
            .route("/users/{user}/revoke", post(revoke_all))
            .route("/spaces/{space}", get(list_space));
        #[cfg(feature = "openapi")]
        let router = router.route("/openapi.json", get(openapi_document));
        router
            .method_not_allowed_fallback(|| async {
                Problem::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method-not-allowed",
                    "Method not allowed",
                    "this route does not take that method",
                )
            })
            .fallback(|| async {
                Problem::new(
                    StatusCode::NOT_FOUND,
                    "not-found",
                    "No such route",
                    "no such route",
                )
            })
            .with_state(shared)
    }
}

/// The actor of a request.
struct Acting(Actor);

impl FromRequestParts<AppState> for Acting {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        state.resolver.resolve(parts).await.map(Acting)
    }
}

/// A key id from the path; one that cannot name a key answers as an unknown one.
struct Id(KeyId);

impl FromRequestParts<AppState> for Id {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        #[derive(Deserialize)]
        struct Segment {
            id: String,
        }
        let Path(segment) = Path::<Segment>::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::from(crate::manage::error::ManageError::NotFound))?;
        KeyId::parse(&segment.id)
            .map(Id)
            .map_err(|_| crate::manage::error::ManageError::NotFound.into())
    }
}

/// A JSON body read strictly: wrong content type 415, unknown field or bad value 400, an
/// empty body read as `null` (which only an `Option` accepts).
struct JsonBody<T>(T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Problem> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                let status = rejection.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        status,
                        "payload-too-large",
                        "Body too large",
                        rejection.body_text(),
                    )
                } else {
                    Problem::bad_request(rejection.body_text())
                }
            })?;
        if bytes.is_empty() {
            return serde_json::from_slice(b"null")
                .map(JsonBody)
                .map_err(|_| Problem::bad_request("a JSON body is required"));
        }
        if !is_json {
            return Err(Problem::unsupported_media_type());
        }
        // An object, by its field names: serde would also take a struct as an array of
        // its fields in order, which no client means.
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|error| Problem::bad_request(format!("invalid JSON body: {error}")))?;
        if !value.is_object() {
            return Err(Problem::bad_request("the body must be a JSON object"));
        }
        serde_json::from_value(value)
            .map(JsonBody)
            .map_err(|error| Problem::bad_request(format!("invalid JSON body: {error}")))
    }
}

fn scopes(names: &[String]) -> Result<Scopes, Problem> {
    Scopes::new(names).map_err(|error| Problem::bad_request(error.to_string()))
}

/// 201 with the plaintext once, never cached.
fn created(state: &AppState, created: &CreatedKey) -> Response {
    let body = CreatedKeyJson::new(created, state.manager.now());
    match serde_json::to_vec(&body) {
        Ok(body) => (
            StatusCode::CREATED,
            [
                (CONTENT_TYPE, "application/json"),
                (CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A JSON answer that no cache keeps: key records are an account's own business.
fn private(value: impl serde::Serialize) -> Response {
    let mut response = axum::Json(value).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    response
}

fn record(state: &AppState, record: &crate::record::KeyRecord) -> Response {
    private(KeyRecordJson::new(record, state.manager.now()))
}

/// Where a page of a listing resumes: after the key created at that many nanoseconds
/// since the Unix epoch with that id, in the listing's order (nanoseconds, as the
/// listing orders them). It names a position, not a key, so it
/// keeps working when that key is deleted.
fn cursor_of(record: &crate::record::KeyRecord) -> String {
    let nanos = record
        .created_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("{nanos}.{}", record.id().as_str())
}

/// A cursor `cursor_of` wrote: nanoseconds that fit a `u64`, and a key id.
fn parse_cursor(cursor: &str) -> Option<(u64, KeyId)> {
    let (nanos, id) = cursor.split_once('.')?;
    Some((nanos.parse().ok()?, KeyId::parse(id).ok()?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
    after: Option<String>,
}

/// The page a listing's query asks for: `limit` (50 unless it says, 1 to 100), and the
/// store page to read, one key longer: the extra key says whether a next page exists,
/// and is not shown.
fn listing(
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(usize, Page), Problem> {
    let Query(query) = query.map_err(|rejection| Problem::bad_request(rejection.body_text()))?;
    let limit = match query.limit {
        None => 50,
        Some(limit @ 1..=100) => limit,
        Some(_) => return Err(Problem::bad_request("`limit` is 1 to 100")),
    };
    let after = match &query.after {
        None => None,
        Some(after) => {
            let (nanos, id) = parse_cursor(after)
                .ok_or_else(|| Problem::bad_request("`after` takes the `next` of a page"))?;
            Some(Cursor {
                created_at: std::time::UNIX_EPOCH + Duration::from_nanos(nanos),
                id,
            })
        }
    };
    let page = Page {
        after,
        limit: limit + 1,
    };
    Ok((limit, page))
}

/// A page of `records` (read one longer than `limit`) as the API answers it.
fn answer_page(
    state: &AppState,
    mut records: Vec<crate::record::KeyRecord>,
    limit: usize,
) -> Response {
    let more = records.len() > limit;
    records.truncate(limit);
    let next = more.then(|| records.last().map(cursor_of)).flatten();
    let now = state.manager.now();
    let keys = records
        .iter()
        .map(|record| KeyRecordJson::new(record, now))
        .collect();
    private(KeyPageJson::new(keys, next))
}

#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/users/{user}", tag = "keys",
    summary = "A user's keys: one's own, or any user's for an app admin",
    params(
        ("user" = String, Path, description = "The user"),
        ("limit" = Option<usize>, Query, description = "Keys per page, 1 to 100 (default 50)"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
    ),
    responses((status = 200, description = "One page of keys, oldest first", body = KeyPageJson), (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No one is signed in, or no key was sent", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The actor may not do this", body = Problem, content_type = "application/problem+json"), (status = 503, description = "The key store is unavailable", body = Problem, content_type = "application/problem+json"))))]
async fn list_user(
    State(state): State<AppState>,
    Acting(actor): Acting,
    user: Result<Path<UserSegment>, axum::extract::rejection::PathRejection>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Path(UserSegment { user }) =
        user.map_err(|rejection| Problem::bad_request(rejection.body_text()))?;
    let (limit, page) = listing(query)?;
    let records = state.manager.list_user_as(&actor, &user, page).await?;
    Ok(answer_page(&state, records, limit))
}

/// The `{space}` of `/spaces/{space}`.
#[derive(Deserialize)]
struct SpaceSegment {
    space: String,
}

#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/spaces/{space}", tag = "keys",
    summary = "A space's keys: all of them for its admins, otherwise one's own",
    params(
        ("space" = String, Path, description = "The space"),
        ("limit" = Option<usize>, Query, description = "Keys per page, 1 to 100 (default 50)"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
    ),
    responses((status = 200, description = "One page of keys, oldest first", body = KeyPageJson), (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No one is signed in, or no key was sent", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The actor may not do this", body = Problem, content_type = "application/problem+json"), (status = 503, description = "The key store is unavailable", body = Problem, content_type = "application/problem+json"))))]
async fn list_space(
    State(state): State<AppState>,
    Acting(actor): Acting,
    space: Result<Path<SpaceSegment>, axum::extract::rejection::PathRejection>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Path(SpaceSegment { space }) =
        space.map_err(|rejection| Problem::bad_request(rejection.body_text()))?;
    let (limit, page) = listing(query)?;
    let records = state.manager.list_space_as(&actor, &space, page).await?;
    Ok(answer_page(&state, records, limit))
}

#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/", tag = "keys",
    summary = "List the actor's keys",
    params(
        ("limit" = Option<usize>, Query, description = "Keys per page, 1 to 100 (default 50)"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
    ),
    responses((status = 200, description = "One page of keys, oldest first", body = KeyPageJson), (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No one is signed in, or no key was sent", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The actor may not do this", body = Problem, content_type = "application/problem+json"), (status = 503, description = "The key store is unavailable", body = Problem, content_type = "application/problem+json"))))]
async fn list(
    State(state): State<AppState>,
    Acting(actor): Acting,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    // The actor's own keys are its user's that it may see: within its space, for a key
    // bound to one.
    let (limit, page) = listing(query)?;
    let records = state
        .manager
        .list_user_as(&actor, actor.user(), page)
        .await?;
    Ok(answer_page(&state, records, limit))
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/", tag = "keys",
    summary = "Create a key: its plaintext is in this response only",
    request_body = CreateKeyRequest,
    responses((status = 201, description = "The new key, shown once (`Cache-Control: no-store`)", body = CreatedKeyJson), (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No one is signed in, or no key was sent", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The actor may not do this", body = Problem, content_type = "application/problem+json"), (status = 409, description = "The key is inactive, or its owner holds the most keys allowed", body = Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"), (status = 503, description = "The key store is unavailable", body = Problem, content_type = "application/problem+json"))))]
async fn create(
    State(state): State<AppState>,
    Acting(actor): Acting,
    JsonBody(body): JsonBody<CreateKeyRequest>,
) -> Result<Response, Problem> {
    let mut new = NewKey::new(actor.user(), body.name).with_scopes(scopes(&body.scopes)?);
    if let Some(space) = body.space {
        new = new.with_space(space);
    }
    if let Some(seconds) = body.expires_in {
        new = new.expires_in(Duration::from_secs(seconds));
    }
    let made = state.manager.create_as(&actor, new).await?;
    Ok(created(&state, &made))
}

#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/{id}", tag = "keys",
    summary = "One key's record",
    params(("id" = String, Path, description = "The key id")),
    responses((status = 200, description = "The key's record (no secret)", body = KeyRecordJson), (status = 401, description = "No one is signed in, or no key was sent", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The actor may not do this", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such key, or none the actor may see", body = Problem, content_type = "application/problem+json"), (status = 503, description = "The key store is unavailable", body = Problem, content_type = "application/problem+json"))))]
async fn one(
    State(state): State<AppState>,
    Acting(actor): Acting,
    Id(id): Id,
) -> Result<Response, Problem> {
    let found = state.manager.get_as(&actor, &id).await?;
    Ok(record(&state, &found))
}

#[cfg_attr(feature = "openapi", utoipa::path(patch, path = "/{id}", tag = "keys",
    summary = "Rename, narrow scopes, set or clear the expiry, pause or resume",
    params(("id" = String, Path, description = "The key id")),
    request_body = EditKeyRequest,
    responses((status = 200, description = "The edited record", body = KeyRecordJson), (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No one is signed in, or no key was sent", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The actor may not do this", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such key, or none the actor may see", body = Problem, content_type = "application/problem+json"), (status = 409, description = "The key is inactive, or its owner holds the most keys allowed", body = Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"), (status = 503, description = "The key store is unavailable", body = Problem, content_type = "application/problem+json"))))]
async fn edit(
    State(state): State<AppState>,
    Acting(actor): Acting,
    Id(id): Id,
    JsonBody(body): JsonBody<EditKeyRequest>,
) -> Result<Response, Problem> {
    let mut change = KeyEdit::new();
    if let Some(name) = body.name {
        change = change.rename(name);
    }
    if let Some(names) = body.scopes {
        change = change.scopes(scopes(&names)?);
    }
    if let Some(expires_in) = body.expires_in {
        let at = match expires_in {
            None => None,
            Some(seconds) => Some(
                state
                    .manager
                    .now()
                    .checked_add(Duration::from_secs(seconds))
                    .ok_or_else(|| Problem::bad_request("expires_in is too large"))?,
            ),
        };
        change = change.expires_at(at);
    }
    change = match body.disabled {
        Some(true) => change.disable(),
        Some(false) => change.enable(),
        None => change,
    };
    let edited = state.manager.edit_as(&actor, &id, change).await?;
    Ok(record(&state, &edited))
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/{id}/regenerate", tag = "keys",
    summary = "A new secret; the old one stops working (after `grace` seconds, if given)",
    params(("id" = String, Path, description = "The key id")),
    request_body(content = Option<RegenerateRequest>, description = "Optional; an empty body means no grace"),
    responses((status = 201, description = "The new key, shown once (`Cache-Control: no-store`)", body = CreatedKeyJson), (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No one is signed in, or no key was sent", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The actor may not do this", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such key, or none the actor may see", body = Problem, content_type = "application/problem+json"), (status = 409, description = "The key is inactive, or its owner holds the most keys allowed", body = Problem, content_type = "application/problem+json"), (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"), (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"), (status = 503, description = "The key store is unavailable", body = Problem, content_type = "application/problem+json"))))]
async fn regenerate(
    State(state): State<AppState>,
    Acting(actor): Acting,
    Id(id): Id,
    JsonBody(body): JsonBody<Option<RegenerateRequest>>,
) -> Result<Response, Problem> {
    let grace = body.unwrap_or_default().grace();
    let made = state.manager.regenerate_as(&actor, &id, grace).await?;
    Ok(created(&state, &made))
}

#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/{id}", tag = "keys",
    summary = "Revoke a key: refused from now on",
    params(("id" = String, Path, description = "The key id")),
    responses((status = 204, description = "Revoked"), (status = 401, description = "No one is signed in, or no key was sent", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The actor may not do this", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such key, or none the actor may see", body = Problem, content_type = "application/problem+json"), (status = 503, description = "The key store is unavailable", body = Problem, content_type = "application/problem+json"))))]
async fn revoke(
    State(state): State<AppState>,
    Acting(actor): Acting,
    Id(id): Id,
) -> Result<StatusCode, Problem> {
    state.manager.revoke_as(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `{user}` of `/users/{user}/revoke`.
#[derive(Deserialize)]
struct UserSegment {
    user: String,
}

#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/users/{user}/revoke", tag = "keys",
    summary = "Revoke every key of a user (app admins only)",
    params(("user" = String, Path, description = "The user")),
    responses((status = 200, description = "How many keys were revoked", body = RevokedJson), (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No one is signed in, or no key was sent", body = Problem, content_type = "application/problem+json"), (status = 403, description = "The actor may not do this", body = Problem, content_type = "application/problem+json"), (status = 503, description = "The key store is unavailable", body = Problem, content_type = "application/problem+json"))))]
async fn revoke_all(
    State(state): State<AppState>,
    Acting(actor): Acting,
    user: Result<Path<UserSegment>, axum::extract::rejection::PathRejection>,
) -> Result<Response, Problem> {
    // By name: nested under a path with parameters of its own (`/spaces/{space}/keys`),
    // the path holds those too.
    let Path(UserSegment { user }) =
        user.map_err(|rejection| Problem::bad_request(rejection.body_text()))?;
    let revoked = state.manager.revoke_all_as(&actor, &user).await?;
    Ok(private(RevokedJson::new(revoked)))
}

/// The management API's OpenAPI document (feature `openapi`).
#[cfg(feature = "openapi")]
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "keygate management API",
        description = "Create, list, edit, regenerate and revoke API keys on behalf of the \
                       signed-in person or the calling key. Errors are \
                       application/problem+json (RFC 9457) with stable `type`s."
    ),
    paths(list, create, one, edit, regenerate, revoke, list_user, revoke_all, list_space),
    components(schemas(
        KeyRecordJson, KeyPageJson, CreatedKeyJson, CreateKeyRequest, EditKeyRequest,
        RegenerateRequest, RevokedJson, Problem
    )),
    tags((name = "keys", description = "API keys"))
)]
struct ManagementApi;

#[cfg(feature = "openapi")]
impl KeyManager {
    /// The OpenAPI 3.1 document of [`KeyManager::management`], its paths relative to
    /// where you nest it (`/`, `/{id}`, …). [`KeyManager::openapi_at`] places them.
    pub fn openapi() -> utoipa::openapi::OpenApi {
        <ManagementApi as utoipa::OpenApi>::openapi()
    }

    /// [`KeyManager::openapi`] with its paths under `base`, as axum routes them when you
    /// `.nest(base, …)` the router: the list is `base` itself (not `base/`, which axum does
    /// not route there). Merge it into your own document with `OpenApi::merge`; the
    /// router serves it at `GET /openapi.json` under the path it is nested at.
    ///
    /// ```
    /// use keygate::KeyManager;
    ///
    /// let document = KeyManager::openapi_at("/api-keys");
    /// assert!(document.paths.paths.contains_key("/api-keys"));
    /// assert!(document.paths.paths.contains_key("/api-keys/{id}/regenerate"));
    /// ```
    pub fn openapi_at(base: &str) -> utoipa::openapi::OpenApi {
        let base = base.trim_end_matches('/');
        let mut document = Self::openapi();
        document.paths.paths = std::mem::take(&mut document.paths.paths)
            .into_iter()
            .map(|(path, item)| {
                let joined = match (base, path.as_str()) {
                    ("", path) => path.to_owned(),
                    (base, "/") => base.to_owned(),
                    (base, path) => format!("{base}{path}"),
                };
                (joined, item)
            })
            .collect();
        document
    }
}

/// `GET /openapi.json`: the document, its paths under the path the router is nested at.
#[cfg(feature = "openapi")]
async fn openapi_document(request: Request) -> Response {
    let inner = request.uri().path();
    let full = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or(inner, |original| original.path());
    let base = full.strip_suffix(inner).unwrap_or("");
    private(KeyManager::openapi_at(base))
}
