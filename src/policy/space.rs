//! [`SpaceResolver`]: which space (workspace, project, tenant) a request targets.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::header::HeaderName;
use http::{HeaderMap, Uri};
use percent_encoding::percent_decode_str;

use crate::error::ConfigError;

type ResolveFn = dyn Fn(&Uri, &HeaderMap) -> Option<String> + Send + Sync;

/// Names the space a request targets, so that a key bound to one space reaches only that
/// space.
///
/// With a resolver set ([`Keygate::with_space_resolver`](crate::Keygate::with_space_resolver)),
/// a key bound to space `a` gets 403 `insufficient_scope` on any request the resolver
/// names another space for. Keys bound to no space (user-wide keys) pass, for the app's own
/// membership checks. Requests the resolver names no space for pass too (a space token
/// may call `/me`), unless the resolver is [`strict`](SpaceResolver::strict).
///
/// Without any resolver, the layer refuses every space-bound key: a space token must
/// never open more than its space because a policy was forgotten. If your handlers check
/// [`Identity::space`](crate::Identity::space) themselves, say so with
/// [`SpaceResolver::in_handlers`].
///
/// The resolver sees the path as the layer sees it. Inside axum's `Router::nest`, that is
/// the path *after* the nest prefix: write the prefix relative to where the layer sits, or
/// make the resolver strict so a mismatch fails closed.
///
/// ```
/// use keygate::SpaceResolver;
///
/// // `/spaces/{space}/...`
/// let by_path = SpaceResolver::path_prefix("/spaces/")?;
/// // `X-Space-Id: {space}`
/// let by_header = SpaceResolver::header("x-space-id")?;
/// // Anything else: `/v1/{space}/...` on a subdomain, a query parameter, ...
/// let custom = SpaceResolver::from_fn(|uri, _headers| {
///     uri.path().strip_prefix("/v1/")?.split('/').next().map(str::to_owned)
/// });
/// # Ok::<(), keygate::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SpaceResolver {
    kind: Kind,
    strict: bool,
}

#[derive(Clone)]
enum Kind {
    /// The handlers check spaces; the layer does not.
    Handlers,
    /// The path segments of the prefix, e.g. `["spaces"]` for `/spaces/`.
    Path(Box<[Box<str>]>),
    Header(HeaderName),
    Fn(Arc<ResolveFn>),
}

/// What a resolver found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// The request targets no space.
    None,
    /// The request targets this space.
    Space(Cow<'a, str>),
    /// The request names a space in a way that cannot be trusted (the header repeated, or
    /// not text): treated as a space no bound key matches.
    Unreadable,
}

impl SpaceResolver {
    /// The space is the path segment after `prefix`, such as `/spaces/` in
    /// `/spaces/{space}/items`. The segment is percent-decoded before comparison, and
    /// empty segments (`//`) are skipped, as routers skip them.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSpacePrefix`] unless the prefix starts and ends with `/` and
    /// names at least one segment.
    pub fn path_prefix(prefix: &str) -> Result<Self, ConfigError> {
        let segments: Box<[Box<str>]> = prefix
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(Box::from)
            .collect();
        if !prefix.starts_with('/') || !prefix.ends_with('/') || segments.is_empty() {
            return Err(ConfigError::InvalidSpacePrefix);
        }
        Ok(Self::of(Kind::Path(segments)))
    }

