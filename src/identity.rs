//! [`Identity`]: who a valid key speaks for, as handlers see it.

use std::fmt;
use std::sync::Arc;

use crate::key::KeyId;
use crate::layer::Shared;

/// The caller behind a verified key: inserted into the request extensions by
/// [`ApiKeyLayer`](crate::ApiKeyLayer) and read by handlers.
///
/// Cloning is cheap (one reference count), so stores can hand out the same identity on
/// every lookup.
///
/// ```
/// use keygate::{Identity, KeyId, Scopes};
///
/// let id = KeyId::parse("AbCdEfGh12345678")?;
/// let identity = Identity::new(id, "user-42")
///     .with_name("ci deploy")
///     .with_space("space-7")
///     .with_scopes(Scopes::new(["items:read"])?);
/// assert_eq!(identity.space(), Some("space-7"));
/// assert!(identity.scopes().contains("items:read"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
    /// Verified by the replaced secret of a regenerated key, inside its grace period.
    previous_secret: bool,
    /// The layer that verified this identity, when it came from one: lets extractors and
    /// scope guards answer with that layer's realm and audit into its log. Carried here,
    /// rather than as a second request extension, to keep the hot path to one insert.
    layer: Option<Arc<Shared>>,
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && self.previous_secret == other.previous_secret
    }
}

impl Eq for Identity {}

/// What an identity holds. The common key (an id and a user, nothing else) costs one
/// small allocation; space, scopes and name live apart, allocated only when set, which
/// keeps a million stored keys within a few hundred bytes each.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Inner {
    key_id: KeyId,
    user: Box<str>,
    extra: Option<Box<Extra>>,
}

#[derive(Clone, Default, PartialEq, Eq)]
struct Extra {
    space: Option<Box<str>>,
    scopes: Scopes,
    name: Box<str>,
}

impl Inner {
    pub(crate) fn key_id(&self) -> KeyId {
        self.key_id
    }

    pub(crate) fn user(&self) -> &str {
        &self.user
    }

    pub(crate) fn space(&self) -> Option<&str> {
        self.extra.as_ref()?.space.as_deref()
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }
}

impl Identity {
    /// An identity for key `key_id`, owned by `user`, with no space, no scopes and no name.
    pub fn new(key_id: KeyId, user: impl Into<Box<str>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                key_id,
                user: user.into(),
                extra: None,
            }),
            previous_secret: false,
            layer: None,
        }
    }

    /// The shared part, for stores that keep identities compactly.
    pub(crate) fn shared_inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// An identity around a kept shared part.
    pub(crate) fn from_shared_inner(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            previous_secret: false,
            layer: None,
        }
    }

    /// Marks this identity as verified by a replaced secret in its grace period.
    pub(crate) fn by_previous_secret(mut self, previous: bool) -> Self {
        self.previous_secret = previous;
        self
    }

    /// This identity as verified by `layer`.
    pub(crate) fn verified_by(mut self, layer: Arc<Shared>) -> Self {
        self.layer = Some(layer);
        self
    }

    /// The layer that verified this identity, if any.
    pub(crate) fn layer(&self) -> Option<&Arc<Shared>> {
        self.layer.as_ref()
    }

    /// The same identity, without its link to a layer: for values that outlive the
    /// request (audit events, handler state).
    pub(crate) fn detached(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            previous_secret: self.previous_secret,
            layer: None,
        }
    }

    /// Sets the key's display name.
    pub fn with_name(mut self, name: impl Into<Box<str>>) -> Self {
        let name = name.into();
        let inner = Arc::make_mut(&mut self.inner);
        if name.is_empty() && inner.extra.is_none() {
            return self;
        }
        inner.extra_mut().name = name;
        self
    }

    /// Binds the key to one space (workspace, project, tenant).
    pub fn with_space(mut self, space: impl Into<Box<str>>) -> Self {
        Arc::make_mut(&mut self.inner).extra_mut().space = Some(space.into());
        self
    }

    /// Sets the key's scopes.
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        if scopes.is_empty() && inner.extra.is_none() {
            return self;
        }
        inner.extra_mut().scopes = scopes;
        self
    }

    /// The id of the key that authenticated the request.
    pub fn key_id(&self) -> KeyId {
        self.inner.key_id
    }

    /// The user the key belongs to.
    pub fn user(&self) -> &str {
        self.inner.user()
    }

    /// The one space this key is bound to, if any. `None` means a user-wide key.
    pub fn space(&self) -> Option<&str> {
        self.inner.space()
    }

    /// The key's scopes.
    pub fn scopes(&self) -> &Scopes {
        static NONE: Scopes = Scopes(Vec::new());
        self.inner
            .extra
            .as_ref()
            .map_or(&NONE, |extra| &extra.scopes)
    }

    /// The key's display name (empty when none was given).
    pub fn name(&self) -> &str {
        self.inner.extra.as_ref().map_or("", |extra| &extra.name)
    }

    /// Whether the request was verified by the *replaced* secret of a regenerated key,
    /// inside the grace period [`KeyManager::regenerate`](crate::KeyManager::regenerate)
    /// granted it.
    ///
    /// Such a secret still authenticates requests, so clients can roll over, but it has no
    /// management power: [`KeyManager`](crate::KeyManager)'s `*_as` methods refuse it with
    /// [`ManageError::PreviousSecret`](crate::ManageError::PreviousSecret). Otherwise
    /// rotating a leaked key with a grace period would let whoever holds the old secret
    /// mint keys that outlive it.
    pub fn is_previous_secret(&self) -> bool {
        self.previous_secret
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("key_id", &self.inner.key_id)
            .field("user", &self.inner.user)
            .field("space", &self.space())
            .field("scopes", self.scopes())
            .field("name", &self.name())
            .field("previous_secret", &self.previous_secret)
            .finish()
    }
}

