//! [`ConfigError`]: what a builder says when it is given a value it cannot use.

/// A configuration value was rejected when the layer, format or hasher was built.
///
/// These errors happen at start-up, never per request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key prefix must be 1 to 32 ASCII letters, digits or `_`, starting with a letter.
    #[error("a key prefix must be 1 to 32 ASCII letters, digits or `_`, starting with a letter")]
    InvalidPrefix,
    /// The header name is not a valid HTTP header name.
    #[error("`{0}` is not a valid HTTP header name")]
    InvalidHeaderName(String),
    /// `Authorization` carries a scheme; use [`KeySource::bearer`](crate::KeySource::bearer).
    #[error("read `Authorization` with KeySource::bearer(), not as a plain header")]
    AuthorizationAsPlainHeader,
    /// A realm must be printable ASCII without `"` or `\`, as it is sent in a quoted string.
    #[error("a realm must be 1 to 128 printable ASCII characters without `\"` or `\\`")]
    InvalidRealm,
    /// An HMAC pepper must hold at least 32 bytes.
    #[error("an HMAC pepper must be at least 32 bytes long")]
    PepperTooShort,
    /// A space path prefix starts and ends with `/` and names at least one segment.
    #[error("a space path prefix starts and ends with `/` and names a segment, like `/spaces/`")]
    InvalidSpacePrefix,
    /// A scope is not a valid RFC 6750 scope token.
    #[error("{0}")]
    InvalidScope(String),
    /// A LISTEN/NOTIFY channel is 1 to 63 lowercase ASCII letters, digits or `_`.
    #[error(
        "a notification channel is 1 to 63 lowercase ASCII letters, digits or `_`, not starting with a digit"
    )]
    InvalidChannel,
    /// A rate limit needs a count and a burst of at least one, and a period of at least a
    /// millisecond; a quota, a limit of at least one.
    #[error(
        "a rate limit needs a count and a burst of at least 1 and a period of at least 1 ms; a quota, a limit of at least 1"
    )]
    InvalidLimit,
    /// A layer needs at least one place to read keys from.
    #[error("at least one key source is required")]
    NoSources,
}
