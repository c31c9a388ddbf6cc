//! [`Keygate`]: the one configuration. The layer, the manager and the scope guards all
//! come from it, so they agree on key format, hasher, clock and store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;

use crate::audit::queue::{AuditLog, DEFAULT_CAPACITY};
use crate::audit::sink::{AuditSink, NoAudit, TracingSink};
use crate::audit::usage::{self, UsageTracker};
use crate::clock::{Clock, SystemClock};
use crate::context::Context;
use crate::error::ConfigError;
use crate::key::format::KeyFormat;
use crate::key::generate::KeyGenerator;
use crate::key::hash::KeyHasher;
use crate::layer::shared::Shared;
use crate::layer::{ApiKeyLayer, LayerStats};
use crate::manage::manager::{DEFAULT_MAX_KEYS_PER_OWNER, KeyManager};
use crate::policy::limit::{Limiter, RateLimits};
use crate::policy::local::LocalLimiter;
use crate::policy::scope::RequireScopeLayer;
use crate::policy::space::SpaceResolver;
use crate::reject::rejection::Rejection;
use crate::reject::responder::Responder;
use crate::source::KeySource;
use crate::store::error::StoreError;
use crate::store::key_store::KeyStore;
use crate::store::write::KeyStoreWrite;

/// Default limit on one store lookup.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// The one configuration of keygate: the store, the key format, the hasher (with its
/// pepper), the clock, and how requests are read and answered.
///
/// Everything else comes from it: [`Keygate::layer`] for your router,
/// [`Keygate::manager`] to create, list, regenerate and revoke keys, and
/// [`Keygate::require_scope`] for routes that need a scope. Built from one value, they
/// cannot disagree: a key the manager makes is a key the layer accepts.
///
/// ```
/// use axum::{Router, routing::get};
/// use keygate::{Identity, KeyFormat, KeySource, Keygate, MemoryStore, NewKey};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let keygate = Keygate::new(MemoryStore::new())
///     .with_format(KeyFormat::with_prefix("acme")?)
///     .with_sources([KeySource::bearer(), KeySource::header("x-api-key")?])?;
///
/// async fn me(identity: Identity) -> String {
///     format!("hello, {}", identity.user())
/// }
/// let app: Router = Router::new().route("/me", get(me)).layer(keygate.layer());
///
/// let created = keygate.manager().create(NewKey::new("user-42", "ci")).await?;
/// assert!(created.key.expose_secret().starts_with("acme_"));
/// # use tower::ServiceExt;
/// # let request = http::Request::get("/me")
/// #     .header("x-api-key", created.key.expose_secret())
/// #     .body(axum::body::Body::empty())?;
/// # assert_eq!(app.oneshot(request).await?.status(), 200);
/// # Ok(())
/// # }
/// ```
///
/// Cloning is cheap; a clone configured further (`keygate.clone().with_…`) leaves the
/// original as it was, and shares its audit queue and usage tracking.
pub struct Keygate<S> {
    store: Arc<S>,
    shared: Arc<Shared>,
    max_keys: usize,
}

impl<S> Clone for Keygate<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            shared: self.shared.clone(),
            max_keys: self.max_keys,
        }
    }
}

impl<S: KeyStoreWrite> Keygate<S> {
    /// A configuration over `store`, which keygate reads keys from and writes them to.
    ///
    /// Defaults: keys from `Authorization: Bearer` only, [`KeyFormat::new`] (prefix `kg`),
    /// plain SHA-256, the system clock, realm `api`, `Retry-After: 1`, the credential
    /// header removed before the inner service, anonymous requests and CORS preflights
    /// refused, no space resolver, audit to [`TracingSink`], last use written back to the
    /// store every 30 s, at most 100 keys per user and per space, and (with feature
    /// `tokio`) a store timeout of one second.
    pub fn new(store: S) -> Self {
        let store = Arc::new(store);
        let tracker = UsageTracker::new(
            store.clone(),
            usage::DEFAULT_INTERVAL,
            usage::DEFAULT_MAX_KEYS,
        );
        let mut keygate = Self::from_arc(store);
        Arc::make_mut(&mut keygate.shared).usage = Some(Arc::new(tracker));
        keygate
    }

    /// Tracks each key's last use and use count, and writes them to the store in one batch
    /// every `interval` instead of once per request (default: every 30 s, for up to
    /// 100,000 keys). At most `max_keys` distinct keys are held between two writes; uses
    /// of further keys are dropped and counted in [`LayerStats`].
    ///
    /// With feature `tokio`, the periodic write starts on the runtime that serves the first
    /// request. [`Keygate::flush_usage`] writes on demand, for example at shutdown.
    pub fn with_usage_tracking(self, interval: Duration, max_keys: usize) -> Self {
        let tracker = UsageTracker::new(self.store.clone(), interval, max_keys);
        self.edit(|shared| shared.usage = Some(Arc::new(tracker)))
    }

    /// Keeps no last-use data at all.
    pub fn without_usage_tracking(self) -> Self {
        self.edit(|shared| shared.usage = None)
    }

