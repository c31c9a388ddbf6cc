//! [`ApiKeyLayer`], [`ApiKeyService`] and their [`ResponseFuture`]: the tower middleware
//! that authenticates every request. [`Keygate`](crate::Keygate) builds the layer.

pub(crate) mod decide;
pub(crate) mod future;
pub(crate) mod service;
pub(crate) mod shared;
pub(crate) mod verify;

use std::fmt;
use std::sync::Arc;

use tower_layer::Layer;

use crate::audit::queue::AuditStats;
use crate::error::ConfigError;
use crate::policy::scope::RequireScopeLayer;
use crate::scopes::Scopes;
use crate::store::error::StoreError;

pub use future::ResponseFuture;
pub use service::ApiKeyService;
use shared::Shared;

/// Authenticates every request by API key before it reaches the wrapped service.
///
/// On success the request reaches the inner service with an [`Identity`](crate::Identity)
/// in its extensions (and, by default, without the credential header). On failure the
/// inner service is not called and the client gets an RFC 6750 response:
///
/// | request | response |
/// |---|---|
/// | no credential | 401, `WWW-Authenticate: Bearer realm="api"` |
/// | malformed, unknown, wrong secret, revoked or expired key | 401, `error="invalid_token"`, one body for all |
/// | two credentials (repeated header, or two sources) | 400, `error="invalid_request"` |
/// | valid key bound to another space (with a [`SpaceResolver`](crate::SpaceResolver)) | 403, `error="insufficient_scope"` |
/// | store error, or no answer within the store timeout | 503 with `Retry-After` |
///
/// With only named headers as sources (no `Bearer`), the challenges name the header
/// instead: `Key realm="api", header="x-api-key"` (see [`KeySource`](crate::KeySource)).
///
/// Every decision is also an [`AuditEvent`](crate::AuditEvent) with its precise reason,
/// delivered to an [`AuditSink`](crate::AuditSink) off the request path (`tracing` by
/// default).
///
/// Build it with [`Keygate::layer`](crate::Keygate::layer), so that it agrees with the
/// [`KeyManager`](crate::KeyManager) on key format, hasher and clock. It is cheap to clone:
/// its configuration sits behind one `Arc`.
///
/// ```
/// use axum::{Router, routing::get};
/// use keygate::{Identity, KeySource, Keygate, MemoryStore};
///
/// async fn me(identity: Identity) -> String {
///     format!("hello, {}", identity.user())
/// }
///
/// let keygate = Keygate::new(MemoryStore::new())
///     .with_sources([KeySource::bearer(), KeySource::header("x-api-key")?])?
///     .with_realm("example")?;
/// let app: Router = Router::new().route("/me", get(me)).layer(keygate.layer());
/// # Ok::<(), keygate::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ApiKeyLayer {
    pub(crate) shared: Arc<Shared>,
}

impl ApiKeyLayer {
    /// Writes pending last-used data to the store now; returns how many keys were written.
    ///
    /// # Errors
    ///
    /// The store's error; the data stays pending for the next flush.
    pub async fn flush_usage(&self) -> Result<usize, StoreError> {
        match &self.shared.usage {
            Some(usage) => usage.flush().await,
            None => Ok(0),
        }
    }

    /// A per-route guard that lets only keys holding `scope` through; others get 403
    /// `insufficient_scope` naming the scope. It answers with this layer's realm, hook and
    /// audit. [`Keygate::require_scope`](crate::Keygate::require_scope) does the same.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidScope`] when `scope` is not a valid scope token.
    pub fn require_scope(&self, scope: &str) -> Result<RequireScopeLayer, ConfigError> {
        Scopes::new([scope]).map_err(|error| ConfigError::InvalidScope(error.to_string()))?;
        Ok(RequireScopeLayer::new(scope, self.shared.context.clone()))
    }

    /// Counters of the audit pipeline and usage tracking.
    pub fn stats(&self) -> LayerStats {
        LayerStats {
            audit: self
                .shared
                .context
                .audit
                .as_ref()
                .map_or_else(AuditStats::default, |audit| audit.stats()),
            usage_dropped: self
                .shared
                .usage
                .as_ref()
                .map_or(0, |usage| usage.dropped()),
        }
    }
}

/// Counters that tell whether the layer had to shed audit or usage data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerStats {
    /// The audit pipeline's counters.
    pub audit: AuditStats,
    /// Uses not tracked because `max_keys` distinct keys were already pending.
    pub usage_dropped: u64,
}

impl fmt::Debug for ApiKeyLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKeyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiKeyService {
            inner,
            shared: self.shared.clone(),
        }
    }
}
