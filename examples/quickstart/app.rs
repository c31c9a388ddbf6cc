//! The quickstart's routes, kept apart from `main` so the integration tests drive the very
//! same app (`tests/quickstart.rs` includes this file).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use keygate::{
    Actor, ApiKey, ConfigError, Identity, KeyEdit, KeyId, KeyManager, KeyRecord, KeySource,
    KeyStoreWrite, Keygate, ManageError, NewKey, Scopes, SpaceResolver,
};
use serde::Deserializer;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The scope that `/keys` requires.
pub const KEYS_WRITE: &str = "keys:write";

/// Where the app reads a key's usage over time and its recent denials: the SQL audit
/// trail, when keys live in a database.
pub trait Trail: Send + Sync + 'static {
    /// A key's last 30 days, its recent denials and their reasons, as JSON.
    fn usage(&self, id: KeyId, now: SystemTime) -> BoxFuture<'_, Result<Value, String>>;
}

/// A boxed future borrowing its trail.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl Trail for keygate::SqlAuditSink {
    fn usage(&self, id: KeyId, now: SystemTime) -> BoxFuture<'_, Result<Value, String>> {
        use keygate::{AuditQuery, Granularity, UsageOf};
        Box::pin(async move {
            let month = now - Duration::from_secs(30 * 86_400);
            let days = self
                .usage(&UsageOf::Key(id), Granularity::Day, month, now)
                .await
                .map_err(|e| e.to_string())?;
            let denials = AuditQuery::new().key(id).since(month).denied_only();
            let recent = self
                .events(&denials.clone().limit(20))
                .await
                .map_err(|e| e.to_string())?;
            let reasons = self
                .denials_by_reason(&denials)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({
                "days": days.iter().map(|d| json!({
                    "day": unix(Some(d.bucket.0)),
                    "allowed": d.allowed,
                    "denied": d.denied,
                })).collect::<Vec<_>>(),
                "recent_denials": recent.iter().map(|e| json!({
                    "at": unix(Some(e.at.0)),
                    "reason": e.reason,
                    "method": e.method,
                    "path": e.path,
                })).collect::<Vec<_>>(),
                "denials_by_reason": reasons.iter().map(|r| json!({
                    "reason": r.reason,
                    "count": r.count,
                })).collect::<Vec<_>>(),
            }))
        })
    }
}

/// The SQL trail as the app reads it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[allow(dead_code)] // `main` and the SQLite test use it; the other tests do not
pub fn as_trail(trail: keygate::SqlAuditSink) -> Arc<dyn Trail> {
    Arc::new(trail)
}

/// Without a SQL store there is no trail to read.
#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
#[allow(dead_code)] // `main` uses it; the tests do not
pub fn as_trail(never: std::convert::Infallible) -> Arc<dyn Trail> {
    match never {}
}

/// What the handlers share.
#[derive(Clone)]
struct AppState {
    manager: KeyManager,
    trail: Option<Arc<dyn Trail>>,
}

impl FromRef<AppState> for KeyManager {
    fn from_ref(state: &AppState) -> Self {
        state.manager.clone()
    }
}

/// The app, and the configuration behind it (keep it to flush usage at shutdown).
#[allow(dead_code)] // the tests drive it; `main` adds the trail
pub fn router<S: KeyStoreWrite>(keygate: &Keygate<S>) -> Result<(Router, Keygate<S>), ConfigError> {
    router_with_trail(keygate, None)
}

/// [`router`], with `GET /keys/{id}/usage` answered from `trail`.
pub fn router_with_trail<S: KeyStoreWrite>(
    keygate: &Keygate<S>,
    trail: Option<Arc<dyn Trail>>,
) -> Result<(Router, Keygate<S>), ConfigError> {
    let keygate = keygate
        .clone()
        .with_sources([KeySource::bearer(), KeySource::header("x-api-key")?])?
        .with_space_resolver(SpaceResolver::path_prefix("/spaces/")?);
    let keys = Router::new()
        .route("/keys", post(create_key).get(list_keys))
        .route("/keys/{id}/regenerate", post(regenerate_key))
        .route("/keys/{id}", delete(revoke_key).patch(edit_key))
        .route("/keys/{id}/usage", get(key_usage))
        .route_layer(keygate.require_scope(KEYS_WRITE)?);
    let app = Router::new()
        .merge(keys)
        .route("/me", get(me))
        .route("/spaces/{space}/items", get(space_items))
        .layer(keygate.layer())
        .route("/health", get(health))
        .with_state(AppState {
            manager: keygate.manager(),
            trail,
        });
    Ok((app, keygate))
}