/// A key's scopes: a sorted set of scope tokens such as `items:read`.
///
/// Scope tokens follow RFC 6750 (printable ASCII except space, `"` and `\`), so they can
/// be named in a `WWW-Authenticate` challenge as they are.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(Vec<Box<str>>);

impl Scopes {
    /// Builds a set from scope tokens; duplicates are dropped.
    ///
    /// # Errors
    ///
    /// [`InvalidScope`] naming the first token that is empty, longer than 128 bytes, or
    /// holds a character RFC 6750 does not allow.
    pub fn new<I, T>(scopes: I) -> Result<Self, InvalidScope>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut tokens = Vec::new();
        for scope in scopes {
            let scope = scope.as_ref();
            if !is_scope_token(scope) {
                return Err(InvalidScope(scope.chars().take(128).collect()));
            }
            tokens.push(Box::<str>::from(scope));
        }
        tokens.sort_unstable();
        tokens.dedup();
        tokens.shrink_to_fit();
        Ok(Self(tokens))
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.binary_search_by(|s| (**s).cmp(scope)).is_ok()
    }

    /// Whether every scope of `other` is in this set.
    pub fn contains_all(&self, other: &Scopes) -> bool {
        other.iter().all(|scope| self.contains(scope))
    }

    /// The scopes in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| &**s)
    }

    /// How many scopes there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

fn is_scope_token(scope: &str) -> bool {
    // RFC 6750 §3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    (1..=128).contains(&scope.len())
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// A scope token was empty, too long, or held a character RFC 6750 does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid scope {0:?}: scopes are 1 to 128 printable ASCII characters without space, `\"` or `\\`"
)]
pub struct InvalidScope(String);

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> KeyId {
        KeyId::parse("AbCdEfGh12345678").unwrap()
    }

    #[test]
    fn scopes_are_sorted_and_deduplicated() {
        let scopes = Scopes::new(["b", "a", "b"]).unwrap();
        assert_eq!(scopes.iter().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn scope_with_space_or_quote_is_rejected() {
        assert!(Scopes::new(["a b"]).is_err());
        assert!(Scopes::new(["a\"b"]).is_err());
        assert!(Scopes::new([""]).is_err());
    }

    #[test]
    fn contains_all_requires_every_scope() {
        let held = Scopes::new(["a", "b"]).unwrap();
        assert!(held.contains_all(&Scopes::new(["a"]).unwrap()));
        assert!(!held.contains_all(&Scopes::new(["a", "c"]).unwrap()));
    }

    #[test]
    fn builders_set_each_field() {
        let identity = Identity::new(id(), "u1")
            .with_name("n")
            .with_space("s")
            .with_scopes(Scopes::new(["x"]).unwrap());
        assert_eq!(identity.key_id(), id());
        assert_eq!(identity.user(), "u1");
        assert_eq!(identity.name(), "n");
        assert_eq!(identity.space(), Some("s"));
        assert!(identity.scopes().contains("x"));
    }

    #[test]
    fn clone_shares_the_allocation() {
        let a = Identity::new(id(), "u1");
        let b = a.clone();
        assert!(Arc::ptr_eq(&a.inner, &b.inner));
    }
}
