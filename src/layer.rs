//! [`ApiKeyLayer`], [`ApiKeyService`] and their [`ResponseFuture`].

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::ACCESS_CONTROL_REQUEST_METHOD;
use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::audit::{self, AuditEvent, AuditLog, AuditSink, AuditStats, Outcome, TracingSink};
use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::hash::{KeyHash, KeyHasher};
use crate::identity::{Identity, Scopes};
use crate::key::{KeyFormat, KeyId};
use crate::reject::{Insufficient, InvalidKey, Rejection, Responder};
use crate::scope::RequireScopeLayer;
use crate::source::{self, KeySource};
use crate::space::{SpaceResolver, Target};
use crate::store::{KeyStore, KeyStoreWrite, StoreError, StoredKey};
use crate::usage::{self, UsageTracker};
use crate::verify::{Verified, verify};

/// Authenticates every request by API key before it reaches the wrapped service.
///
/// On success the request reaches the inner service with an [`Identity`] in its
/// extensions (and, by default, without the credential header). On failure the inner
/// service is not called and the client gets an RFC 6750 response:
///
/// | request | response |
/// |---|---|
/// | no credential | 401, `WWW-Authenticate: Bearer realm="api"` |
/// | malformed, unknown, wrong secret, revoked or expired key | 401, `error="invalid_token"`, one body for all |
/// | two credentials (repeated header, or two sources) | 400, `error="invalid_request"` |
/// | valid key bound to another space (with a [`SpaceResolver`]) | 403, `error="insufficient_scope"` |
/// | store error, or no answer within the store timeout | 503 with `Retry-After` |
///
/// Every decision is also an [`AuditEvent`] with its precise reason, delivered to an
/// [`AuditSink`] off the request path (`tracing` by default).
///
/// The layer is cheap to clone: its configuration sits behind one `Arc`.
///
/// ```
/// use axum::{Router, routing::get};
/// use keygate::{ApiKeyLayer, Identity, KeySource, MemoryStore};
///
/// async fn me(identity: Identity) -> String {
///     format!("hello, {}", identity.user())
/// }
///
/// let store = MemoryStore::new();
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .layer(
///         ApiKeyLayer::new(store)
///             .with_sources([KeySource::bearer(), KeySource::header("x-api-key")?])?
///             .with_realm("example")?,
///     );
/// # Ok::<(), keygate::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ApiKeyLayer {
    shared: Arc<Shared>,
}

/// Configuration shared by the layer, its services and their futures.
#[derive(Clone)]
pub(crate) struct Shared {
    store: Arc<dyn KeyStore>,
    sources: Box<[KeySource]>,
    format: KeyFormat,
    hasher: KeyHasher,
    clock: Arc<dyn Clock>,
    pub(crate) responder: Responder,
    strip_credential: bool,
    anonymous: bool,
    preflight: bool,
    space: Option<SpaceResolver>,
    store_timeout: Option<Duration>,
    /// `None` for [`NoAudit`]: then no event is even built.
    pub(crate) audit: Option<Arc<AuditLog>>,
    usage: Option<Arc<UsageTracker>>,
}

/// Default limit on one store lookup.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(1);

impl ApiKeyLayer {
    /// A layer that looks keys up in `store`.
    ///
    /// Defaults: keys from `Authorization: Bearer` only, [`KeyFormat::new`] (prefix `kg`),
    /// plain SHA-256, the system clock, realm `api`, `Retry-After: 1`, the credential
    /// header removed before the inner service, anonymous requests and CORS preflights
    /// refused, no space resolver, audit to [`TracingSink`], no usage tracking, and (with
    /// feature `tokio`) a store timeout of one second.
    pub fn new(store: impl KeyStore) -> Self {
        Self::from_shared_store(Arc::new(store))
    }