/// A key's last 30 days by day, its 20 latest denials and its denials by reason, for a
/// key that may see it.
async fn key_usage(
    State(state): State<AppState>,
    caller: Identity,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    state.manager.get_as(&Actor::key(&caller), &id).await?;
    let Some(trail) = &state.trail else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "usage is kept in the SQL audit trail: run with DATABASE_URL=sqlite://keys.db \
             --features sqlite (or postgres://…)"
                .to_owned(),
        ));
    };
    let usage = trail
        .usage(id, state.manager.now())
        .await
        .map_err(|error| ApiError(StatusCode::SERVICE_UNAVAILABLE, error))?;
    Ok(Json(usage))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn me(identity: Identity) -> Json<Value> {
    Json(identity_json(&identity))
}

/// The layer has already refused keys bound to another space (403). A user-wide key
/// reaches here: this demo has no membership table, so it lets the user in; a real app
/// checks that the user belongs to `space` at this point.
async fn space_items(identity: Identity, Path(space): Path<String>) -> Json<Value> {
    Json(json!({
        "space": space,
        "items": ["first item", "second item"],
        "read_by": identity.key_id().as_str(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    space: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    /// Seconds until the key expires.
    expires_in: Option<u64>,
}

async fn create_key(
    State(manager): State<KeyManager>,
    caller: Identity,
    JsonBody(body): JsonBody<CreateKey>,
) -> Result<Response, ApiError> {
    let scopes = Scopes::new(&body.scopes).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut new = NewKey::new(caller.user(), body.name).with_scopes(scopes);
    if let Some(space) = body.space {
        new = new.with_space(space);
    }
    if let Some(seconds) = body.expires_in {
        new = new.expires_in(Duration::from_secs(seconds));
    }
    let created = manager.create_as(&Actor::key(&caller), new).await?;
    Ok(created_response(&created.key, &created.record))
}

async fn list_keys(
    State(manager): State<KeyManager>,
    caller: Identity,
) -> Result<Json<Value>, ApiError> {
    let records = manager.list_as(&Actor::key(&caller)).await?;
    Ok(Json(json!({
        "keys": records.iter().map(record_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Regenerate {
    /// Seconds the old key keeps working; absent means it dies at once.
    grace: Option<u64>,
}

async fn regenerate_key(
    State(manager): State<KeyManager>,
    caller: Identity,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Option<Regenerate>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let grace = body.unwrap_or_default().grace.map(Duration::from_secs);
    let created = manager
        .regenerate_as(&Actor::key(&caller), &id, grace)
        .await?;
    Ok(created_response(&created.key, &created.record))
}

async fn revoke_key(
    State(manager): State<KeyManager>,
    caller: Identity,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    manager
        .revoke_as(&Actor::key(&caller), &parse_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A JSON request body, read strictly: a body sent without `Content-Type: application/json`,
/// an unknown field or a wrong value is refused with a JSON error, never read as something
/// else. An empty body reads as `null`, which only an `Option` accepts (`regenerate` with
/// no grace).
struct JsonBody<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError(rejection.status(), rejection.body_text()))?;
        if bytes.is_empty() {
            return serde_json::from_slice(b"null")
                .map(Self)
                .map_err(|_| ApiError::bad_request("a JSON body is required".to_owned()));
        }
        if !is_json {
            return Err(ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as `Content-Type: application/json`".to_owned(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|error| ApiError::bad_request(format!("invalid JSON body: {error}")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditKey {
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    scopes: Option<Vec<String>>,
    /// Seconds from now until the key expires; `null` takes the expiry away.
    #[serde(default, deserialize_with = "present")]
    expires_in: Option<Option<u64>>,
    #[serde(default, deserialize_with = "not_null")]
    disabled: Option<bool>,
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn present<'de, D: Deserializer<'de>>(field: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(field).map(Some)
}

/// A field that may be absent, but not `null`: nothing to take away, so `null` is a
/// mistake to report rather than an edit to skip.
fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    field: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(field).map(Some)
}

async fn edit_key(
    State(manager): State<KeyManager>,
    caller: Identity,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<EditKey>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    let mut edit = KeyEdit::new();
    if let Some(name) = body.name {
        edit = edit.rename(name);
    }
    if let Some(scopes) = body.scopes {
        let scopes = Scopes::new(&scopes).map_err(|e| ApiError::bad_request(e.to_string()))?;
        edit = edit.scopes(scopes);
    }
    if let Some(expires_in) = body.expires_in {
        let at = match expires_in {
            None => None,
            Some(seconds) => Some(
                manager
                    .now()
                    .checked_add(Duration::from_secs(seconds))
                    .ok_or_else(|| ApiError::bad_request("expires_in is too large".to_owned()))?,
            ),
        };
        edit = edit.expires_at(at);
    }
    edit = match body.disabled {
        Some(true) => edit.disable(),
        Some(false) => edit.enable(),
        None => edit,
    };
    let record = manager.edit_as(&Actor::key(&caller), &id, edit).await?;
    Ok(Json(record_json(&record)))
}

fn parse_id(id: &str) -> Result<KeyId, ApiError> {
    // A malformed id cannot name any key: answer as for an unknown one.
    KeyId::parse(id).map_err(|_| ApiError::from(ManageError::NotFound))
}

/// The 201 that carries a new plaintext key: never cached, and serialized straight from
/// the key into the body rather than through a `serde_json::Value` that would keep a copy.
fn created_response(key: &ApiKey, record: &KeyRecord) -> Response {
    #[derive(Serialize)]
    struct Created<'a> {
        key: &'a str,
        note: &'static str,
        record: Value,
    }
    let body = Created {
        key: key.expose_secret(),
        note: "this is the only time the key is shown; store it now",
        record: record_json(record),
    };
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

fn identity_json(identity: &Identity) -> Value {
    json!({
        "key_id": identity.key_id().as_str(),
        "user": identity.user(),
        "space": identity.space(),
        "scopes": identity.scopes().iter().collect::<Vec<_>>(),
        "name": identity.name(),
    })
}

fn record_json(record: &KeyRecord) -> Value {
    let identity = &record.identity;
    json!({
        "id": identity.key_id().as_str(),
        "name": identity.name(),
        "preview": record.preview,
        "user": identity.user(),
        "space": identity.space(),
        "scopes": identity.scopes().iter().collect::<Vec<_>>(),
        "created_at": unix(Some(record.created_at)),
        "expires_at": unix(record.expires_at),
        "revoked_at": unix(record.revoked_at),
        "last_used_at": unix(record.last_used_at),
        "use_count": record.use_count,
        "disabled": record.disabled,
        "rate_limit": record.rate_limit.map(|limit| json!({
            "count": limit.count(),
            "period_ms": limit.period().as_millis() as u64,
            "burst": limit.burst(),
        })),
        "quota": record.quota.map(|quota| json!({
            "limit": quota.limit(),
            "refill": quota.to_parts().1,
        })),
    })
}

fn unix(at: Option<SystemTime>) -> Option<u64> {
    at.map(|at| at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// Errors of the key endpoints, as JSON.
struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(message: String) -> Self {
        Self(StatusCode::BAD_REQUEST, message)
    }
}

impl From<ManageError> for ApiError {
    fn from(error: ManageError) -> Self {
        let status = match &error {
            error if error.is_forbidden() => StatusCode::FORBIDDEN,
            ManageError::Invalid(_) => StatusCode::BAD_REQUEST,
            ManageError::NotFound => StatusCode::NOT_FOUND,
            ManageError::Revoked | ManageError::Expired | ManageError::TooManyKeys { .. } => {
                StatusCode::CONFLICT
            }
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}