    /// The space is the value of header `name`. A repeated or non-text header names no
    /// space a bound key can match.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHeaderName`] for a name HTTP does not allow.
    pub fn header(name: &str) -> Result<Self, ConfigError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConfigError::InvalidHeaderName(name.chars().take(64).collect()))?;
        Ok(Self::of(Kind::Header(name)))
    }

    /// The space is whatever `resolve` returns for the request's URI and headers.
    pub fn from_fn<F>(resolve: F) -> Self
    where
        F: Fn(&Uri, &HeaderMap) -> Option<String> + Send + Sync + 'static,
    {
        Self::of(Kind::Fn(Arc::new(resolve)))
    }

    /// The layer lets space-bound keys through and your handlers compare
    /// [`Identity::space`](crate::Identity::space) with the space each request targets.
    pub fn in_handlers() -> Self {
        Self::of(Kind::Handlers)
    }

    /// Refuses space-bound keys on every request this resolver names no space for, so a
    /// space token reaches nothing but its space.
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    pub(crate) fn is_strict(&self) -> bool {
        self.strict
    }

    fn of(kind: Kind) -> Self {
        Self {
            kind,
            strict: false,
        }
    }

    pub(crate) fn resolve<'a>(&self, uri: &'a Uri, headers: &'a HeaderMap) -> Target<'a> {
        match &self.kind {
            Kind::Handlers => Target::None,
            Kind::Path(prefix) => {
                let mut segments = uri.path().split('/').filter(|s| !s.is_empty());
                for expected in prefix.iter() {
                    if segments.next() != Some(&**expected) {
                        return Target::None;
                    }
                }
                let segment = segments.next().unwrap_or("");
                match percent_decode_str(segment).decode_utf8() {
                    Ok(space) => Target::Space(space),
                    Err(_) => Target::Unreadable,
                }
            }
            Kind::Header(name) => {
                let mut values = headers.get_all(name).iter();
                match (values.next(), values.next()) {
                    (None, _) => Target::None,
                    (Some(value), None) => match value.to_str() {
                        Ok(space) => Target::Space(Cow::Borrowed(space.trim())),
                        Err(_) => Target::Unreadable,
                    },
                    (Some(_), Some(_)) => Target::Unreadable,
                }
            }
            Kind::Fn(resolve) => match resolve(uri, headers) {
                Some(space) => Target::Space(Cow::Owned(space)),
                None => Target::None,
            },
        }
    }
}

impl fmt::Debug for SpaceResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("SpaceResolver");
        match &self.kind {
            Kind::Handlers => debug.field("in", &"handlers"),
            Kind::Path(prefix) => debug.field("path_prefix", prefix),
            Kind::Header(name) => debug.field("header", name),
            Kind::Fn(_) => debug.field("fn", &".."),
        };
        debug.field("strict", &self.strict).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(resolver: &SpaceResolver, uri: &'static str) -> Option<String> {
        let uri = Uri::from_static(uri);
        match resolver.resolve(&uri, &HeaderMap::new()) {
            Target::Space(space) => Some(space.into_owned()),
            Target::None => None,
            Target::Unreadable => Some("<unreadable>".into()),
        }
    }

    #[test]
    fn path_prefix_takes_the_next_segment() {
        let resolver = SpaceResolver::path_prefix("/spaces/").unwrap();
        assert_eq!(path(&resolver, "/spaces/s1/items"), Some("s1".into()));
        assert_eq!(path(&resolver, "/spaces/s1"), Some("s1".into()));
        assert_eq!(path(&resolver, "/me"), None);
        assert_eq!(path(&resolver, "/spacesx/s1"), None);
    }

    #[test]
    fn path_prefix_decodes_and_skips_empty_segments() {
        let resolver = SpaceResolver::path_prefix("/spaces/").unwrap();
        assert_eq!(path(&resolver, "/spaces/s%31/items"), Some("s1".into()));
        assert_eq!(path(&resolver, "//spaces//s1/items"), Some("s1".into()));
        assert_eq!(
            path(&resolver, "/spaces/%ff/items"),
            Some("<unreadable>".into())
        );
    }

    #[test]
    fn multi_segment_prefix_must_match_in_full() {
        let resolver = SpaceResolver::path_prefix("/api/spaces/").unwrap();
        assert_eq!(path(&resolver, "/api/spaces/s1/items"), Some("s1".into()));
        assert_eq!(path(&resolver, "/api/other/s1"), None);
    }

    #[test]
    fn invalid_prefix_is_a_config_error() {
        for prefix in ["spaces/", "/spaces", "/", ""] {
            assert!(SpaceResolver::path_prefix(prefix).is_err(), "{prefix}");
        }
    }

    #[test]
    fn repeated_space_header_is_unreadable() {
        let resolver = SpaceResolver::header("x-space").unwrap();
        let mut headers = HeaderMap::new();
        headers.append("x-space", "a".parse().unwrap());
        let uri = Uri::from_static("/");
        assert_eq!(resolver.resolve(&uri, &headers), Target::Space("a".into()));
        headers.append("x-space", "b".parse().unwrap());
        assert_eq!(resolver.resolve(&uri, &headers), Target::Unreadable);
    }
}