    /// As [`ApiKeyLayer::new`], for a store already behind an `Arc`.
    pub fn from_shared_store(store: Arc<dyn KeyStore>) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                sources: Box::new([KeySource::bearer()]),
                format: KeyFormat::new(),
                hasher: KeyHasher::sha256(),
                clock: Arc::new(SystemClock),
                responder: Responder::default(),
                strip_credential: true,
                anonymous: false,
                preflight: false,
                space: None,
                store_timeout: cfg!(feature = "tokio").then_some(DEFAULT_STORE_TIMEOUT),
                audit: Some(Arc::new(AuditLog::new(
                    TracingSink,
                    audit::DEFAULT_CAPACITY,
                ))),
                usage: None,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// Where to read keys from, in order. Identical sources are kept once.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoSources`] for an empty list.
    pub fn with_sources(
        self,
        sources: impl IntoIterator<Item = KeySource>,
    ) -> Result<Self, ConfigError> {
        let mut list: Vec<KeySource> = Vec::new();
        for source in sources {
            if !list.contains(&source) {
                list.push(source);
            }
        }
        if list.is_empty() {
            return Err(ConfigError::NoSources);
        }
        Ok(self.edit(|shared| shared.sources = list.into_boxed_slice()))
    }

    /// The key format to accept; it must match the [`KeyGenerator`](crate::KeyGenerator)'s.
    pub fn with_format(self, format: KeyFormat) -> Self {
        self.edit(|shared| shared.format = format)
    }

    /// The hasher; it must match the one that hashed the stored keys.
    pub fn with_hasher(self, hasher: KeyHasher) -> Self {
        self.edit(|shared| shared.hasher = hasher)
    }

