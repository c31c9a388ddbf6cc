//! [`Problem`]: the management API's errors, as `application/problem+json` (RFC 9457)
//! with stable `type` URIs (`urn:keygate:problem:…`).

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde::Serialize;

use crate::manage::error::ManageError;

/// One error of the management API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Problem {
    /// A stable URI naming the kind of error: `urn:keygate:problem:not-found`, …
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(example = "urn:keygate:problem:not-found"))]
    pub kind: String,
    /// A short summary of the kind.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
}

impl Problem {
    /// A problem of kind `urn:keygate:problem:{kind}`.
    pub fn new(
        status: StatusCode,
        kind: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: format!("urn:keygate:problem:{kind}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// No one the app can name is acting (401).
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Not signed in",
            detail,
        )
    }

    /// The request itself is malformed (400).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            detail,
        )
    }

    /// The body is not JSON (415).
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send JSON",
            "send the body as Content-Type: application/json",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<ManageError> for Problem {
    fn from(error: ManageError) -> Self {
        let detail = error.to_string();
        match &error {
            error if error.is_forbidden() => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed", detail)
            }
            ManageError::Invalid(_) => Self::bad_request(detail),
            ManageError::NotFound => {
                Self::new(StatusCode::NOT_FOUND, "not-found", "No such key", detail)
            }
            ManageError::Revoked | ManageError::Expired => Self::new(
                StatusCode::CONFLICT,
                "key-inactive",
                "The key is inactive",
                detail,
            ),
            ManageError::TooManyKeys { .. } => Self::new(
                StatusCode::CONFLICT,
                "too-many-keys",
                "Too many keys",
                detail,
            ),
            _ => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Key management is unavailable",
                "the key store is unavailable; retry later",
            ),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [
                (CONTENT_TYPE, "application/problem+json"),
                (CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response()
    }
}
