//! [`ActorResolver`]: who is acting on a management request, as the host app says.

use async_trait::async_trait;
use http::request::Parts;

use crate::context::Authenticated;
use crate::manage::actor::Actor;
use crate::manage::problem::Problem;

/// Says who is acting on a management request: a key the keygate layer in front verified
/// ([`KeyWithScope`]), or a person from the app's own session ([`from_fn`], or an
/// implementation of your own that reads an async session store).
///
/// ```
/// use http::request::Parts;
/// use keygate::{Actor, ActorResolver, Problem, Scopes};
///
/// /// The person your session layer signed in (here: an extension it inserted).
/// #[derive(Clone)]
/// struct SignedIn(String);
///
/// struct FromSession;
///
/// #[keygate::async_trait]
/// impl ActorResolver for FromSession {
///     async fn resolve(&self, parts: &mut Parts) -> Result<Actor, Problem> {
///         let signed_in = parts.extensions.get::<SignedIn>().cloned();
///         signed_in
///             .map(|person| Actor::person(person.0, Scopes::default()))
///             .ok_or_else(|| Problem::unauthorized("sign in to manage keys"))
///     }
/// }
/// ```
#[async_trait]
pub trait ActorResolver: Send + Sync + 'static {
    /// The actor of `parts`, or the problem to answer with (401 when no one is signed in,
    /// 403 when someone is but may not manage keys). `parts` is mutable so that axum
    /// extractors (a session, a cookie jar) can run on it.
    async fn resolve(&self, parts: &mut Parts) -> Result<Actor, Problem>;
}

/// The key the keygate layer verified, if it holds a management scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyWithScope(String);

impl KeyWithScope {
    /// Keys holding `scope` (for example `keys:write`) manage keys.
    pub fn new(scope: impl Into<String>) -> Self {
        Self(scope.into())
    }
}

#[async_trait]
impl ActorResolver for KeyWithScope {
    async fn resolve(&self, parts: &mut Parts) -> Result<Actor, Problem> {
        let Some(authenticated) = parts.extensions.get::<Authenticated>() else {
            return Err(Problem::unauthorized(
                "send an API key; nest this router behind the keygate layer",
            ));
        };
        let identity = authenticated.identity();
        if !identity.scopes().contains(&self.0) {
            return Err(Problem::new(
                http::StatusCode::FORBIDDEN,
                "forbidden",
                "Not allowed",
                format!("managing keys needs scope {}", self.0),
            ));
        }
        Ok(Actor::key(identity))
    }
}

/// A resolver from a closure over the request: the app's session says who the person is
/// (`None`: no one is signed in, 401).
///
/// ```
/// use keygate::{Actor, Scopes, manage_from_fn};
///
/// let resolver = manage_from_fn(|parts| {
///     let user = parts.headers.get("x-demo-user")?.to_str().ok()?;
///     Some(Actor::person(user, Scopes::default()))
/// });
/// # let _ = resolver;
/// ```
pub fn from_fn<F>(resolve: F) -> FromFn<F>
where
    F: Fn(&Parts) -> Option<Actor> + Send + Sync + 'static,
{
    FromFn(resolve)
}

/// The resolver [`from_fn`] makes.
#[derive(Clone)]
pub struct FromFn<F>(F);

impl<F> std::fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FromFn(..)")
    }
}

#[async_trait]
impl<F> ActorResolver for FromFn<F>
where
    F: Fn(&Parts) -> Option<Actor> + Send + Sync + 'static,
{
    async fn resolve(&self, parts: &mut Parts) -> Result<Actor, Problem> {
        (self.0)(parts).ok_or_else(|| Problem::unauthorized("sign in to manage keys"))
    }
}
