//! [`Actor`]: who is acting on keys, and what that lets them touch.

use std::fmt;
use std::time::SystemTime;

use crate::identity::Identity;
use crate::manage::error::ManageError;
use crate::record::KeyRecord;
use crate::scopes::Scopes;

/// Who is acting on keys through [`KeyManager`](crate::KeyManager)'s `*_as` methods: a
/// person signed in to your app, or a verified API key acting for its user.
///
/// An actor never gains power by acting (`shared/DESIGN.md`, contract 6):
///
/// - it acts on **its own keys**: those of its user, and only those of its space when it
///   is a key bound to one. [`Actor::administering`] adds the keys of spaces it
///   administers, [`Actor::app_admin`] every key, for listing and revoking (never for
///   regenerating: a new secret for someone else's key would let the actor act as them);
/// - it **holds every scope** it grants or touches: a key holds its own scopes, a person
///   those your app gives it in [`Actor::person`];
/// - it **outlives** what it creates, regenerates or revokes: a key that expires in a
///   minute creates keys that expire within that minute, and cannot regenerate or revoke a
///   key that lives longer;
/// - a key verified by a **replaced secret** in its grace period
///   ([`Identity::is_previous_secret`]) manages nothing, and neither does a key that has
///   since been revoked or has expired.
///
/// Space admins and app admins revoke without the scope and lifetime checks: that is
/// their job, and revoking only ever takes power away.
///
/// ```
/// use keygate::{Actor, Scopes};
///
/// // From your app's session: Alice may grant `items:read`, administers space `acme`.
/// let person = Actor::person("alice", Scopes::new(["items:read"])?).administering(["acme"]);
/// assert_eq!(person.user(), "alice");
/// # Ok::<(), keygate::InvalidScope>(())
/// ```
#[derive(Clone)]
pub struct Actor {
    user: String,
    kind: Kind,
    administers: Vec<String>,
    app_admin: bool,
}

#[derive(Clone)]
enum Kind {
    Person { scopes: Scopes },
    Key(Identity),
}

/// What the store says about an acting key, read once per operation.
pub(super) struct Standing {
    /// When the actor's power ends: its key's expiry; `None` for a person.
    pub(super) expires_at: Option<SystemTime>,
}

impl Actor {
    /// A person signed in to your app as `user`, who may grant and touch `scopes`.
    pub fn person(user: impl Into<String>, scopes: Scopes) -> Self {
        Self {
            user: user.into(),
            kind: Kind::Person { scopes },
            administers: Vec::new(),
            app_admin: false,
        }
    }

    /// A verified key acting for its user, with the key's space, scopes and lifetime.
    pub fn key(identity: &Identity) -> Self {
        Self {
            user: identity.user().to_owned(),
            kind: Kind::Key(identity.clone()),
            administers: Vec::new(),
            app_admin: false,
        }
    }

    /// Spaces this actor administers: it may list and revoke every key bound to them.
    pub fn administering<I, S>(mut self, spaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.administers.extend(spaces.into_iter().map(Into::into));
        self
    }

    /// Makes this actor an app admin: it may list and revoke any user's keys, and revoke
    /// all keys of a user at once.
    pub fn app_admin(mut self) -> Self {
        self.app_admin = true;
        self
    }

    /// The user this actor acts as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The scopes this actor holds.
    pub fn scopes(&self) -> &Scopes {
        match &self.kind {
            Kind::Person { scopes } => scopes,
            Kind::Key(identity) => identity.scopes(),
        }
    }

    /// The one space a key actor is confined to, if it is bound to one.
    pub fn space(&self) -> Option<&str> {
        match &self.kind {
            Kind::Person { .. } => None,
            Kind::Key(identity) => identity.space(),
        }
    }

    /// The acting key, for a key actor.
    pub fn identity(&self) -> Option<&Identity> {
        match &self.kind {
            Kind::Person { .. } => None,
            Kind::Key(identity) => Some(identity),
        }
    }

    /// Whether this actor administers `space`.
    pub fn administers(&self, space: &str) -> bool {
        self.administers.iter().any(|s| s == space)
    }

    /// The spaces this actor administers.
    pub fn administered_spaces(&self) -> &[String] {
        &self.administers
    }

    /// Whether this actor is an app admin.
    pub fn is_app_admin(&self) -> bool {
        self.app_admin
    }

    /// Whether `record` is one of this actor's own keys.
    pub(super) fn owns(&self, record: &KeyRecord) -> bool {
        record.identity.user() == self.user
            && self
                .space()
                .is_none_or(|space| record.identity.space() == Some(space))
    }

    /// Whether this actor administers `record`: as an app admin, or as an admin of the
    /// space it is bound to.
    pub(super) fn administers_key(&self, record: &KeyRecord) -> bool {
        self.app_admin || record.identity.space().is_some_and(|s| self.administers(s))
    }

    /// Whether this actor may see `record` at all.
    pub(super) fn sees(&self, record: &KeyRecord) -> bool {
        self.owns(record) || self.administers_key(record)
    }

    /// Refuses a scope this actor does not hold.
    pub(super) fn check_scopes(&self, wanted: &Scopes) -> Result<(), ManageError> {
        match wanted.iter().find(|scope| !self.scopes().contains(scope)) {
            Some(missing) => Err(ManageError::ScopeEscalation(missing.to_owned())),
            None => Ok(()),
        }
    }

    /// Whether this is a key verified by a replaced secret in its grace period.
    pub(super) fn is_previous_secret(&self) -> bool {
        self.identity().is_some_and(Identity::is_previous_secret)
    }
}

impl Standing {
    /// Refuses to touch a key that lives longer than the actor.
    pub(super) fn check_outlives(&self, target: &KeyRecord) -> Result<(), ManageError> {
        match (self.expires_at, target.expires_at) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(ManageError::LifetimeEscalation),
            (Some(mine), Some(theirs)) if mine < theirs => Err(ManageError::LifetimeEscalation),
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Actor");
        debug.field("user", &self.user);
        match &self.kind {
            Kind::Person { scopes } => debug.field("scopes", scopes),
            Kind::Key(identity) => debug.field("key", identity),
        };
        debug
            .field("administers", &self.administers)
            .field("app_admin", &self.app_admin)
            .finish()
    }
}