    /// The clock that expiry is judged by.
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.edit(|shared| shared.clock = Arc::new(clock))
    }

    /// The realm named in `WWW-Authenticate` challenges (default `api`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRealm`] unless it is 1 to 128 printable ASCII characters
    /// without `"` or `\`.
    pub fn with_realm(self, realm: &str) -> Result<Self, ConfigError> {
        let mut responder = self.shared.responder.clone();
        responder.set_realm(realm)?;
        Ok(self.edit(|shared| shared.responder = responder))
    }

    /// The `Retry-After` sent with 503 responses, rounded up to whole seconds (default 1).
    pub fn with_retry_after(self, after: Duration) -> Self {
        self.edit(|shared| shared.responder.set_retry_after(after))
    }

    /// Reshapes rejection responses: `hook` gets the [`Rejection`] (with its precise
    /// reason) and the default response, and returns the response to send.
    ///
    /// Keep one body for all invalid keys: telling them apart tells attackers which keys
    /// exist.
    ///
    /// ```
    /// use keygate::{ApiKeyLayer, MemoryStore};
    ///
    /// let layer = ApiKeyLayer::new(MemoryStore::new()).with_rejection_response(
    ///     |_rejection, mut response| {
    ///         response
    ///             .headers_mut()
    ///             .insert("x-docs", "https://example.com/auth".parse().unwrap());
    ///         response
    ///     },
    /// );
    /// ```
    pub fn with_rejection_response<F>(self, hook: F) -> Self
    where
        F: Fn(&Rejection, Response<Bytes>) -> Response<Bytes> + Send + Sync + 'static,
    {
        self.edit(|shared| shared.responder.set_hook(Arc::new(hook)))
    }

    /// Whether to remove the credential header before the inner service sees the request
    /// (default `true`), so handlers, their logs and proxied calls never hold the key.
    pub fn with_strip_credential(self, strip: bool) -> Self {
        self.edit(|shared| shared.strip_credential = strip)
    }

    /// Whether a request with no credential at all may reach the inner service, without
    /// an [`Identity`] (default `false`). Requests with an invalid credential are still
    /// refused. Handlers take `Option<Identity>` to serve both kinds of caller.
    pub fn with_anonymous(self, allow: bool) -> Self {
        self.edit(|shared| shared.anonymous = allow)
    }

    /// Whether a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) may pass
    /// without a key (default `false`). Browsers send preflights without credentials, so
    /// a CORS layer *inside* this one needs this to answer them.
    pub fn with_cors_preflight(self, allow: bool) -> Self {
        self.edit(|shared| shared.preflight = allow)
    }

    /// Confines space-bound keys to their space: a key bound to space `a` gets 403
    /// `insufficient_scope` on requests `resolver` names another space for.
    pub fn with_space_resolver(self, resolver: SpaceResolver) -> Self {
        self.edit(|shared| shared.space = Some(resolver))
    }

    /// The longest a store lookup may take before the request gets 503 (default one
    /// second). Applies on a tokio runtime; elsewhere lookups are not timed.
    #[cfg(feature = "tokio")]
    pub fn with_store_timeout(self, timeout: Duration) -> Self {
        self.edit(|shared| shared.store_timeout = Some(timeout))
    }

    /// Where audit events go (default [`TracingSink`]), through a queue of `capacity`
    /// events; when the sink falls behind and the queue is full, events are dropped and
    /// counted in [`ApiKeyLayer::stats`].
    ///
    /// With [`NoAudit`](crate::NoAudit) no event is built at all.
    pub fn with_audit_sink<A: AuditSink>(self, sink: A, capacity: usize) -> Self {
        let discard = std::any::TypeId::of::<A>() == std::any::TypeId::of::<crate::NoAudit>();
        let audit = (!discard).then(|| Arc::new(AuditLog::new(sink, capacity)));
        self.edit(|shared| shared.audit = audit)
    }

    /// Tracks each key's last use and use count, and writes them to `store` in one batch
    /// every `interval` instead of once per request. At most `max_keys` distinct keys are
    /// held between two writes; uses of further keys are dropped and counted.
    ///
    /// With feature `tokio`, the periodic write starts on the runtime that serves the first
    /// request. [`ApiKeyLayer::flush_usage`] writes on demand, for example at shutdown.
    pub fn with_usage_tracking(
        self,
        store: Arc<dyn KeyStoreWrite>,
        interval: Duration,
        max_keys: usize,
    ) -> Self {
        let tracker = Arc::new(UsageTracker::new(store, interval, max_keys));
        self.edit(|shared| shared.usage = Some(tracker))
    }

    /// As [`ApiKeyLayer::with_usage_tracking`], with a 30-second interval and room for
    /// 100,000 keys.
    pub fn with_default_usage_tracking(self, store: Arc<dyn KeyStoreWrite>) -> Self {
        self.with_usage_tracking(store, usage::DEFAULT_INTERVAL, usage::DEFAULT_MAX_KEYS)
    }

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
    /// `insufficient_scope` naming the scope. It uses this layer's realm, hook and audit.
    ///
    /// ```
    /// use axum::{Router, routing::post};
    /// use keygate::{ApiKeyLayer, MemoryStore};
    ///
    /// let auth = ApiKeyLayer::new(MemoryStore::new());
    /// let app: Router = Router::new()
    ///     .route("/keys", post(|| async { "created" }))
    ///     .route_layer(auth.require_scope("keys:write")?)
    ///     .layer(auth);
    /// # Ok::<(), keygate::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidScope`] when `scope` is not a valid scope token.
    pub fn require_scope(&self, scope: &str) -> Result<RequireScopeLayer, ConfigError> {
        Scopes::new([scope]).map_err(|error| ConfigError::InvalidScope(error.to_string()))?;
        Ok(RequireScopeLayer::new(scope, self.shared.clone()))
    }

    /// Counters of the audit pipeline and usage tracking.
    pub fn stats(&self) -> LayerStats {
        LayerStats {
            audit: self
                .shared
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

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyLayer")
            .field("sources", &self.sources)
            .field("format", &self.format)
            .field("hasher", &self.hasher)
            .field("responder", &self.responder)
            .field("strip_credential", &self.strip_credential)
            .field("anonymous", &self.anonymous)
            .field("preflight", &self.preflight)
            .field("space", &self.space)
            .field("store_timeout", &self.store_timeout)
            .field("audit", &self.audit)
            .field("usage", &self.usage)
            .finish_non_exhaustive()
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

/// The service made by [`ApiKeyLayer`]; see there.
#[derive(Clone)]
pub struct ApiKeyService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: fmt::Debug> fmt::Debug for ApiKeyService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyService")
            .field("inner", &self.inner)
            .field("layer", &self.shared)
            .finish()
    }
}

