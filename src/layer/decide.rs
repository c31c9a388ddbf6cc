//! The decision on one request: from a presented key and the store's answer to the
//! request passed on (with its [`Identity`]) or the response refusing it, audited either
//! way.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use http::{Request, Response};

use crate::audit::event::{AuditEvent, MAX_PATH_LEN, Outcome, truncate};
use crate::context::Authenticated;
use crate::identity::Identity;
use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::layer::shared::Shared;
use crate::layer::verify::{Verified, verify};
use crate::policy::limit::{LimitCheck, LimitError, LimitFuture, LimitRequest, LimitVerdict};
use crate::policy::space::Target;
use crate::reject::rejection::{Insufficient, InvalidKey, Rejection};
use crate::store::error::StoreError;
use crate::store::stored::StoredKey;

/// A store lookup in flight.
pub(crate) type LookupFuture =
    Pin<Box<dyn Future<Output = Result<Option<StoredKey>, StoreError>> + Send>>;

/// The facts about the presented key that the decision needs.
pub(crate) struct PendingKey {
    pub(crate) id: KeyId,
    pub(crate) hash: KeyHash,
    /// Read from the clock the first time something needs it, then kept, so one decision
    /// sees one time.
    now: std::cell::OnceCell<SystemTime>,
    /// The decision's span, `keygate.authenticate` (target `keygate::decision`, level
    /// DEBUG), with OpenTelemetry's HTTP and enduser fields; disabled, it costs a check.
    span: tracing::Span,
}

impl PendingKey {
    pub(crate) fn new(id: KeyId, hash: KeyHash) -> Self {
        let span = tracing::debug_span!(
            target: "keygate::decision",
            "keygate.authenticate",
            keygate.key_id = %id,
            http.request.method = tracing::field::Empty,
            url.path = tracing::field::Empty,
            enduser.id = tracing::field::Empty,
            enduser.scope = tracing::field::Empty,
            keygate.space = tracing::field::Empty,
            keygate.outcome = tracing::field::Empty,
            keygate.reason = tracing::field::Empty,
        );
        Self {
            id,
            hash,
            now: std::cell::OnceCell::new(),
            span,
        }
    }

    /// Writes the decision into the span: who, for what, and what was decided.
    fn record<B>(&self, request: &Request<B>, identity: Option<&Identity>, outcome: &Outcome) {
        let span = &self.span;
        if span.is_disabled() {
            return;
        }
        span.record("http.request.method", request.method().as_str());
        // Cut as audit events cut it: a path can be as long as the server allows.
        span.record("url.path", truncate(request.uri().path(), MAX_PATH_LEN));
        if let Some(identity) = identity {
            span.record("enduser.id", identity.user());
            let scopes: Vec<&str> = identity.scopes().iter().collect();
            span.record("enduser.scope", scopes.join(" ").as_str());
            if let Some(space) = identity.space() {
                span.record("keygate.space", space);
            }
        }
        match outcome {
            Outcome::Denied(reason) => {
                span.record("keygate.outcome", "denied");
                span.record("keygate.reason", reason.as_str());
            }
            Outcome::AllowedByPreviousSecret => {
                span.record("keygate.outcome", "allowed_by_previous_secret");
            }
            _ => {
                span.record("keygate.outcome", "allowed");
            }
        }
    }

    fn now(&self, shared: &Shared) -> SystemTime {
        *self.now.get_or_init(|| shared.context.now())
    }
}

/// Where a decision on a looked-up key stands.
pub(crate) enum Admission {
    /// Let in: the identity is on the request.
    Allowed,
    /// Refused, with the response.
    Denied(Response<Bytes>),
    /// Verified and in its space; the limiter's answer is still to come.
    Limiting(LimitFuture, Verified),
}

/// A refusal after lookup, with what the audit event needs to say about it.
struct Denial {
    rejection: Rejection,
    identity: Option<Identity>,
    target: Option<String>,
}