    /// The most keys one user, and one space, may hold (default 100, at least 1).
    /// Listings return at most this many per page.
    pub fn with_max_keys_per_owner(mut self, max: usize) -> Self {
        self.max_keys = max.max(1);
        self
    }

    /// The key lifecycle: create (plaintext once), list, regenerate, revoke; with the
    /// format, hasher and clock the layer uses.
    pub fn manager(&self) -> KeyManager {
        KeyManager::new(
            self.store.clone(),
            KeyGenerator::new(self.shared.format.clone()),
            self.shared.hasher.clone(),
            self.shared.context.clock.clone(),
            self.max_keys,
        )
    }
}

impl<S: KeyStore> Keygate<S> {
    /// A configuration over a store keygate only reads from: for keys you provision
    /// yourself. It has no [`Keygate::manager`] and tracks no usage.
    pub fn read_only(store: S) -> Self {
        Self::from_arc(Arc::new(store))
    }

    fn from_arc(store: Arc<S>) -> Self {
        let context_clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let context = Context {
            responder: Responder::default(),
            audit: Some(Arc::new(AuditLog::new(TracingSink, DEFAULT_CAPACITY))),
            clock: context_clock.clone(),
            #[cfg(feature = "metrics")]
            per_key: None,
        };
        let shared = Shared {
            store: store.clone(),
            sources: Box::new([KeySource::bearer()]),
            format: KeyFormat::new(),
            hasher: KeyHasher::sha256(),
            context: Arc::new(context),
            strip_credential: true,
            anonymous: false,
            preflight: false,
            space: None,
            store_timeout: cfg!(feature = "tokio").then_some(DEFAULT_STORE_TIMEOUT),
            usage: None,
            limiter: Arc::new(LocalLimiter::with_shared_clock(
                RateLimits::new(),
                context_clock.clone(),
            )),
            limit_every_key: false,
            local_limits: Some(RateLimits::new()),
        };
        Self {
            store,
            shared: Arc::new(shared),
            max_keys: DEFAULT_MAX_KEYS_PER_OWNER,
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        f(Arc::make_mut(&mut self.shared));
        self
    }

    fn edit_context(self, f: impl FnOnce(&mut Context)) -> Self {
        self.edit(|shared| f(Arc::make_mut(&mut shared.context)))
    }

    /// Where to read keys from, in order (default `Authorization: Bearer` only).
    /// Identical sources are kept once.
    ///
    /// The challenge of a 401 names what the client should send: `Bearer` when it is a
    /// source, otherwise the named headers (`Key realm="api", header="x-api-key"`).
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
        let mut responder = self.shared.context.responder.clone();
        responder.set_sources(&list)?;
        Ok(self
            .edit(|shared| shared.sources = list.into_boxed_slice())
            .edit_context(|context| context.responder = responder))
    }

    /// The format of the keys the manager makes and the layer accepts (default prefix
    /// `kg`).
    pub fn with_format(self, format: KeyFormat) -> Self {
        self.edit(|shared| shared.format = format)
    }

    /// The hasher of stored keys (default plain SHA-256; see
    /// [`KeyHasher::hmac_sha256`] for a server-side pepper).
    pub fn with_hasher(self, hasher: KeyHasher) -> Self {
        self.edit(|shared| shared.hasher = hasher)
    }

