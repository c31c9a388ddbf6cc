//! [`Responder`]: the response each [`Rejection`] gets.
//!
//! Responses follow RFC 6750 §3. Every invalid key, whatever the reason, gets the same
//! status, challenge and body, so a caller learns nothing about which keys exist; the
//! precise reason is kept in the [`Rejection`] for audit.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderName;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response};

use crate::error::ConfigError;
use crate::policy::limit::{LimitKind, LimitRefusal, LimitStatus};
use crate::reject::rejection::{Insufficient, Rejection};
use crate::source::KeySource;

/// A function that reshapes a rejection response: it gets the rejection and the default
/// response, and returns the response to send.
pub(crate) type RejectionHook =
    Arc<dyn Fn(&Rejection, Response<Bytes>) -> Response<Bytes> + Send + Sync>;

/// Builds rejection responses; the challenge headers are rendered once, at configuration.
#[derive(Clone)]
pub(crate) struct Responder {
    realm: Box<str>,
    /// How the client should send its key: what the challenges and the "missing" body name.
    send: SendKey,
    /// The challenge without `error=`: `Bearer realm="api"`, or
    /// `Key realm="api", header="x-api-key"`.
    head: Box<str>,
    missing: HeaderValue,
    invalid: HeaderValue,
    ambiguous: HeaderValue,
    insufficient: HeaderValue,
    missing_body: Bytes,
    retry_after: HeaderValue,
    hook: Option<RejectionHook>,
}

/// How a client sends its key, for the challenge and the "missing" body.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SendKey {
    /// `Authorization: Bearer <key>`, maybe besides named headers: the RFC 6750
    /// challenge, unchanged.
    Bearer { headers: Vec<HeaderName> },
    /// Named headers only: Kong's `Key` scheme, with the header named in a `header`
    /// parameter (RFC 7235 allows any auth-param).
    Headers(Vec<HeaderName>),
}

const BODY_INVALID: &str =
    r#"{"error":"invalid_token","error_description":"the API key is invalid, expired or revoked"}"#;
const BODY_AMBIGUOUS: &str =
    r#"{"error":"invalid_request","error_description":"send exactly one API key"}"#;
const BODY_WRONG_SPACE: &str =
    r#"{"error":"insufficient_scope","error_description":"the API key is bound to another space"}"#;
const BODY_RATE_LIMITED: &str = r#"{"type":"urn:keygate:problem:rate-limited","title":"Too many requests","status":429,"detail":"the API key is over its rate limit; retry after the time Retry-After gives"}"#;
const BODY_QUOTA_EXHAUSTED: &str = r#"{"type":"urn:keygate:problem:quota-exhausted","title":"Quota exhausted","status":429,"detail":"the API key has used up its quota until it refills"}"#;
const BODY_UNAVAILABLE: &str = r#"{"error":"temporarily_unavailable","error_description":"authentication is temporarily unavailable; retry later"}"#;

/// The realm used when none is configured.
pub(crate) const DEFAULT_REALM: &str = "api";