impl Shared {
    /// Audits a rejection decided before any lookup, and renders it.
    pub(crate) fn reject_early<B>(
        &self,
        rejection: &Rejection,
        request: &Request<B>,
    ) -> Response<Bytes> {
        self.context
            .deny(rejection, request.method(), request.uri(), None)
    }

    /// The store lookup, bounded by the store timeout when a tokio runtime is running.
    pub(crate) fn lookup(&self, id: KeyId) -> LookupFuture {
        let store = self.store.clone();
        #[cfg(feature = "tokio")]
        if let Some(limit) = self.store_timeout
            && tokio::runtime::Handle::try_current().is_ok()
        {
            return Box::pin(async move {
                #[cfg(feature = "metrics")]
                let started = std::time::Instant::now();
                let found = tokio::time::timeout(limit, store.find(&id)).await;
                #[cfg(feature = "metrics")]
                crate::audit::metrics::lookup(started.elapsed());
                match found {
                    Ok(found) => found,
                    Err(_elapsed) => Err(StoreError::Timeout(limit)),
                }
            });
        }
        Box::pin(async move { store.find(&id).await })
    }

    /// `find_ready`, timed in the metrics (feature `metrics`).
    pub(crate) fn find_ready(&self, id: &KeyId) -> Option<Result<Option<StoredKey>, StoreError>> {
        #[cfg(feature = "metrics")]
        let started = std::time::Instant::now();
        let found = self.store.find_ready(id);
        #[cfg(feature = "metrics")]
        if found.is_some() {
            crate::audit::metrics::lookup(started.elapsed());
        }
        found
    }

    /// Everything after the lookup: verify, confine to the space.
    // A refusal is returned by value: boxing it would cost every refused request an
    // allocation to save a copy.
    #[allow(clippy::result_large_err)]
    fn decide<B>(
        &self,
        found: Result<Option<StoredKey>, StoreError>,
        pending: &PendingKey,
        request: &Request<B>,
    ) -> Result<Verified, Denial> {
        let deny = |rejection, identity, target| Denial {
            rejection,
            identity,
            target,
        };
        let stored = match found {
            Ok(Some(stored)) => stored,
            // `NotFound` from a lookup is a store's way of saying "no such key".
            Ok(None) | Err(StoreError::NotFound) => {
                return Err(deny(Rejection::Invalid(InvalidKey::Unknown), None, None));
            }
            Err(error) => return Err(deny(Rejection::Unavailable(error), None, None)),
        };
        let verified = match verify(&stored, &pending.hash, || pending.now(self)) {
            Ok(verified) => verified,
            Err(invalid) => {
                return Err(deny(
                    Rejection::Invalid(invalid),
                    Some(stored.identity),
                    None,
                ));
            }
        };
        if let Some(bound) = verified.identity.space() {
            let refused = match &self.space {
                None => {
                    warn_no_space_policy();
                    Some(None)
                }
                Some(resolver) => match resolver.resolve(request.uri(), request.headers()) {
                    Target::None if resolver.is_strict() => Some(None),
                    Target::None => None,
                    Target::Space(space) if space == bound => None,
                    Target::Space(space) => Some(Some(space.into_owned())),
                    Target::Unreadable => Some(None),
                },
            };
            if let Some(target) = refused {
                let rejection = Rejection::Forbidden(Insufficient::Space);
                return Err(deny(rejection, Some(verified.identity), target));
            }
        }
        Ok(verified)
    }

