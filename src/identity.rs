//! [`Identity`]: who a valid key speaks for, as handlers see it. Plain data: it knows
//! nothing of the layer that verified it.

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::scopes::Scopes;
use crate::text::Text;

/// The caller behind a verified key: inserted into the request extensions by
/// [`ApiKeyLayer`](crate::ApiKeyLayer) and read by handlers.
///
/// Cloning is cheap (a copy and at most one reference count, no allocation), so stores can
/// hand out the same identity on every lookup.
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
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    key_id: KeyId,
    /// Inline when short, as most user ids are.
    user: Text,
    /// Space, scopes and name live apart, allocated only when set: the common key (an id
    /// and a user, nothing else) stays small, which keeps a million stored keys compact.
    extra: Option<Arc<Extra>>,
    /// Verified by the replaced secret of a regenerated key, inside its grace period.
    previous_secret: bool,
    /// Which secret the layer verified, so that acting on behalf of this identity can
    /// check, when it acts, that the secret is still the key's current one.
    proof: Proof,
}

/// The first 16 bytes of the presented key's hash: enough to tell the key's current
/// secret from a replaced one (a 128-bit match by chance is out of reach), and half the
/// bytes every request copies. Not part of what an identity *is*: two identities of the
/// same key compare equal whether or not they carry it, and `Debug` never shows it.
#[derive(Clone, Copy, Default)]
struct Proof(Option<[u8; 16]>);

impl PartialEq for Proof {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Proof {}

/// The rarely set part of an identity.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Extra {
    space: Option<Box<str>>,
    scopes: Scopes,
    name: Box<str>,
}

impl Identity {
    /// An identity for key `key_id`, owned by `user`, with no space, no scopes and no name.
    pub fn new(key_id: KeyId, user: impl AsRef<str>) -> Self {
        Self::from_parts(key_id, Text::new(user.as_ref()), None)
    }

    /// An identity from the parts a store keeps.
    pub(crate) fn from_parts(key_id: KeyId, user: Text, extra: Option<Arc<Extra>>) -> Self {
        Self {
            key_id,
            user,
            extra,
            previous_secret: false,
            proof: Proof(None),
        }
    }

    /// The parts a store keeps: the user and the rarely set rest.
    pub(crate) fn into_parts(self) -> (KeyId, Text, Option<Arc<Extra>>) {
        (self.key_id, self.user, self.extra)
    }

    fn extra_mut(&mut self) -> &mut Extra {
        Arc::make_mut(self.extra.get_or_insert_with(Arc::default))
    }

    /// Sets the key's display name.
    pub fn with_name(mut self, name: impl Into<Box<str>>) -> Self {
        let name = name.into();
        if name.is_empty() && self.extra.is_none() {
            return self;
        }
        self.extra_mut().name = name;
        self
    }

    /// Binds the key to one space (workspace, project, tenant).
    pub fn with_space(mut self, space: impl Into<Box<str>>) -> Self {
        self.extra_mut().space = Some(space.into());
        self
    }

    /// Sets the key's scopes.
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        if scopes.is_empty() && self.extra.is_none() {
            return self;
        }
        self.extra_mut().scopes = scopes;
        self
    }

    /// Marks this identity as verified by a replaced secret in its grace period.
    pub(crate) fn by_previous_secret(mut self, previous: bool) -> Self {
        self.previous_secret = previous;
        self
    }

    /// Marks the identity as verified with the key whose hash is `presented`.
    pub(crate) fn proven_by(mut self, presented: &KeyHash) -> Self {
        let mut prefix = [0; 16];
        prefix.copy_from_slice(&presented.as_bytes()[..16]);
        self.proof = Proof(Some(prefix));
        self
    }

    /// Whether the layer verified this identity (rather than a store or your code
    /// making it).
    pub(crate) fn is_proven(&self) -> bool {
        self.proof.0.is_some()
    }

    /// Whether the layer verified this identity with the secret whose hash is `hash`;
    /// compared in constant time.
    pub(crate) fn proven_with(&self, hash: &KeyHash) -> bool {
        self.proof
            .0
            .is_some_and(|prefix| bool::from(prefix.ct_eq(&hash.as_bytes()[..16])))
    }

    /// The id of the key that authenticated the request.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The user the key belongs to.
    pub fn user(&self) -> &str {
        self.user.as_str()
    }

    /// The one space this key is bound to, if any. `None` means a user-wide key.
    pub fn space(&self) -> Option<&str> {
        self.extra.as_ref()?.space.as_deref()
    }

    /// The key's scopes.
    pub fn scopes(&self) -> &Scopes {
        static NONE: Scopes = Scopes(Vec::new());
        self.extra.as_ref().map_or(&NONE, |extra| &extra.scopes)
    }

    /// The key's display name (empty when none was given).
    pub fn name(&self) -> &str {
        self.extra.as_ref().map_or("", |extra| &extra.name)
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
            .field("key_id", &self.key_id)
            .field("user", &self.user)
            .field("space", &self.space())
            .field("scopes", self.scopes())
            .field("name", &self.name())
            .field("previous_secret", &self.previous_secret)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> KeyId {
        KeyId::parse("AbCdEfGh12345678").unwrap()
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
    fn clone_shares_the_rarely_set_part() {
        let a = Identity::new(id(), "u1").with_name("n");
        let b = a.clone();
        assert!(Arc::ptr_eq(
            a.extra.as_ref().unwrap(),
            b.extra.as_ref().unwrap()
        ));
    }

    #[test]
    fn a_bare_identity_allocates_no_extra() {
        let identity = Identity::new(id(), "u1")
            .with_name("")
            .with_scopes(Scopes::default());
        assert!(identity.extra.is_none());
    }
}
