//! [`ApiKeyService`]: reads the credential, checks its format, and looks it up; the
//! decision itself is in `decide.rs`.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::ACCESS_CONTROL_REQUEST_METHOD;
use http::{Method, Request, Response};
use tower_service::Service;

use crate::audit::event::{AuditEvent, Outcome};
use crate::context::LayerContext;
use crate::key::format::{KeyFormat, MalformedKey};
use crate::layer::decide::{Admission, PendingKey};
use crate::layer::future::{Limiting, Pending, ResponseFuture};
use crate::layer::shared::Shared;
use crate::reject::rejection::{InvalidKey, Rejection};
use crate::source::{self, Ambiguous};
use crate::store::error::StoreError;

/// The service made by [`ApiKeyLayer`](crate::ApiKeyLayer); see there.
#[derive(Clone)]
pub struct ApiKeyService<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for ApiKeyService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyService")
            .field("inner", &self.inner)
            .field("layer", &self.shared)
            .finish()
    }
}

impl<S> ApiKeyService<S> {
    /// Calls the inner service for a request that needs no key (a CORS preflight, or a
    /// request without a credential when anonymous access is on): audited, and with the
    /// layer's context for extractors but no identity.
    fn pass_without_key<ReqBody, ResBody>(
        &mut self,
        mut request: Request<ReqBody>,
        outcome: Outcome,
    ) -> ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    {
        let context = &self.shared.context;
        context.count(&outcome, None);
        context.emit(|| AuditEvent::new(context.now(), outcome, request.method(), request.uri()));
        request
            .extensions_mut()
            .insert(LayerContext(context.clone()));
        ResponseFuture::inner(self.inner.call(request))
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ApiKeyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        if shared.preflight
            && request.method() == Method::OPTIONS
            && request
                .headers()
                .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            return self.pass_without_key(request, Outcome::Preflight);
        }
        let presented = match source::find(&shared.sources, request.headers()) {
            Ok(Some(presented)) => presented,
            Ok(None) if shared.anonymous => {
                return self.pass_without_key(request, Outcome::Anonymous);
            }
            Ok(None) => {
                return ResponseFuture::rejected(
                    shared.reject_early(&Rejection::Missing, &request),
                );
            }
            Err(Ambiguous) => {
                let response = shared.reject_early(&Rejection::Ambiguous, &request);
                return ResponseFuture::rejected(response);
            }
        };
        let id = match shared.format.check_bytes(presented.token) {
            Ok(id) => id,
            Err(malformed) => {
                if malformed == MalformedKey::Prefix {
                    warn_foreign_format(&shared.format, presented.token);
                }
                let rejection = Rejection::Invalid(InvalidKey::Malformed(malformed));
                return ResponseFuture::rejected(shared.reject_early(&rejection, &request));
            }
        };
        let hash = shared.hasher.hash_bytes(presented.token);
        let header = presented.source.header_name().clone();
        if shared.strip_credential {
            request.headers_mut().remove(header);
        } else if let http::header::Entry::Occupied(mut entry) = request.headers_mut().entry(header)
        {
            // Kept for the inner service, but marked so that HPACK never indexes it and
            // `Debug` output of the headers hides it.
            for value in entry.iter_mut() {
                value.set_sensitive(true);
            }
        }

        // A store that can answer from memory does so here: no allocation, no timer, and the
        // inner service is called before `call` returns.
        let ready = catch_unwind(AssertUnwindSafe(|| shared.find_ready(&id)))
            .unwrap_or_else(|_panic| Some(Err(StoreError::backend("the key store panicked"))));
        if let Some(found) = ready {
            let key = PendingKey::new(id, hash);
            return match shared.admit(found, &key, &mut request) {
                Admission::Allowed => ResponseFuture::inner(self.inner.call(request)),
                Admission::Denied(response) => ResponseFuture::rejected(response),
                Admission::Limiting(limit, verified) => {
                    let pending = Limiting {
                        inner: take_ready(&mut self.inner),
                        request,
                        key,
                        verified,
                        shared: shared.clone(),
                    };
                    ResponseFuture::limiting(limit, pending)
                }
            };
        }

        let lookup = shared.lookup(id);
        let pending = Pending {
            inner: take_ready(&mut self.inner),
            request,
            id,
            hash,
            shared: shared.clone(),
        };
        ResponseFuture::lookup(lookup, pending)
    }
}

/// Says once per process that a well-formed key of another format reached the layer:
/// almost always a layer and a manager configured apart, which refuses every valid key.
/// Takes the service that `poll_ready` readied, leaving a clone in its place, for a future
/// that calls it later.
fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

fn warn_foreign_format(format: &KeyFormat, token: &[u8]) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    if WARNED.is_completed() {
        return;
    }
    let Some(foreign) = KeyFormat::foreign_prefix(token) else {
        return;
    };
    WARNED.call_once(|| {
        tracing::warn!(
            target: "keygate",
            foreign_prefix = foreign,
            accepted_prefix = format.prefix(),
            "a well-formed key of another format was refused: this layer accepts prefix \
             {:?}, the key has {:?}. Build the layer and the manager from one Keygate \
             (Keygate::layer, Keygate::manager) so that they agree on the format",
            format.prefix(),
            foreign
        );
    });
}