/// Put in the extensions of requests the layer lets through without a key (anonymous
/// callers, CORS preflights), so extractors answer with the layer's own realm, hook and
/// audit. Verified requests carry the layer in their [`Identity`] instead.
#[cfg(feature = "axum")]
#[derive(Clone)]
pub(crate) struct LayerContext(pub(crate) Arc<Shared>);

impl<S> ApiKeyService<S> {
    /// Calls the inner service for a request that needs no key (a CORS preflight, or a
    /// request without a credential when anonymous access is on): audited, and with the
    /// layer's context for extractors but no identity.
    fn pass_without_key<ReqBody, ResBody>(
        &mut self,
        request: Request<ReqBody>,
        outcome: Outcome,
    ) -> ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    {
        let shared = &self.shared;
        shared
            .emit(|| AuditEvent::new(shared.clock.now(), outcome, request.method(), request.uri()));
        #[cfg(feature = "axum")]
        let request = {
            let mut request = request;
            request
                .extensions_mut()
                .insert(LayerContext(shared.clone()));
            request
        };
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
            Ok(None) => return shared.reject(Rejection::Missing, &request, None),
            Err(source::Ambiguous) => {
                return shared.reject(Rejection::Ambiguous, &request, None);
            }
        };
        let id = match shared.format.check_bytes(presented.token) {
            Ok(id) => id,
            Err(malformed) => {
                let rejection = Rejection::Invalid(InvalidKey::Malformed(malformed));
                return shared.reject(rejection, &request, None);
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
        let ready = catch_unwind(AssertUnwindSafe(|| shared.store.find_ready(&id)))
            .unwrap_or_else(|_panic| Some(Err(StoreError::backend("the key store panicked"))));
        if let Some(found) = ready {
            let key = PendingKey::new(id, hash);
            return match shared.admit(found, &key, request) {
                Ok(request) => ResponseFuture::inner(self.inner.call(request)),
                Err(response) => ResponseFuture::rejected(response),
            };
        }

        let lookup = shared.lookup(id);
        // Take the service that poll_ready readied and leave a clone in its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            state: State::Lookup {
                lookup,
                pending: Some(Pending {
                    inner,
                    request,
                    id,
                    hash,
                    shared: shared.clone(),
                }),
            },
        }
    }
}

impl Shared {
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
    fn emit_allowed(&self, event: impl FnOnce() -> AuditEvent) {
        if let Some(audit) = &self.audit
            && audit.wants_allowed()
        {
            audit.emit(event());
        }
    }

