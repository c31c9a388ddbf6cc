//! [`RequireScopeLayer`]: a per-route guard that admits only keys holding a scope.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::audit::{AuditEvent, Outcome};
use crate::identity::Identity;
use crate::layer::{ResponseFuture, Shared};
use crate::reject::{Insufficient, Rejection};

/// Admits only requests whose [`Identity`] holds one scope; made by
/// [`ApiKeyLayer::require_scope`](crate::ApiKeyLayer::require_scope) and applied inside the
/// [`ApiKeyLayer`](crate::ApiKeyLayer) (axum: `route_layer`).
///
/// A key without the scope gets 403 `insufficient_scope` with `scope="…"` in the
/// challenge, and the denial is audited with [`Reason::MissingScope`](crate::Reason).
#[derive(Clone)]
pub struct RequireScopeLayer {
    scope: Arc<str>,
    shared: Arc<Shared>,
}

impl RequireScopeLayer {
    pub(crate) fn new(scope: &str, shared: Arc<Shared>) -> Self {
        Self {
            scope: scope.into(),
            shared,
        }
    }
}

impl fmt::Debug for RequireScopeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopeLayer")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopeService {
            inner,
            guard: self.clone(),
        }
    }
}

/// The service made by [`RequireScopeLayer`].
#[derive(Clone)]
pub struct RequireScopeService<S> {
    inner: S,
    guard: RequireScopeLayer,
}

impl<S: fmt::Debug> fmt::Debug for RequireScopeService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopeService")
            .field("inner", &self.inner)
            .field("scope", &self.guard.scope)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScopeService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let identity = request.extensions().get::<Identity>();
        let rejection = match identity {
            Some(identity) if identity.scopes().contains(&self.guard.scope) => {
                return ResponseFuture::inner(self.inner.call(request));
            }
            Some(_) => Rejection::Forbidden(Insufficient::Scope(self.guard.scope.to_string())),
            None => Rejection::Missing,
        };
        // The layer that verified the identity hands over its current configuration; a
        // guard made before a later `with_*` call would otherwise use the older one.
        let shared = identity
            .and_then(Identity::layer)
            .unwrap_or(&self.guard.shared);
        shared.emit(|| {
            let mut event = AuditEvent::new(
                shared.clock_now(),
                Outcome::Denied(rejection.reason()),
                request.method(),
                request.uri(),
            );
            event.key_id = identity.map(Identity::key_id);
            event.identity = identity.map(Identity::detached);
            event
        });
        ResponseFuture::rejected(shared.respond(&rejection))
    }
}
