//! The quickstart's routes, kept apart from `main` so the integration tests drive the very
//! same app (`tests/quickstart.rs` includes this file): a demo API behind the keygate
//! layer, keygate's management API nested at `/keys` for keys holding `keys:write`, and
//! the settings page behind a demo login (`login.rs`).

#[path = "login.rs"]
mod login;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, HOST};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::{Json, Router};
use keygate::{
    Actor, ConfigError, Identity, KeyId, KeyManager, KeySource, KeyStoreWrite, KeyWithScope,
    Keygate, ManageError, Problem, SpaceResolver,
};
use serde_json::{Value, json};

#[allow(unused_imports)] // `main` and the browser test use them; other tests do not
pub use login::{PEOPLE, SETTINGS, draw_password};

/// The scope that `/keys` requires.
pub const KEYS_WRITE: &str = "keys:write";

/// The scope that reads a space's items with a user-wide key.
pub const ITEMS_READ: &str = "items:read";

/// Where the app reads a key's usage over time and its recent denials: the SQL audit
/// trail, when keys live in a database.
pub trait Trail: Send + Sync + 'static {
    /// A key's last 30 days, its recent denials and their reasons, as JSON.
    fn usage(&self, id: KeyId, now: SystemTime) -> BoxFuture<'_, Result<Value, String>>;
}

/// A boxed future borrowing its trail.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

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
#[allow(dead_code)] // `main` and the SQLite test use it; the other tests do not
pub fn as_trail(trail: keygate::SqlAuditSink) -> Arc<dyn Trail> {
    Arc::new(trail)
}

/// What the app is built with besides the configuration.
#[derive(Clone, Default)]
pub struct Options {
    /// Where `GET /keys/{id}/usage` reads from.
    pub trail: Option<Arc<dyn Trail>>,
    /// The demo login's password; `None` draws one (nobody can sign in without it).
    pub password: Option<String>,
    /// The `Host` values the app answers; `None` answers any. A server on 127.0.0.1
    /// names its own, so that a web page whose domain is re-pointed at 127.0.0.1 (DNS
    /// rebinding) is not "same origin" with the settings page.
    pub hosts: Option<Vec<String>>,
}

/// What the handlers share.
#[derive(Clone)]
struct AppState {
    manager: KeyManager,
    trail: Option<Arc<dyn Trail>>,
}

/// The app, and the configuration behind it (keep it to flush usage at shutdown).
#[allow(dead_code)] // the tests drive it; `main` adds the trail
pub fn router<S: KeyStoreWrite>(keygate: &Keygate<S>) -> Result<(Router, Keygate<S>), ConfigError> {
    build(keygate, Options::default())
}

/// [`router`], with `GET /keys/{id}/usage` answered from `trail`.
#[allow(dead_code)] // the SQLite test uses it; `main` builds with options
pub fn router_with_trail<S: KeyStoreWrite>(
    keygate: &Keygate<S>,
    trail: Option<Arc<dyn Trail>>,
) -> Result<(Router, Keygate<S>), ConfigError> {
    build(
        keygate,
        Options {
            trail,
            ..Options::default()
        },
    )
}

/// The whole quickstart: the demo API and `/keys` behind the keygate layer, the login
/// and the settings page beside them.
pub fn build<S: KeyStoreWrite>(
    keygate: &Keygate<S>,
    options: Options,
) -> Result<(Router, Keygate<S>), ConfigError> {
    let keygate = keygate
        .clone()
        .with_sources([KeySource::bearer(), KeySource::header("x-api-key")?])?
        .with_space_resolver(SpaceResolver::path_prefix("/spaces/")?);
    let manager = keygate.manager();
    // The JSON API, for keys holding `keys:write`: `POST /keys`, `GET /keys`,
    // `GET|PATCH|DELETE /keys/{id}`, `POST /keys/{id}/regenerate`.
    let demo = Router::new()
        .route("/keys/{id}/usage", get(key_usage))
        .route("/me", get(me))
        .route("/spaces/{space}/items", get(space_items))
        .with_state(AppState {
            manager: manager.clone(),
            trail: options.trail,
        });
    let api = Router::new()
        .nest("/keys", manager.management(KeyWithScope::new(KEYS_WRITE)))
        .merge(demo)
        .layer(keygate.layer());
    let people = login::routes(&manager, options.password);
    let app = Router::new()
        .merge(api)
        .merge(people)
        .route("/health", get(health))
        .route("/", get(|| async { Redirect::to(login::SETTINGS) }));
    let app = match options.hosts {
        Some(hosts) => app.layer(middleware::from_fn(move |request: Request, next: Next| {
            let known = request
                .headers()
                .get(HOST)
                .and_then(|host| host.to_str().ok())
                .is_some_and(|host| hosts.iter().any(|known| known.eq_ignore_ascii_case(host)));
            async move {
                if known {
                    next.run(request).await
                } else {
                    (StatusCode::MISDIRECTED_REQUEST, "unknown host").into_response()
                }
            }
        })),
        None => app,
    };
    Ok((app, keygate))
}

/// A key's last 30 days by day, its 20 latest denials and its denials by reason, for a
/// key holding `keys:write` that may see it.
async fn key_usage(
    State(state): State<AppState>,
    caller: Identity,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    if !caller.scopes().contains(KEYS_WRITE) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed",
            format!("reading usage needs scope {KEYS_WRITE}"),
        ));
    }
    // A malformed id cannot name any key: answer as for an unknown one.
    let id = KeyId::parse(&id).map_err(|_| Problem::from(ManageError::NotFound))?;
    state.manager.get_as(&Actor::key(&caller), &id).await?;
    let Some(trail) = &state.trail else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "no-trail",
            "No audit trail",
            "usage is kept in the SQL audit trail, which the quickstart keeps beside its \
             database (the default, or DATABASE_URL=postgres://…)",
        ));
    };
    let usage = trail
        .usage(id, state.manager.now())
        .await
        .map_err(|error| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The audit trail is unavailable",
                error,
            )
        })?;
    // An account's own business: no cache keeps it.
    Ok(([(CACHE_CONTROL, "no-store")], Json(usage)))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn me(identity: Identity) -> impl IntoResponse {
    private(json!({
        "key_id": identity.key_id().as_str(),
        "user": identity.user(),
        "space": identity.space(),
        "scopes": identity.scopes().iter().collect::<Vec<_>>(),
        "name": identity.name(),
    }))
}

/// JSON that no cache keeps: it answers for one key.
fn private(value: Value) -> impl IntoResponse {
    ([(CACHE_CONTROL, "no-store")], Json(value))
}

/// A space's items: for a key bound to that space (the layer has already refused keys
/// bound to another one, 403), the admin key (`keys:write`), or a user-wide key holding
/// `items:read` of a person who administers the space. Anyone else: 403.
async fn space_items(
    identity: Identity,
    Path(space): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let allowed = identity.space().is_some()
        || identity.scopes().contains(KEYS_WRITE)
        || (identity.scopes().contains(ITEMS_READ) && login::administers(identity.user(), &space));
    if !allowed {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed",
            format!(
                "reading a space's items needs a token of that space, or {ITEMS_READ} as one of its admins"
            ),
        ));
    }
    Ok(private(json!({
        "space": space,
        "items": ["first item", "second item"],
        "read_by": identity.key_id().as_str(),
    })))
}

fn unix(at: Option<SystemTime>) -> Option<u64> {
    at.map(|at| at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}