    pub(crate) fn clock_now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Audits a rejection decided before any lookup and answers it.
    fn reject<S, B>(
        &self,
        rejection: Rejection,
        request: &Request<B>,
        key_id: Option<KeyId>,
    ) -> ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        self.emit(|| {
            let mut event = AuditEvent::new(
                self.clock.now(),
                Outcome::Denied(rejection.reason()),
                request.method(),
                request.uri(),
            );
            event.key_id = key_id;
            event
        });
        ResponseFuture::rejected(self.respond(&rejection))
    }

    /// The store lookup, bounded by the store timeout when a tokio runtime is running.
    fn lookup(&self, id: KeyId) -> LookupFuture {
        let store = self.store.clone();
        #[cfg(feature = "tokio")]
        if let Some(limit) = self.store_timeout
            && tokio::runtime::Handle::try_current().is_ok()
        {
            return Box::pin(async move {
                match tokio::time::timeout(limit, store.find(&id)).await {
                    Ok(found) => found,
                    Err(_elapsed) => Err(StoreError::Timeout(limit)),
                }
            });
        }
        Box::pin(async move { store.find(&id).await })
    }

    /// Everything after the lookup: verify, confine to the space, record, decide.
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

    /// Decides on a looked-up key: the request to pass on, with its identity, or the
    /// response refusing it. Either way the decision is audited.
    // Both sides are moved once, straight into the response future; boxing the refusal
    // would cost an allocation on every rejected request to save a copy.
    #[allow(clippy::result_large_err)]
    fn admit<B>(
        self: &Arc<Self>,
        found: Result<Option<StoredKey>, StoreError>,
        key: &PendingKey,
        mut request: Request<B>,
    ) -> Result<Request<B>, Response<Bytes>> {
        match self.decide(found, key, &request) {
            Ok(verified) => {
                self.allow(&verified, key, &request);
                request
                    .extensions_mut()
                    .insert::<Identity>(verified.identity.verified_by(self.clone()));
                Ok(request)
            }
            Err(denial) => {
                self.emit(|| {
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
                Err(self.respond(&denial.rejection))
            }
        }
    }

    /// Records a successful use: audit event and last-used data.
    fn allow<B>(&self, verified: &Verified, pending: &PendingKey, request: &Request<B>) {
        let outcome = if verified.by_previous_secret {
            Outcome::AllowedByPreviousSecret
        } else {
            Outcome::Allowed
        };
        self.emit_allowed(|| {
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
             configure ApiKeyLayer::with_space_resolver (SpaceResolver::in_handlers() if \
             your handlers check Identity::space themselves)"
        );
    });
}

type LookupFuture = Pin<Box<dyn Future<Output = Result<Option<StoredKey>, StoreError>> + Send>>;

/// A refusal after lookup, with what the audit event needs to say about it.
struct Denial {
    rejection: Rejection,
    identity: Option<Identity>,
    target: Option<String>,
}

/// What a request waiting on its lookup carries into the future.
struct Pending<S, B> {
    inner: S,
    request: Request<B>,
    id: KeyId,
    hash: KeyHash,
    shared: Arc<Shared>,
}

/// The facts about the presented key that the decision needs.
struct PendingKey {
    id: KeyId,
    hash: KeyHash,
    /// Read from the clock the first time something needs it, then kept, so one decision
    /// sees one time.
    now: std::cell::OnceCell<SystemTime>,
}

impl PendingKey {
    fn new(id: KeyId, hash: KeyHash) -> Self {
        Self {
            id,
            hash,
            now: std::cell::OnceCell::new(),
        }
    }

    fn now(&self, shared: &Shared) -> SystemTime {
        *self.now.get_or_init(|| shared.clock.now())
    }
}

pin_project! {
    /// The response future of [`ApiKeyService`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Lookup {
            lookup: LookupFuture,
            pending: Option<Pending<S, B>>,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<Response<Bytes>>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn inner(future: S::Future) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(crate) fn rejected(response: Response<Bytes>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Lookup { lookup, pending } => {
                    // A panicking store fails this request closed, like a store error,
                    // and leaves the service able to serve the next one.
                    let found = match catch_unwind(AssertUnwindSafe(|| lookup.as_mut().poll(cx))) {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(found)) => found,
                        Err(_panic) => Err(StoreError::backend("the key store panicked")),
                    };
                    let Pending {
                        mut inner,
                        request,
                        id,
                        hash,
                        shared,
                    } = pending
                        .take()
                        .expect("ResponseFuture polled after completion");
                    let key = PendingKey::new(id, hash);
                    match shared.admit(found, &key, request) {
                        Ok(request) => {
                            let future = inner.call(request);
                            this.state.set(State::Inner { future });
                        }
                        Err(response) => {
                            this.state.set(State::Rejected { response: None });
                            return Poll::Ready(Ok(response.map(ResBody::from)));
                        }
                    }
                }
                StateProj::Inner { future } => return future.poll(cx),
                StateProj::Rejected { response } => {
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response.map(ResBody::from)));
                }
            }
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