impl Responder {
    pub(crate) fn new(realm: &str) -> Result<Self, ConfigError> {
        let mut responder = Self {
            realm: Box::default(),
            send: SendKey::Bearer {
                headers: Vec::new(),
            },
            head: Box::default(),
            missing: HeaderValue::from_static(""),
            invalid: HeaderValue::from_static(""),
            ambiguous: HeaderValue::from_static(""),
            insufficient: HeaderValue::from_static(""),
            missing_body: Bytes::new(),
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
        self.render(realm, self.send.clone())
    }

    /// Renders the challenges and the "missing" body for the configured key sources.
    pub(crate) fn set_sources(&mut self, sources: &[KeySource]) -> Result<(), ConfigError> {
        let headers = sources
            .iter()
            .filter(|source| !source.is_bearer())
            .map(|source| source.header_name().clone())
            .collect();
        let send = if sources.iter().any(KeySource::is_bearer) {
            SendKey::Bearer { headers }
        } else {
            SendKey::Headers(headers)
        };
        let realm = self.realm.clone();
        self.render(&realm, send)
    }

    fn render(&mut self, realm: &str, send: SendKey) -> Result<(), ConfigError> {
        // Header names are tokens: no quote, backslash or space to escape, in the
        // challenge's quoted-string or in the JSON body.
        let head = match &send {
            SendKey::Bearer { .. } => format!(r#"Bearer realm="{realm}""#),
            SendKey::Headers(headers) => {
                let names: Vec<&str> = headers.iter().map(HeaderName::as_str).collect();
                format!(r#"Key realm="{realm}", header="{}""#, names.join(", "))
            }
        };
        let challenge = |error: &str| {
            let value = if error.is_empty() {
                head.clone()
            } else {
                format!(r#"{head}, error="{error}""#)
            };
            HeaderValue::try_from(value).map_err(|_| ConfigError::InvalidRealm)
        };
        let missing = challenge("")?;
        let invalid = challenge("invalid_token")?;
        let ambiguous = challenge("invalid_request")?;
        let insufficient = challenge("insufficient_scope")?;
        let mut ways = Vec::new();
        let named = match &send {
            SendKey::Bearer { headers } => {
                ways.push("as Authorization: Bearer <key>".to_owned());
                headers
            }
            SendKey::Headers(headers) => headers,
        };
        for header in named {
            ways.push(format!("in the {header} header"));
        }
        self.missing_body = Bytes::from(format!(
            r#"{{"error":"unauthorized","error_description":"an API key is required: send it {}"}}"#,
            ways.join(", or ")
        ));
        self.realm = realm.into();
        self.send = send;
        self.head = head.into();
        self.insufficient = insufficient;
        self.missing = missing;
        self.invalid = invalid;
        self.ambiguous = ambiguous;
        Ok(())
    }

    pub(crate) fn set_retry_after(&mut self, after: Duration) {
        self.retry_after = HeaderValue::from(whole_seconds(after).max(1));
    }

    pub(crate) fn set_hook(&mut self, hook: RejectionHook) {
        self.hook = Some(hook);
    }

    /// The response for `rejection`.
    pub(crate) fn respond(&self, rejection: &Rejection) -> Response<Bytes> {
        let (challenge, body) = match rejection {
            Rejection::Missing => (Some(self.missing.clone()), self.missing_body.clone()),
            Rejection::Invalid(_) => (Some(self.invalid.clone()), BODY_INVALID.into()),
            Rejection::Ambiguous => (Some(self.ambiguous.clone()), BODY_AMBIGUOUS.into()),
            Rejection::Forbidden(Insufficient::Space) => {
                (Some(self.insufficient.clone()), BODY_WRONG_SPACE.into())
            }
            Rejection::Forbidden(Insufficient::Scope(scope)) => {
                // Scope tokens exclude `"`, `\` and controls (see `Scopes`), so they need no
                // escaping in the quoted-string or the JSON string.
                let challenge = format!(
                    r#"{}, error="insufficient_scope", scope="{scope}""#,
                    self.head
                );
                let body = format!(
                    r#"{{"error":"insufficient_scope","error_description":"the API key lacks a required scope","scope":"{scope}"}}"#
                );
                (HeaderValue::try_from(challenge).ok(), Bytes::from(body))
            }
            Rejection::Unavailable(_) | Rejection::LimiterUnavailable(_) => {
                (None, BODY_UNAVAILABLE.into())
            }
            Rejection::Limited(refusal) => return self.limited(rejection, refusal),
        };
        let mut response = Response::new(body);
        *response.status_mut() = rejection.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if matches!(
            rejection,
            Rejection::Unavailable(_) | Rejection::LimiterUnavailable(_)
        ) {
            headers.insert(RETRY_AFTER, self.retry_after.clone());
        }
        self.hooked(rejection, response)
    }

    fn hooked(&self, rejection: &Rejection, response: Response<Bytes>) -> Response<Bytes> {
        match &self.hook {
            Some(hook) => hook(rejection, response),
            None => response,
        }
    }

    /// 429 as `application/problem+json` (RFC 9457) with a stable type per limit,
    /// `Retry-After`, and the refusing policy in the `RateLimit-Policy` and `RateLimit`
    /// fields of draft-ietf-httpapi-ratelimit-headers-10.
    fn limited(&self, rejection: &Rejection, refusal: &LimitRefusal) -> Response<Bytes> {
        let body = match refusal.kind {
            LimitKind::RateLimited => BODY_RATE_LIMITED,
            LimitKind::QuotaExhausted => BODY_QUOTA_EXHAUSTED,
        };
        let mut response = Response::new(Bytes::from_static(body.as_bytes()));
        *response.status_mut() = rejection.status();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(after) = refusal.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(whole_seconds(after).max(1)));
        }
        insert_rate_limit_fields(headers, &refusal.status);
        self.hooked(rejection, response)
    }
}

/// Whole seconds, rounded up so that clients never come back early.
pub(crate) fn whole_seconds(after: Duration) -> u64 {
    after
        .as_secs()
        .saturating_add(u64::from(after.subsec_nanos() > 0))
}

/// The `RateLimit-Policy` and `RateLimit` fields for one policy's status
/// (draft-ietf-httpapi-ratelimit-headers-10): `"key";q=5;w=1` and `"key";r=0;t=1`. A quota
/// that never refills has no window and no reset, so `w` and `t` are left out.
pub(crate) fn insert_rate_limit_fields(headers: &mut http::HeaderMap, status: &LimitStatus) {
    let name = status.policy.as_str();
    let mut policy = format!("\"{name}\";q={}", status.quota);
    if let Some(window) = status.window {
        policy.push_str(&format!(";w={}", whole_seconds(window).max(1)));
    }
    let mut current = format!("\"{name}\";r={}", status.remaining);
    if let Some(reset) = status.reset {
        current.push_str(&format!(";t={}", whole_seconds(reset)));
    }
    if let (Ok(policy), Ok(current)) = (
        HeaderValue::try_from(policy),
        HeaderValue::try_from(current),
    ) {
        headers.insert(RATELIMIT_POLICY, policy);
        headers.insert(RATELIMIT, current);
    }
}

/// `RateLimit-Policy`: the limits that apply.
pub(crate) const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`: where the request stands against them.
pub(crate) const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

impl Default for Responder {
    fn default() -> Self {
        Self::new(DEFAULT_REALM).unwrap_or_else(|_| unreachable!("the default realm is valid"))
    }
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("realm", &self.realm)
            .field("send", &self.send)
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
    use http::StatusCode;

    use super::*;
    use crate::key::format::MalformedKey;
    use crate::reject::rejection::InvalidKey;
    use crate::store::error::StoreError;

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

    fn header_only() -> Responder {
        let mut responder = Responder::default();
        responder
            .set_sources(&[KeySource::header("x-api-key").unwrap()])
            .unwrap();
        responder
    }

    #[test]
    fn header_only_sources_get_a_key_challenge_naming_the_header() {
        let responder = header_only();
        let missing = responder.respond(&Rejection::Missing);
        assert_eq!(
            header(&missing, WWW_AUTHENTICATE),
            r#"Key realm="api", header="x-api-key""#
        );
        let invalid = responder.respond(&Rejection::Invalid(InvalidKey::Unknown));
        assert_eq!(
            header(&invalid, WWW_AUTHENTICATE),
            r#"Key realm="api", header="x-api-key", error="invalid_token""#
        );
    }

    #[test]
    fn the_missing_body_names_the_header_to_send() {
        let body = header_only().respond(&Rejection::Missing).into_body();
        assert_eq!(
            body,
            r#"{"error":"unauthorized","error_description":"an API key is required: send it in the x-api-key header"}"#
        );
    }

    #[test]
    fn bearer_among_the_sources_keeps_the_rfc_6750_challenge() {
        let mut responder = Responder::default();
        responder
            .set_sources(&[KeySource::bearer(), KeySource::header("x-api-key").unwrap()])
            .unwrap();
        let missing = responder.respond(&Rejection::Missing);
        assert_eq!(header(&missing, WWW_AUTHENTICATE), r#"Bearer realm="api""#);
        assert_eq!(
            missing.into_body(),
            r#"{"error":"unauthorized","error_description":"an API key is required: send it as Authorization: Bearer <key>, or in the x-api-key header"}"#
        );
    }

    #[test]
    fn a_realm_set_after_the_sources_keeps_the_key_scheme() {
        let mut responder = header_only();
        responder.set_realm("shop").unwrap();
        let missing = responder.respond(&Rejection::Missing);
        assert_eq!(
            header(&missing, WWW_AUTHENTICATE),
            r#"Key realm="shop", header="x-api-key""#
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
