//! [`Context`]: what a layer's decisions need besides the request (how to answer, where to
//! audit, what time it is), shared with the scope guards and extractors that decide after
//! it. The layer puts it on every request it lets through, as a [`LayerContext`]
//! extension of its own, so that [`Identity`] stays plain data.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Response, Uri};

use crate::audit::event::{AuditEvent, Outcome};
use crate::audit::queue::AuditLog;
use crate::clock::Clock;
use crate::identity::Identity;
use crate::reject::rejection::Rejection;
use crate::reject::responder::Responder;

/// How a layer answers and audits.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) responder: Responder,
    /// `None` for [`NoAudit`](crate::NoAudit): then no event is even built.
    pub(crate) audit: Option<Arc<AuditLog>>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Per-key request counts, when asked for.
    #[cfg(feature = "metrics")]
    pub(crate) per_key: Option<Arc<crate::audit::metrics::PerKey>>,
}

/// The request extension carrying the context of a layer that let a request through
/// without a key (an anonymous caller, a CORS preflight).
#[derive(Clone)]
pub(crate) struct LayerContext(pub(crate) Arc<Context>);

/// What [`ApiKeyLayer`](crate::ApiKeyLayer) puts in the extensions of a request it let
/// through with a valid key: the verified [`Identity`], and how the layer answers, for the
/// extractors and scope guards that decide after it. One extension for both: each one
/// more costs every request an allocation.
///
/// In axum, take the [`Identity`] extractor. In any other tower service:
///
/// ```
/// use keygate::Authenticated;
///
/// fn user_of<B>(request: &http::Request<B>) -> Option<&str> {
///     let authenticated = request.extensions().get::<Authenticated>()?;
///     Some(authenticated.identity().user())
/// }
/// # assert_eq!(user_of(&http::Request::new(())), None);
/// ```
#[derive(Clone)]
pub struct Authenticated {
    identity: Identity,
    pub(crate) context: Arc<Context>,
}

impl Authenticated {
    pub(crate) fn new(identity: Identity, context: Arc<Context>) -> Self {
        Self { identity, context }
    }

    /// The verified identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The verified identity, taken out.
    pub fn into_identity(self) -> Identity {
        self.identity
    }
}

impl fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Authenticated")
            .field(&self.identity)
            .finish()
    }
}

impl Context {
    /// The response for `rejection`.
    pub(crate) fn respond(&self, rejection: &Rejection) -> Response<Bytes> {
        self.responder.respond(rejection)
    }

    /// Audits a decision; `event` is only built when there is a log to take it.
    pub(crate) fn emit(&self, event: impl FnOnce() -> AuditEvent) {
        if let Some(audit) = &self.audit {
            audit.emit(event());
        }
    }

    /// Audits a request that went on; skipped when the sink would drop it anyway.
    pub(crate) fn emit_allowed(&self, event: impl FnOnce() -> AuditEvent) {
        if let Some(audit) = &self.audit
            && audit.wants_allowed()
        {
            audit.emit(event());
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Counts a decision in the metrics (feature `metrics`; nothing otherwise).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn count(&self, outcome: &Outcome, key: Option<crate::key::id::KeyId>) {
        #[cfg(feature = "metrics")]
        {
            crate::audit::metrics::decision(outcome);
            if let (Some(per_key), Some(key)) = (&self.per_key, key) {
                per_key.count(key);
            }
        }
    }

    /// Audits and answers a refusal decided after the layer (a scope guard, an extractor).
    pub(crate) fn deny(
        &self,
        rejection: &Rejection,
        method: &Method,
        uri: &Uri,
        identity: Option<&Identity>,
    ) -> Response<Bytes> {
        self.count(
            &Outcome::Denied(rejection.reason()),
            identity.map(Identity::key_id),
        );
        self.emit(|| {
            let mut event =
                AuditEvent::new(self.now(), Outcome::Denied(rejection.reason()), method, uri);
            event.key_id = identity.map(Identity::key_id);
            event.identity = identity.cloned();
            event
        });
        self.respond(rejection)
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("responder", &self.responder)
            .field("audit", &self.audit)
            .finish_non_exhaustive()
    }
}
