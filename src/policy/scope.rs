//! [`RequireScopeLayer`]: a per-route guard that admits only keys holding a scope.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::context::{Authenticated, Context, LayerContext};
use crate::reject::rejection::{Insufficient, Rejection};

/// Admits only requests whose [`Identity`](crate::Identity) holds one scope; made by
/// [`Keygate::require_scope`](crate::Keygate::require_scope) and applied inside the
/// [`ApiKeyLayer`](crate::ApiKeyLayer) (axum: `route_layer`).
///
/// A key without the scope gets 403 `insufficient_scope` with `scope="…"` in the
/// challenge, and the denial is audited with [`Reason::MissingScope`](crate::Reason).
#[derive(Clone)]
pub struct RequireScopeLayer {
    scope: Arc<str>,
    context: Arc<Context>,
}

impl RequireScopeLayer {
    pub(crate) fn new(scope: &str, context: Arc<Context>) -> Self {
        Self {
            scope: scope.into(),
            context,
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
    type Future = RequireScopeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let authenticated = request.extensions().get::<Authenticated>();
        let rejection = match authenticated {
            Some(found) if found.identity().scopes().contains(&self.guard.scope) => {
                let future = self.inner.call(request);
                return RequireScopeFuture {
                    state: State::Inner { future },
                };
            }
            Some(_) => Rejection::Forbidden(Insufficient::Scope(self.guard.scope.to_string())),
            None => Rejection::Missing,
        };
        // Answer as the layer that let the request through; the guard's own context is
        // the fallback for a guard placed outside any layer.
        let context = match authenticated {
            Some(found) => &found.context,
            None => request
                .extensions()
                .get::<LayerContext>()
                .map_or(&self.guard.context, |layer| &layer.0),
        };
        let identity = authenticated.map(Authenticated::identity);
        // Inside a nested axum router the URI has lost its prefix; audit the one the
        // client sent.
        #[cfg(feature = "router")]
        let uri = request
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .map_or(request.uri(), |original| &original.0);
        #[cfg(not(feature = "router"))]
        let uri = request.uri();
        let response = context.deny(&rejection, request.method(), uri, identity);
        RequireScopeFuture {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }
}

pin_project! {
    /// The response future of [`RequireScopeService`].
    pub struct RequireScopeFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Inner {
            #[pin]
            future: F,
        },
        Rejected {
            response: Option<Response<Bytes>>,
        },
    }
}

impl<F, ResBody, E> Future for RequireScopeFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future } => future.poll(cx),
            StateProj::Rejected { response } => {
                let response = response
                    .take()
                    .expect("RequireScopeFuture polled after completion");
                Poll::Ready(Ok(response.map(ResBody::from)))
            }
        }
    }
}

impl<F> fmt::Debug for RequireScopeFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopeFuture").finish_non_exhaustive()
    }
}
