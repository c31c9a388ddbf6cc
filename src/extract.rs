//! axum extractors: [`Identity`] and `Option<Identity>` in handler arguments.

use std::fmt;

use axum_core::body::Body;
use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::identity::Identity;
use crate::layer::Anonymous;
use crate::reject::{Rejection, Responder};

/// Takes the [`Identity`] that [`ApiKeyLayer`](crate::ApiKeyLayer) verified.
///
/// Without one (the route is not behind the layer, or the layer let an anonymous request
/// through) the handler is not run and the client gets 401 with a challenge.
impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = MissingIdentity;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Identity>() {
            Some(identity) => Ok(identity.clone()),
            None => Err(MissingIdentity {
                responder: parts
                    .extensions
                    .get::<Anonymous>()
                    .map(|anonymous| anonymous.0.responder.clone()),
            }),
        }
    }
}

/// `Option<Identity>`: `None` for a caller the layer let through anonymously
/// (see [`ApiKeyLayer::with_anonymous`](crate::ApiKeyLayer::with_anonymous)).
impl<S: Send + Sync> OptionalFromRequestParts<S> for Identity {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Identity>().cloned())
    }
}

/// The rejection of the [`Identity`] extractor: no verified key on this request.
///
/// Answers 401 with the layer's challenge.
pub struct MissingIdentity {
    /// The layer's responder when the layer let the request through anonymously, so the
    /// challenge names the configured realm.
    responder: Option<Responder>,
}

impl IntoResponse for MissingIdentity {
    fn into_response(self) -> Response {
        self.responder
            .unwrap_or_default()
            .respond(&Rejection::Missing)
            .map(Body::from)
    }
}

impl fmt::Debug for MissingIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MissingIdentity").finish_non_exhaustive()
    }
}

impl fmt::Display for MissingIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request carries no verified API key")
    }
}

impl std::error::Error for MissingIdentity {}