    /// Decides on a looked-up key: [`Admission::Allowed`] with the identity and this
    /// layer's context put on the request, the response refusing it, or the limiter's
    /// answer still to come. Every decision is audited once it is made.
    // The request is changed in place rather than moved in and out: it is a few hundred
    // bytes, and this runs on every request. The refusal goes straight into the response
    // future; boxing it would cost every refused request an allocation to save a copy.
    pub(crate) fn admit<B>(
        &self,
        found: Result<Option<StoredKey>, StoreError>,
        key: &PendingKey,
        request: &mut Request<B>,
    ) -> Admission {
        let verified = match self.decide(found, key, request) {
            Ok(verified) => verified,
            Err(denial) => return Admission::Denied(self.deny(denial, key, request)),
        };
        let limited = verified.rate_limit.is_some() || verified.quota.is_some();
        if !(limited || self.limit_every_key) {
            self.let_in(verified, key, request);
            return Admission::Allowed;
        }
        let limiter = &self.limiter;
        let asked = LimitRequest {
            identity: &verified.identity,
            rate_limit: verified.rate_limit,
            quota: verified.quota,
            now: key.now(self),
        };
        // A panicking limiter fails the request closed, like a panicking store.
        let check =
            catch_unwind(AssertUnwindSafe(|| limiter.check(asked))).unwrap_or_else(|_panic| {
                LimitCheck::Ready(Err(LimitError::new("the rate limiter panicked")))
            });
        match check {
            LimitCheck::Ready(verdict) => self.limited(verified, verdict, key, request),
            LimitCheck::Pending(future) => Admission::Limiting(future, verified),
        }
    }

    /// Finishes a decision with the limiter's verdict.
    pub(crate) fn limited<B>(
        &self,
        verified: Verified,
        verdict: Result<LimitVerdict, LimitError>,
        key: &PendingKey,
        request: &mut Request<B>,
    ) -> Admission {
        let rejection = match verdict {
            Ok(LimitVerdict::Allow(_)) => {
                self.let_in(verified, key, request);
                return Admission::Allowed;
            }
            Ok(LimitVerdict::Refuse(refusal)) => Rejection::Limited(refusal),
            Err(error) => Rejection::LimiterUnavailable(error),
        };
        let denial = Denial {
            rejection,
            identity: Some(verified.identity),
            target: None,
        };
        Admission::Denied(self.deny(denial, key, request))
    }

    fn let_in<B>(&self, verified: Verified, key: &PendingKey, request: &mut Request<B>) {
        self.allow(&verified, key, request);
        let authenticated = Authenticated::new(verified.identity, self.context.clone());
        request.extensions_mut().insert(authenticated);
    }

    /// Audits a refusal after lookup, and renders it.
    fn deny<B>(&self, denial: Denial, key: &PendingKey, request: &Request<B>) -> Response<Bytes> {
        let outcome = Outcome::Denied(denial.rejection.reason());
        key.record(request, denial.identity.as_ref(), &outcome);
        self.context.count(&outcome, Some(key.id));
        self.context.emit(|| {
            let mut event = AuditEvent::new(
                key.now(self),
                Outcome::Denied(denial.rejection.reason()),
                request.method(),
                request.uri(),
            );
            event.key_id = Some(key.id);
            event.identity = denial.identity;
            event.set_target_space(denial.target);
            event
        });
        self.context.respond(&denial.rejection)
    }

    /// Records a successful use: audit event and last-used data.
    fn allow<B>(&self, verified: &Verified, pending: &PendingKey, request: &Request<B>) {
        let outcome = if verified.identity.is_previous_secret() {
            Outcome::AllowedByPreviousSecret
        } else {
            Outcome::Allowed
        };
        pending.record(request, Some(&verified.identity), &outcome);
        self.context.count(&outcome, Some(pending.id));
        self.context.emit_allowed(|| {
            let mut event =
                AuditEvent::new(pending.now(self), outcome, request.method(), request.uri());
            event.key_id = Some(pending.id);
            event.identity = Some(verified.identity.clone());
            event
        });
        if let Some(usage) = &self.usage {
            usage.record(pending.id, pending.now(self));
            #[cfg(feature = "tokio")]
            usage.start_flusher();
        }
    }
}

/// Says once per process why space-bound keys are being refused.
fn warn_no_space_policy() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            target: "keygate",
            "a space-bound key was refused because the layer has no space resolver; \
             configure Keygate::with_space_resolver (SpaceResolver::in_handlers() if \
             your handlers check Identity::space themselves)"
        );
    });
}
