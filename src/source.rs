//! [`KeySource`]: where in a request the layer looks for a key.

use http::header::{AUTHORIZATION, HeaderName};
use http::{HeaderMap, HeaderValue};

use crate::error::ConfigError;

/// One place a key may arrive in: `Authorization: Bearer <key>` or a named header.
///
/// A layer reads an ordered list of sources. A request must carry exactly one credential
/// across all of them; two (a repeated header, or two sources at once) are refused with
/// 400, as RFC 6750 §2 asks, rather than picking one.
///
/// ```
/// use keygate::KeySource;
///
/// let sources = [
///     KeySource::bearer(),
///     KeySource::header("x-api-key")?,
///     KeySource::header("x-undb-api-token")?,
/// ];
/// assert_eq!(sources[1].header_name().as_str(), "x-api-key");
/// # Ok::<(), keygate::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeySource {
    name: HeaderName,
    bearer: bool,
}

impl KeySource {
    /// `Authorization: Bearer <key>`; the scheme is matched case-insensitively.
    ///
    /// An `Authorization` header with another scheme (`Basic …`) is not a credential for
    /// this source and is left alone.
    pub fn bearer() -> Self {
        Self {
            name: AUTHORIZATION,
            bearer: true,
        }
    }

    /// A header whose whole value is the key, such as `X-API-Key`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHeaderName`] for a name HTTP does not allow, and
    /// [`ConfigError::AuthorizationAsPlainHeader`] for `Authorization`, which carries a
    /// scheme and is read by [`KeySource::bearer`].
    pub fn header(name: &str) -> Result<Self, ConfigError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError::InvalidHeaderName(name.chars().take(64).collect()))?;
        Self::from_header_name(name)
    }

    /// As [`KeySource::header`], from an already parsed name.
    ///
    /// # Errors
    ///
    /// [`ConfigError::AuthorizationAsPlainHeader`] for `Authorization`.
    pub fn from_header_name(name: HeaderName) -> Result<Self, ConfigError> {
        if name == AUTHORIZATION {
            return Err(ConfigError::AuthorizationAsPlainHeader);
        }
        Ok(Self {
            name,
            bearer: false,
        })
    }

    /// The header this source reads.
    pub fn header_name(&self) -> &HeaderName {
        &self.name
    }

    /// Whether this is the `Authorization: Bearer` source.
    pub fn is_bearer(&self) -> bool {
        self.bearer
    }

    /// The credential in one header value, or `None` when the value is not one for this
    /// source (an `Authorization` header with another scheme).
    fn credential<'a>(&self, value: &'a HeaderValue) -> Option<&'a [u8]> {
        let bytes = value.as_bytes();
        if !self.bearer {
            return Some(trim(bytes));
        }
        const SCHEME: &[u8] = b"bearer";
        let (scheme, rest) = bytes.split_at_checked(SCHEME.len())?;
        if !scheme.eq_ignore_ascii_case(SCHEME) {
            return None;
        }
        // `Bearer` alone is a credential with an empty token (malformed, hence 401).
        // RFC 6750 section 2.1 separates scheme and token by spaces (`1*SP`) only, so
        // `Bearerx` and `Bearer<TAB>x` are other schemes, not credentials. After the spaces
        // the token runs to the end of the value (trailing whitespace is not part of a
        // field value); a tab in front of it makes it malformed.
        match rest.first() {
            None => Some(rest),
            Some(b' ') => Some(skip_spaces(rest.trim_ascii_end())),
            Some(_) => None,
        }
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// `bytes` without its leading spaces (tabs stay).
fn skip_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    &bytes[start..]
}

/// A credential found in a request, not yet checked. `Debug` is redacted: the token is
/// the secret.
pub(crate) struct Presented<'a> {
    /// The raw token bytes; not necessarily UTF-8.
    pub(crate) token: &'a [u8],
    /// The source it came from.
    pub(crate) source: &'a KeySource,
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("token", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// More than one credential was present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ambiguous;

/// Finds the one credential a request carries across `sources`.
pub(crate) fn find<'a>(
    sources: &'a [KeySource],
    headers: &'a HeaderMap,
) -> Result<Option<Presented<'a>>, Ambiguous> {
    let mut found = None;
    for source in sources {
        for value in headers.get_all(&source.name) {
            let Some(token) = source.credential(value) else {
                continue;
            };
            if found.is_some() {
                return Err(Ambiguous);
            }
            found = Some(Presented { token, source });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    fn sources() -> Vec<KeySource> {
        vec![KeySource::bearer(), KeySource::header("x-api-key").unwrap()]
    }

    fn token(pairs: &[(&str, &[u8])]) -> Result<Option<Vec<u8>>, Ambiguous> {
        let sources = sources();
        let map = headers(pairs);
        find(&sources, &map).map(|found| found.map(|p| p.token.to_vec()))
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let value = format!("{scheme} abc");
            assert_eq!(
                token(&[("authorization", value.as_bytes())]),
                Ok(Some(b"abc".to_vec()))
            );
        }
    }

    #[test]
    fn other_authorization_schemes_are_not_credentials() {
        assert_eq!(token(&[("authorization", b"Basic dXNlcjpwYXNz")]), Ok(None));
        assert_eq!(token(&[("authorization", b"Bearerabc")]), Ok(None));
    }

    #[test]
    fn bare_bearer_is_an_empty_credential() {
        assert_eq!(token(&[("authorization", b"Bearer")]), Ok(Some(vec![])));
        assert_eq!(token(&[("authorization", b"Bearer   ")]), Ok(Some(vec![])));
    }

    #[test]
    fn bearer_followed_by_a_tab_is_not_a_credential() {
        assert_eq!(token(&[("authorization", b"Bearer\tabc")]), Ok(None));
        assert_eq!(token(&[("authorization", b"Bearer\t")]), Ok(None));
    }

    #[test]
    fn a_tab_after_the_bearer_spaces_is_part_of_the_token() {
        assert_eq!(
            token(&[("authorization", b"Bearer \tabc")]),
            Ok(Some(b"\tabc".to_vec()))
        );
    }

    #[test]
    fn bearer_may_be_followed_by_several_spaces() {
        assert_eq!(
            token(&[("authorization", b"Bearer   abc ")]),
            Ok(Some(b"abc".to_vec()))
        );
    }

    #[test]
    fn named_header_value_is_trimmed() {
        assert_eq!(
            token(&[("x-api-key", b" abc\t")]),
            Ok(Some(b"abc".to_vec()))
        );
    }

    #[test]
    fn repeated_header_is_ambiguous() {
        assert_eq!(
            token(&[("x-api-key", b"a"), ("x-api-key", b"b")]),
            Err(Ambiguous)
        );
    }

    #[test]
    fn two_sources_at_once_are_ambiguous() {
        assert_eq!(
            token(&[("authorization", b"Bearer a"), ("x-api-key", b"a")]),
            Err(Ambiguous)
        );
    }

    #[test]
    fn non_utf8_value_is_passed_on_as_bytes() {
        assert_eq!(
            token(&[("x-api-key", b"\xff\xfe")]),
            Ok(Some(b"\xff\xfe".to_vec()))
        );
    }

    #[test]
    fn authorization_cannot_be_a_plain_header_source() {
        assert_eq!(
            KeySource::header("Authorization"),
            Err(ConfigError::AuthorizationAsPlainHeader)
        );
    }

    #[test]
    fn invalid_header_name_is_a_config_error() {
        assert!(matches!(
            KeySource::header("x api key"),
            Err(ConfigError::InvalidHeaderName(_))
        ));
    }
}
