//! [`Rejection`]: why a request was refused, and the response each reason gets.
//!
//! Responses follow RFC 6750 §3. Every invalid key, whatever the reason, gets the same
//! status, challenge and body, so a caller learns nothing about which keys exist; the
//! precise reason is kept in the [`Rejection`] for audit.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use crate::audit::Reason;
use crate::error::ConfigError;
use crate::key::MalformedKey;
use crate::store::StoreError;

/// Why the layer refused a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejection {
    /// No credential in any configured source: 401 with a bare challenge.
    Missing,
    /// A credential that does not authenticate: 401 `invalid_token`.
    Invalid(InvalidKey),
    /// More than one credential (a repeated header, or two sources): 400 `invalid_request`.
    Ambiguous,
    /// A valid key that does not grant this request: 403 `insufficient_scope`.
    Forbidden(Insufficient),
    /// The store failed or timed out: 503 with `Retry-After`.
    Unavailable(StoreError),
}

/// What a valid key lacks for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Insufficient {
    /// The key is bound to another space than the one the request targets.
    Space,
    /// The key lacks this scope.
    Scope(String),
}

impl Rejection {
    /// The HTTP status this rejection is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::Invalid(_) => StatusCode::UNAUTHORIZED,
            Self::Ambiguous => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The audit reason: as precise as the layer knows it.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Missing => Reason::Missing,
            Self::Ambiguous => Reason::Ambiguous,
            Self::Invalid(InvalidKey::Malformed(malformed)) => Reason::Malformed(*malformed),
            Self::Invalid(InvalidKey::Unknown) => Reason::Unknown,
            Self::Invalid(InvalidKey::WrongSecret) => Reason::WrongSecret,
            Self::Invalid(InvalidKey::Revoked) => Reason::Revoked,
            Self::Invalid(InvalidKey::Expired) => Reason::Expired,
            Self::Forbidden(Insufficient::Space) => Reason::WrongSpace,
            Self::Forbidden(Insufficient::Scope(scope)) => Reason::MissingScope(scope.clone()),
            Self::Unavailable(StoreError::Timeout(_)) => Reason::StoreTimeout,
            Self::Unavailable(_) => Reason::StoreError,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no API key was presented"),
            Self::Invalid(reason) => write!(f, "invalid API key: {reason}"),
            Self::Ambiguous => f.write_str("more than one API key was presented"),
            Self::Forbidden(Insufficient::Space) => {
                f.write_str("the API key is bound to another space")
            }
            Self::Forbidden(Insufficient::Scope(scope)) => {
                write!(f, "the API key lacks scope {scope}")
            }
            Self::Unavailable(_) => f.write_str("the key store is unavailable"),
        }
    }
}

impl std::error::Error for Rejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(reason) => Some(reason),
            Self::Unavailable(error) => Some(error),
            _ => None,
        }
    }
}

/// The precise reason a presented key is invalid. Never sent to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidKey {
    /// The key failed the format check; the store was not consulted.
    #[error("malformed: {0}")]
    Malformed(MalformedKey),
    /// No key with this id exists.
    #[error("unknown key id")]
    Unknown,
    /// A key with this id exists, but the secret does not match.
    #[error("wrong secret")]
    WrongSecret,
    /// The key was revoked.
    #[error("revoked")]
    Revoked,
    /// The key has expired.
    #[error("expired")]
    Expired,
}

/// A function that reshapes a rejection response: it gets the rejection and the default
/// response, and returns the response to send.
pub(crate) type RejectionHook =
    Arc<dyn Fn(&Rejection, Response<Bytes>) -> Response<Bytes> + Send + Sync>;

/// Builds rejection responses; the challenge headers are rendered once, at configuration.
#[derive(Clone)]
pub(crate) struct Responder {
    realm: Box<str>,
    missing: HeaderValue,
    invalid: HeaderValue,
    ambiguous: HeaderValue,
    insufficient: HeaderValue,
    retry_after: HeaderValue,
    hook: Option<RejectionHook>,
}