    /// The clock that creation, expiry and grace periods are judged by.
    pub fn with_clock(self, clock: impl Clock) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        let this = self.edit_context(|context| context.clock = clock.clone());
        // A limiter keygate built runs on keygate's clock; one you supplied keeps its own.
        match this.shared.local_limits {
            Some(limits) => this.edit(|shared| {
                shared.limiter = Arc::new(LocalLimiter::with_shared_clock(limits, clock));
            }),
            None => this,
        }
    }

    /// Rate limits in this process ([`LocalLimiter`], on this configuration's clock):
    /// `limits` besides each key's own rate limit and quota. Without it, keys are limited
    /// only by the rate limits and quotas they carry themselves.
    ///
    /// Over a limit, a request gets 429 with `Retry-After` and the `RateLimit-Policy` and
    /// `RateLimit` fields, is audited as `rate_limited` or `quota_exhausted`, and never
    /// reaches the inner service. Limits are counted only for keys that passed
    /// verification, so a forged key spends nobody's budget.
    ///
    /// ```
    /// use keygate::{Keygate, MemoryStore, RateLimit, RateLimits};
    ///
    /// let keygate = Keygate::new(MemoryStore::new())
    ///     .with_rate_limits(RateLimits::new().per_key(RateLimit::per_second(10)?));
    /// # let _ = keygate.layer();
    /// # Ok::<(), keygate::ConfigError>(())
    /// ```
    pub fn with_rate_limits(self, limits: RateLimits) -> Self {
        let clock = self.shared.context.clock.clone();
        self.edit(|shared| {
            shared.limiter = Arc::new(LocalLimiter::with_shared_clock(limits, clock));
            shared.limit_every_key = limits != RateLimits::new();
            shared.local_limits = Some(limits);
        })
    }

    /// Also counts requests per key in the metrics (`keygate_key_requests_total`, label
    /// `key_id`), for at most `cap` distinct keys; later keys count under
    /// `key_id="other"`, so the number of series stays bounded.
    #[cfg(feature = "metrics")]
    pub fn with_per_key_metrics(self, cap: usize) -> Self {
        let per_key = Arc::new(crate::audit::metrics::PerKey::new(cap));
        self.edit_context(|context| context.per_key = Some(per_key))
    }

    /// A limiter of your own, or one shared by a fleet (the Redis limiter), asked for every
    /// verified key. It replaces the in-process one, keys' own limits and quotas included.
    pub fn with_limiter(self, limiter: impl Limiter) -> Self {
        self.edit(|shared| {
            shared.limiter = Arc::new(limiter);
            shared.limit_every_key = true;
            shared.local_limits = None;
        })
    }

    /// The realm named in `WWW-Authenticate` challenges (default `api`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRealm`] unless it is 1 to 128 printable ASCII characters
    /// without `"` or `\`.
    pub fn with_realm(self, realm: &str) -> Result<Self, ConfigError> {
        let mut responder = self.shared.context.responder.clone();
        responder.set_realm(realm)?;
        Ok(self.edit_context(|context| context.responder = responder))
    }

    /// The `Retry-After` sent with 503 responses, rounded up to whole seconds (default 1).
    pub fn with_retry_after(self, after: Duration) -> Self {
        self.edit_context(|context| context.responder.set_retry_after(after))
    }

    /// Reshapes rejection responses: `hook` gets the [`Rejection`] (with its precise
    /// reason) and the default response, and returns the response to send.
    ///
    /// Keep one body for all invalid keys: telling them apart tells attackers which keys
    /// exist.
    ///
    /// ```
    /// use keygate::{Keygate, MemoryStore};
    ///
    /// let keygate = Keygate::new(MemoryStore::new()).with_rejection_response(
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
        self.edit_context(|context| context.responder.set_hook(Arc::new(hook)))
    }

    /// Whether to remove the credential header before the inner service sees the request
    /// (default `true`), so handlers, their logs and proxied calls never hold the key.
    pub fn with_strip_credential(self, strip: bool) -> Self {
        self.edit(|shared| shared.strip_credential = strip)
    }

    /// Whether a request with no credential at all may reach the inner service, without
    /// an [`Identity`](crate::Identity) (default `false`). Requests with an invalid
    /// credential are still refused. Handlers take `Option<Identity>` to serve both kinds
    /// of caller.
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
    /// counted in [`Keygate::stats`].
    ///
    /// With [`NoAudit`] no event is built at all.
    pub fn with_audit_sink<A: AuditSink>(self, sink: A, capacity: usize) -> Self {
        let discard = std::any::TypeId::of::<A>() == std::any::TypeId::of::<NoAudit>();
        let audit = (!discard).then(|| Arc::new(AuditLog::new(sink, capacity)));
        self.edit_context(|context| context.audit = audit)
    }

    /// The layer for your router (or any tower service).
    pub fn layer(&self) -> ApiKeyLayer {
        ApiKeyLayer {
            shared: self.shared.clone(),
        }
    }

    /// A per-route guard that lets only keys holding `scope` through; others get 403
    /// `insufficient_scope` naming the scope.
    ///
    /// ```
    /// use axum::{Router, routing::post};
    /// use keygate::{Keygate, MemoryStore};
    ///
    /// let keygate = Keygate::new(MemoryStore::new());
    /// let app: Router = Router::new()
    ///     .route("/keys", post(|| async { "created" }))
    ///     .route_layer(keygate.require_scope("keys:write")?)
    ///     .layer(keygate.layer());
    /// # Ok::<(), keygate::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidScope`] when `scope` is not a valid scope token.
    pub fn require_scope(&self, scope: &str) -> Result<RequireScopeLayer, ConfigError> {
        self.layer().require_scope(scope)
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The format of keys.
    pub fn format(&self) -> &KeyFormat {
        &self.shared.format
    }

    /// Where keys are read from, in order.
    pub fn sources(&self) -> &[KeySource] {
        &self.shared.sources
    }

    /// The hasher of keys.
    pub fn hasher(&self) -> &KeyHasher {
        &self.shared.hasher
    }

    /// A generator of keys in this configuration's format.
    pub fn generator(&self) -> KeyGenerator {
        KeyGenerator::new(self.shared.format.clone())
    }

    /// Writes pending last-used data to the store now; returns how many keys were written.
    ///
    /// # Errors
    ///
    /// The store's error; the data stays pending for the next flush.
    pub async fn flush_usage(&self) -> Result<usize, StoreError> {
        self.layer().flush_usage().await
    }

    /// Counters of the audit pipeline and usage tracking.
    pub fn stats(&self) -> LayerStats {
        self.layer().stats()
    }
}

impl<S> fmt::Debug for Keygate<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keygate")
            .field("layer", &self.shared)
            .field("max_keys_per_owner", &self.max_keys)
            .finish_non_exhaustive()
    }
}
