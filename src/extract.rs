//! axum extractors: [`Identity`], `Option<Identity>` and the [`RequireScope`] guard.

use std::fmt;
use std::marker::PhantomData;

use axum_core::body::Body;
use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::context::{Authenticated, LayerContext};
use crate::identity::Identity;
use crate::reject::rejection::{Insufficient, Rejection};

/// Takes the [`Identity`] that [`ApiKeyLayer`](crate::ApiKeyLayer) verified.
///
/// When the layer let the request through without a key
/// ([`with_anonymous`](crate::Keygate::with_anonymous)), the handler is not run and the
/// client gets 401 with the layer's challenge. When the route is not behind the layer at
/// all, that is a wiring mistake, answered with 500 as axum answers a missing `Extension`.
impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = IdentityRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(authenticated) = parts.extensions.get::<Authenticated>() {
            return Ok(authenticated.identity().clone());
        }
        Err(IdentityRejection::deny(parts, Rejection::Missing))
    }
}

/// `Option<Identity>`: `None` for a caller the layer let through anonymously.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Identity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let authenticated = parts.extensions.get::<Authenticated>();
        Ok(authenticated.map(|found| found.identity().clone()))
    }
}

/// A scope, named by a type, for [`RequireScope`].
///
/// ```
/// struct KeysWrite;
/// impl keygate::ScopeName for KeysWrite {
///     const SCOPE: &'static str = "keys:write";
/// }
/// ```
pub trait ScopeName: Send + Sync + 'static {
    /// The scope token; it must be a valid one (see [`Scopes`](crate::Scopes)).
    const SCOPE: &'static str;
}

/// Extracts the [`Identity`] only when its key holds scope `T::SCOPE`; otherwise the
/// handler is not run and the client gets 403 `insufficient_scope` naming the scope.
///
/// ```
/// use keygate::{RequireScope, ScopeName};
///
/// struct KeysWrite;
/// impl ScopeName for KeysWrite {
///     const SCOPE: &'static str = "keys:write";
/// }
///
/// async fn create_key(RequireScope(identity, ..): RequireScope<KeysWrite>) -> String {
///     format!("{} may manage keys", identity.user())
/// }
/// ```
pub struct RequireScope<T: ScopeName>(pub Identity, pub PhantomData<T>);

impl<T: ScopeName> fmt::Debug for RequireScope<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequireScope")
            .field(&T::SCOPE)
            .field(&self.0)
            .finish()
    }
}

impl<S: Send + Sync, T: ScopeName> FromRequestParts<S> for RequireScope<T> {
    type Rejection = IdentityRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let identity = <Identity as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        if identity.scopes().contains(T::SCOPE) {
            return Ok(Self(identity, PhantomData));
        }
        let rejection = Rejection::Forbidden(Insufficient::Scope(T::SCOPE.to_owned()));
        Err(IdentityRejection::deny(parts, rejection))
    }
}

/// The rejection of the [`Identity`] and [`RequireScope`] extractors.
pub struct IdentityRejection(RejectionKind);

enum RejectionKind {
    /// Rendered by the layer that let the request through, already audited.
    Denied(http::Response<bytes::Bytes>),
    /// No `ApiKeyLayer` in front of this route.
    NoLayer,
}

impl IdentityRejection {
    /// Answers as the layer in front of this route, which put its context on the request.
    fn deny(parts: &Parts, rejection: Rejection) -> Self {
        let authenticated = parts.extensions.get::<Authenticated>();
        let context = match authenticated {
            Some(found) => Some(&found.context),
            None => parts.extensions.get::<LayerContext>().map(|layer| &layer.0),
        };
        let Some(context) = context else {
            return Self(RejectionKind::NoLayer);
        };
        let identity = authenticated.map(Authenticated::identity);
        let response = context.deny(&rejection, &parts.method, &parts.uri, identity);
        Self(RejectionKind::Denied(response))
    }

    /// The HTTP status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        match &self.0 {
            RejectionKind::Denied(response) => response.status(),
            RejectionKind::NoLayer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for IdentityRejection {
    fn into_response(self) -> Response {
        match self.0 {
            RejectionKind::Denied(response) => response.map(Body::from),
            RejectionKind::NoLayer => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "keygate: this route reads an Identity but is not behind ApiKeyLayer",
            )
                .into_response(),
        }
    }
}

impl fmt::Debug for IdentityRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdentityRejection")
            .field(&self.status())
            .finish()
    }
}

impl fmt::Display for IdentityRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            RejectionKind::Denied(response) if response.status() == StatusCode::FORBIDDEN => {
                f.write_str("the API key lacks a required scope")
            }
            RejectionKind::Denied(_) => f.write_str("the request carries no verified API key"),
            RejectionKind::NoLayer => f.write_str("the route is not behind ApiKeyLayer"),
        }
    }
}

impl std::error::Error for IdentityRejection {}