const BODY_MISSING: &str =
    r#"{"error":"unauthorized","error_description":"an API key is required"}"#;
const BODY_INVALID: &str =
    r#"{"error":"invalid_token","error_description":"the API key is invalid, expired or revoked"}"#;
const BODY_AMBIGUOUS: &str =
    r#"{"error":"invalid_request","error_description":"send exactly one API key"}"#;
const BODY_WRONG_SPACE: &str =
    r#"{"error":"insufficient_scope","error_description":"the API key is bound to another space"}"#;
const BODY_UNAVAILABLE: &str = r#"{"error":"temporarily_unavailable","error_description":"authentication is temporarily unavailable; retry later"}"#;

/// The realm used when none is configured.
pub(crate) const DEFAULT_REALM: &str = "api";

impl Responder {
    pub(crate) fn new(realm: &str) -> Result<Self, ConfigError> {
        let mut responder = Self {
            realm: Box::default(),
            missing: HeaderValue::from_static(""),
            invalid: HeaderValue::from_static(""),
            ambiguous: HeaderValue::from_static(""),
            insufficient: HeaderValue::from_static(""),
            retry_after: HeaderValue::from_static("1"),
            hook: None,
        };
        responder.set_realm(realm)?;
        Ok(responder)
    }

    /// Renders the challenges for `realm`; on error nothing changes.
    pub(crate) fn set_realm(&mut self, realm: &str) -> Result<(), ConfigError> {
        // The realm goes inside a quoted-string; refusing `"` and `\` means no escaping is
        // ever needed, and refusing non-printables keeps the header value valid.
        let printable = realm.bytes().all(|b| (0x20..0x7f).contains(&b));
        if realm.is_empty() || realm.len() > 128 || !printable || realm.contains(['"', '\\']) {
            return Err(ConfigError::InvalidRealm);
        }
        let challenge = |error: &str| {
            let value = if error.is_empty() {
                format!(r#"Bearer realm="{realm}""#)
            } else {
                format!(r#"Bearer realm="{realm}", error="{error}""#)
            };
            HeaderValue::try_from(value).map_err(|_| ConfigError::InvalidRealm)
        };
        let missing = challenge("")?;
        let invalid = challenge("invalid_token")?;
        let ambiguous = challenge("invalid_request")?;
        let insufficient = challenge("insufficient_scope")?;
        self.realm = realm.into();
        self.insufficient = insufficient;
        self.missing = missing;
        self.invalid = invalid;
        self.ambiguous = ambiguous;
        Ok(())
    }

    pub(crate) fn set_retry_after(&mut self, after: Duration) {
        // Retry-After takes whole seconds; round up so clients never retry early.
        let secs = after
            .as_secs()
            .saturating_add(u64::from(after.subsec_nanos() > 0));
        self.retry_after = HeaderValue::from(secs.max(1));
    }

    pub(crate) fn set_hook(&mut self, hook: RejectionHook) {
        self.hook = Some(hook);
    }

    /// The response for `rejection`.
    pub(crate) fn respond(&self, rejection: &Rejection) -> Response<Bytes> {
        let (challenge, body) = match rejection {
            Rejection::Missing => (Some(self.missing.clone()), BODY_MISSING.into()),
            Rejection::Invalid(_) => (Some(self.invalid.clone()), BODY_INVALID.into()),
            Rejection::Ambiguous => (Some(self.ambiguous.clone()), BODY_AMBIGUOUS.into()),
            Rejection::Forbidden(Insufficient::Space) => {
                (Some(self.insufficient.clone()), BODY_WRONG_SPACE.into())
            }
            Rejection::Forbidden(Insufficient::Scope(scope)) => {
                // Scope tokens exclude `"`, `\` and controls (see `Scopes`), so they need no
                // escaping in the quoted-string or the JSON string.
                let challenge = format!(
                    r#"Bearer realm="{}", error="insufficient_scope", scope="{scope}""#,
                    self.realm
                );
                let body = format!(
                    r#"{{"error":"insufficient_scope","error_description":"the API key lacks a required scope","scope":"{scope}"}}"#
                );
                (HeaderValue::try_from(challenge).ok(), Bytes::from(body))
            }
            Rejection::Unavailable(_) => (None, BODY_UNAVAILABLE.into()),
        };
        let mut response = Response::new(body);
        *response.status_mut() = rejection.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if matches!(rejection, Rejection::Unavailable(_)) {
            headers.insert(RETRY_AFTER, self.retry_after.clone());
        }
        match &self.hook {
            Some(hook) => hook(rejection, response),
            None => response,
        }
    }
}

impl Default for Responder {
    fn default() -> Self {
        Self::new(DEFAULT_REALM).unwrap_or_else(|_| unreachable!("the default realm is valid"))
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("realm", &self.realm)
            .field("retry_after", &self.retry_after)
            .field("hook", &self.hook.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for Rejection {
    /// Renders with the default realm (`api`). Inside the layer, its configured realm and
    /// hook are used instead.
    fn into_response(self) -> axum_core::response::Response {
        Responder::default()
            .respond(&self)
            .map(axum_core::body::Body::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(response: &Response<Bytes>, name: http::header::HeaderName) -> &str {
        response.headers()[name].to_str().unwrap()
    }

    #[test]
    fn missing_gets_a_challenge_without_error() {
        let response = Responder::new("shop").unwrap().respond(&Rejection::Missing);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            header(&response, WWW_AUTHENTICATE),
            r#"Bearer realm="shop""#
        );
    }

    #[test]
    fn every_invalid_reason_gets_the_same_response() {
        let responder = Responder::default();
        let reasons = [
            InvalidKey::Malformed(MalformedKey::Checksum),
            InvalidKey::Unknown,
            InvalidKey::WrongSecret,
            InvalidKey::Revoked,
            InvalidKey::Expired,
        ];
        let first = responder.respond(&Rejection::Invalid(reasons[0]));
        for reason in reasons {
            let response = responder.respond(&Rejection::Invalid(reason));
            assert_eq!(response.status(), first.status());
            assert_eq!(response.headers(), first.headers());
            assert_eq!(response.body(), first.body());
        }
        assert_eq!(
            header(&first, WWW_AUTHENTICATE),
            r#"Bearer realm="api", error="invalid_token""#
        );
    }

    #[test]
    fn unavailable_gets_retry_after_rounded_up() {
        let mut responder = Responder::default();
        responder.set_retry_after(Duration::from_millis(1500));
        let response = responder.respond(&Rejection::Unavailable(StoreError::Conflict));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&response, RETRY_AFTER), "2");
    }

    #[test]
    fn missing_scope_is_named_in_challenge_and_body() {
        let response = Responder::default().respond(&Rejection::Forbidden(Insufficient::Scope(
            "keys:write".into(),
        )));
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            header(&response, WWW_AUTHENTICATE),
            r#"Bearer realm="api", error="insufficient_scope", scope="keys:write""#
        );
        assert!(
            std::str::from_utf8(response.body())
                .unwrap()
                .contains(r#""scope":"keys:write""#)
        );
    }

    #[test]
    fn realm_with_quote_or_control_byte_is_rejected() {
        for realm in ["", "a\"b", "a\\b", "a\nb", &"r".repeat(129)] {
            assert_eq!(
                Responder::new(realm).err(),
                Some(ConfigError::InvalidRealm),
                "{realm:?}"
            );
        }
    }

    #[test]
    fn hook_reshapes_the_response() {
        let mut responder = Responder::default();
        responder.set_hook(Arc::new(|rejection, mut response| {
            if matches!(rejection, Rejection::Missing) {
                *response.body_mut() = Bytes::from_static(b"custom");
            }
            response
        }));
        assert_eq!(responder.respond(&Rejection::Missing).body(), "custom");
        assert_eq!(
            responder.respond(&Rejection::Ambiguous).body(),
            BODY_AMBIGUOUS
        );
    }
}
