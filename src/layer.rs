//! [`ApiKeyLayer`], [`ApiKeyService`] and their [`ResponseFuture`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::hash::{KeyHash, KeyHasher};
use crate::identity::Identity;
use crate::key::KeyFormat;
use crate::reject::{InvalidKey, Rejection, Responder};
use crate::source::{self, KeySource};
use crate::store::{KeyStore, StoreError, StoredKey};
use crate::verify::verify;

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
/// | store error | 503 with `Retry-After` |
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
}

impl ApiKeyLayer {
    /// A layer that looks keys up in `store`.
    ///
    /// Defaults: keys from `Authorization: Bearer` only, [`KeyFormat::new`] (prefix `kg`),
    /// plain SHA-256, the system clock, realm `api`, `Retry-After: 1`, the credential
    /// header removed before the inner service, and anonymous requests refused.
    pub fn new(store: impl KeyStore) -> Self {
        Self {
            shared: Arc::new(Shared {
                store: Arc::new(store),
                sources: Box::new([KeySource::bearer()]),
                format: KeyFormat::new(),
                hasher: KeyHasher::sha256(),
                clock: Arc::new(SystemClock),
                responder: Responder::default(),
                strip_credential: true,
                anonymous: false,
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

/// Marks a request let through without a credential, so extractors can answer with the
/// layer's own challenge.
#[derive(Clone)]
#[cfg_attr(not(feature = "axum"), allow(dead_code))] // read only by the axum extractors
pub(crate) struct Anonymous(pub(crate) Arc<Shared>);

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
        let presented = match source::find(&shared.sources, request.headers()) {
            Ok(Some(presented)) => presented,
            Ok(None) if shared.anonymous => {
                request.extensions_mut().insert(Anonymous(shared.clone()));
                return ResponseFuture::inner(self.inner.call(request));
            }
            Ok(None) => return ResponseFuture::rejected(shared.respond(&Rejection::Missing)),
            Err(source::Ambiguous) => {
                return ResponseFuture::rejected(shared.respond(&Rejection::Ambiguous));
            }
        };
        let id = match shared.format.check_bytes(presented.token) {
            Ok(id) => id,
            Err(malformed) => {
                let rejection = Rejection::Invalid(InvalidKey::Malformed(malformed));
                return ResponseFuture::rejected(shared.respond(&rejection));
            }
        };
        let hash = shared.hasher.hash_bytes(presented.token);
        let header = presented.source.header_name().clone();
        if shared.strip_credential {
            request.headers_mut().remove(header);
        }

        let store = shared.store.clone();
        let lookup: LookupFuture = Box::pin(async move { store.find(&id).await });
        // Take the service that poll_ready readied and leave a clone in its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            state: State::Lookup {
                lookup,
                pending: Some(Pending {
                    inner,
                    request,
                    hash,
                    shared: shared.clone(),
                }),
            },
        }
    }
}

impl Shared {
    fn respond(&self, rejection: &Rejection) -> Response<Bytes> {
        self.responder.respond(rejection)
    }
}

type LookupFuture = Pin<Box<dyn Future<Output = Result<Option<StoredKey>, StoreError>> + Send>>;

/// What a request waiting on its lookup carries into the future.
struct Pending<S, B> {
    inner: S,
    request: Request<B>,
    hash: KeyHash,
    shared: Arc<Shared>,
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
    fn inner(future: S::Future) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    fn rejected(response: Response<Bytes>) -> Self {
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
                    let found = ready!(lookup.as_mut().poll(cx));
                    let Pending {
                        mut inner,
                        mut request,
                        hash,
                        shared,
                    } = pending
                        .take()
                        .expect("ResponseFuture polled after completion");
                    let decision = match found {
                        Ok(stored) => {
                            verify(stored, &hash, shared.clock.now()).map_err(Rejection::Invalid)
                        }
                        Err(error) => Err(Rejection::Unavailable(error)),
                    };
                    match decision {
                        Ok(identity) => {
                            request.extensions_mut().insert::<Identity>(identity);
                            let future = inner.call(request);
                            this.state.set(State::Inner { future });
                        }
                        Err(rejection) => {
                            let response = shared.respond(&rejection).map(ResBody::from);
                            return Poll::Ready(Ok(response));
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
